// Misuse: the default heap's allocate_page() with MEMBER_THUNK_DISABLE_DEFAULT_HEAP defined: it does not exist, so
// the compiler itself reports the name as undeclared.
#define MEMBER_THUNK_DISABLE_DEFAULT_HEAP
#include <member_thunk/member_thunk.hpp>

void compile_fail()
{
#ifndef MEMBER_THUNK_COMPILE_FAIL_CONTROL
	[[maybe_unused]] const auto p = member_thunk::allocate_page(); // wrong: there is no default heap
#else
	member_thunk::heap<> h; // your own heap instead
	[[maybe_unused]] const auto p = h.allocate_page();
#endif
}
