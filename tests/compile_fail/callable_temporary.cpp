// Misuse: a temporary callable, which would be destroyed before the thunk that refers to it is called.
#include <member_thunk/page.hpp>

void compile_fail(member_thunk::page& p)
{
	using callback = void (*)(void*, int);
	int total = 0;
#ifndef MEMBER_THUNK_COMPILE_FAIL_CONTROL
	[[maybe_unused]] const auto cb = p.make_thunk<callback>([&total](int x) { total += x; }); // wrong: temporary
#else
	auto add = [&total](int x) { total += x; };
	[[maybe_unused]] const auto cb = p.make_thunk<callback>(add);
#endif
}
