// Misuse: the Callback returns a long double that the ABI returns through a hidden pointer in the first argument's
// place: the 80-bit long double of Windows x64 with MinGW (pointer in rcx), or the 128-bit long double of i386 with
// -mlong-double-128 (pointer at [esp+4]). Registered for those two targets only (the i386 case with that option):
// System V x86-64 returns long double in st(0), AArch64 in q0, i386 by default in st(0).
#include <member_thunk/page.hpp>

namespace
{
	struct widget
	{
		long double wide(int x) { return x; }
		double narrow(int x) { return x; }
	};
} // namespace

void compile_fail(member_thunk::page& p, widget& w)
{
#ifndef MEMBER_THUNK_COMPILE_FAIL_CONTROL
	using callback = long double (*)(void*, int); // wrong: returned through a hidden pointer on this ABI
	[[maybe_unused]] const auto cb = p.make_thunk<callback>(&w, &widget::wide);
#else
	using callback = double (*)(void*, int);
	[[maybe_unused]] const auto cb = p.make_thunk<callback>(&w, &widget::narrow);
#endif
}
