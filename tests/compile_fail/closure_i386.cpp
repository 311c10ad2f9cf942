// Misuse: a closure on i386, where every argument travels on the stack: putting the object pointer in front of them
// needs a stack frame, which a thunk that only jumps does not have. Registered for i386 only; the control is the
// alternative the message suggests, a thunk that replaces a first parameter.
#include <member_thunk/page.hpp>

namespace
{
	struct counter
	{
		int count = 0;
		void bump() { ++count; }
	};
} // namespace

void compile_fail(member_thunk::page& p, counter& c)
{
#ifndef MEMBER_THUNK_COMPILE_FAIL_CONTROL
	[[maybe_unused]] const auto cb = p.make_closure<void (*)(), &counter::bump>(&c); // wrong: no closures on i386
#else
	[[maybe_unused]] const auto cb = p.make_thunk<void (*)(void*), &counter::bump>(&c);
#endif
}
