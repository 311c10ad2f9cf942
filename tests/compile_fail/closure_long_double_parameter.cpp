// Misuse: a closure whose Callback takes a long double (x87 on the stack on System V x86-64, two registers or memory
// elsewhere): only float and double stay where they are.
#include <member_thunk/page.hpp>

namespace
{
	struct widget
	{
		void wide(int, long double) {}
		void narrow(int, double) {}
	};
} // namespace

void compile_fail(member_thunk::page& p, widget& w)
{
#ifndef MEMBER_THUNK_COMPILE_FAIL_CONTROL
	using callback = void (*)(int, long double); // wrong: long double
	[[maybe_unused]] const auto cb = p.make_closure<callback>(&w, &widget::wide);
#else
	using callback = void (*)(int, double);
	[[maybe_unused]] const auto cb = p.make_closure<callback>(&w, &widget::narrow);
#endif
}
