// Misuse: the Callback returns __float128, which i386 and Windows x64 return through a hidden pointer that the caller
// passes in the first argument's place ([esp+4], rcx): the thunk would replace it with the object pointer, and the
// result would be written over the object. Registered for those targets only: System V x86-64 returns it in xmm0
// (tests/conventions.cpp calls such a thunk), and AArch64 has no __float128.
#include <member_thunk/page.hpp>

namespace
{
	__extension__ typedef __float128 float128; // a GNU extension: -Wpedantic is told so

	struct widget
	{
		float128 wide(int x) { return x; }
		double narrow(int x) { return x; }
	};
} // namespace

void compile_fail(member_thunk::page& p, widget& w)
{
#ifndef MEMBER_THUNK_COMPILE_FAIL_CONTROL
	using callback = float128 (*)(void*, int); // wrong: returned through a hidden pointer on this ABI
	[[maybe_unused]] const auto cb = p.make_thunk<callback, &widget::wide>(&w);
#else
	using callback = double (*)(void*, int);
	[[maybe_unused]] const auto cb = p.make_thunk<callback, &widget::narrow>(&w);
#endif
}
