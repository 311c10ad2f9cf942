// Misuse: a null member pointer as the compile-time member.
#include <member_thunk/page.hpp>

namespace
{
	struct widget
	{
		void on_event(int) {}
	};

	using member = void (widget::*)(int);
} // namespace

void compile_fail(member_thunk::page& p, widget& w)
{
	using callback = void (*)(void*, int);
#ifndef MEMBER_THUNK_COMPILE_FAIL_CONTROL
	[[maybe_unused]] const auto cb = p.make_thunk<callback, member{nullptr}>(&w); // wrong: null
#else
	[[maybe_unused]] const auto cb = p.make_thunk<callback, member{&widget::on_event}>(&w);
#endif
}
