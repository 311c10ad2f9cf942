// Misuse: the member's parameters are the Callback's minus the first, as a thunk's would be; a closure passes them
// all, so they must be exactly the Callback's.
#include <member_thunk/page.hpp>

namespace
{
	struct sorter
	{
		int as_thunk(const void*) { return 0; }
		int compare(const void*, const void*) { return 0; }
	};
} // namespace

void compile_fail(member_thunk::page& p, sorter& s)
{
	using callback = int (*)(const void*, const void*);
#ifndef MEMBER_THUNK_COMPILE_FAIL_CONTROL
	[[maybe_unused]] const auto cb = p.make_closure<callback, &sorter::as_thunk>(&s); // wrong: one parameter short
#else
	[[maybe_unused]] const auto cb = p.make_closure<callback, &sorter::compare>(&s);
#endif
}
