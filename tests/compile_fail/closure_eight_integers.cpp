// Misuse: a closure whose Callback has 8 integer-class parameters on AArch64: with the object pointer in front the
// eighth would move from x7 to the stack, which a closure that only moves registers cannot do. Registered for
// AArch64 only.
#include <member_thunk/page.hpp>

namespace
{
	struct widget
	{
		void eight(long, int, const char*, short, unsigned long, char, void*, long long) {}
		void seven(long, int, const char*, short, unsigned long, char, void*) {}
	};
} // namespace

void compile_fail(member_thunk::page& p, widget& w)
{
#ifndef MEMBER_THUNK_COMPILE_FAIL_CONTROL
	using callback = void (*)(long, int, const char*, short, unsigned long, char, void*, long long); // wrong
	[[maybe_unused]] const auto cb = p.make_closure<callback>(&w, &widget::eight);
#else
	using callback = void (*)(long, int, const char*, short, unsigned long, char, void*); // the limit
	[[maybe_unused]] const auto cb = p.make_closure<callback>(&w, &widget::seven);
#endif
}
