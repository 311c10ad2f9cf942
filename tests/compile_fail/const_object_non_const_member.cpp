// Misuse: a pointer to a const object, bound to a non-const member function.
#include <member_thunk/page.hpp>

namespace
{
	struct widget
	{
		void on_event(int) {}
		void on_event_const(int) const {}
	};
} // namespace

void compile_fail(member_thunk::page& p, const widget& w)
{
	using callback = void (*)(void*, int);
#ifndef MEMBER_THUNK_COMPILE_FAIL_CONTROL
	[[maybe_unused]] const auto cb = p.make_thunk<callback, &widget::on_event>(&w); // wrong: member not const
#else
	[[maybe_unused]] const auto cb = p.make_thunk<callback, &widget::on_event_const>(&w);
#endif
}
