// Misuse: a MEMBER_THUNK_DEFAULT_HEAP_SAFETY outside 1..3.
#ifndef MEMBER_THUNK_COMPILE_FAIL_CONTROL
#define MEMBER_THUNK_DEFAULT_HEAP_SAFETY 4 // wrong: only 1, 2 and 3 exist
#else
#define MEMBER_THUNK_DEFAULT_HEAP_SAFETY 2
#endif
#include <member_thunk/member_thunk.hpp>

void compile_fail()
{
	[[maybe_unused]] const auto p = member_thunk::allocate_page();
}
