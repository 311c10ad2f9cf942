// Misuse: a heap whose Lock is not BasicLockable.
#include <member_thunk/heap.hpp>

#include <mutex>

void compile_fail()
{
#ifndef MEMBER_THUNK_COMPILE_FAIL_CONTROL
	member_thunk::heap<int> h; // wrong: int has no lock()/unlock()
#else
	member_thunk::heap<std::mutex> h;
#endif
	[[maybe_unused]] const auto p = h.allocate_page();
}
