// Misuse: the Callback's first parameter is a double: pointer-sized, but passed in a floating-point register.
#include <member_thunk/page.hpp>

namespace
{
	struct widget
	{
		void on_event(int) {}
	};
} // namespace

void compile_fail(member_thunk::page& p, widget& w)
{
#ifndef MEMBER_THUNK_COMPILE_FAIL_CONTROL
	using callback = void (*)(double, int); // wrong: not a pointer or an integer
#else
	using callback = void (*)(const void*, int);
#endif
	[[maybe_unused]] const auto cb = p.make_thunk<callback, &widget::on_event>(&w);
}
