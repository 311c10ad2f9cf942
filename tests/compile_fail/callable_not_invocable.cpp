// Misuse: a callable that cannot be called with the Callback's parameters after the first.
#include <member_thunk/page.hpp>

#include <string>

void compile_fail(member_thunk::page& p)
{
	using callback = void (*)(void*, int);
	int total = 0;
#ifndef MEMBER_THUNK_COMPILE_FAIL_CONTROL
	auto add = [&total](const std::string& s) { total += static_cast<int>(s.size()); }; // wrong: takes a string
#else
	auto add = [&total](int x) { total += x; };
#endif
	[[maybe_unused]] const auto cb = p.make_thunk<callback>(add);
}
