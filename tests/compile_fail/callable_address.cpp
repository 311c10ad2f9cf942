// Misuse: the address of a callable (a pointer prvalue) instead of the callable itself.
#include <member_thunk/page.hpp>

void compile_fail(member_thunk::page& p)
{
	using callback = void (*)(void*, int);
	int total = 0;
	auto add = [&total](int x) { total += x; };
#ifndef MEMBER_THUNK_COMPILE_FAIL_CONTROL
	[[maybe_unused]] const auto cb = p.make_thunk<callback>(&add); // wrong: pass `add` itself
#else
	[[maybe_unused]] const auto cb = p.make_thunk<callback>(add);
#endif
}
