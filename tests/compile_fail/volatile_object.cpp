// Misuse: a pointer to a volatile object, bound to a member function that is not volatile. The correct variant
// binds a volatile member that takes a parameter, through both member forms.
#include <member_thunk/page.hpp>

namespace
{
	struct widget
	{
		void on_event(int) {}
		void on_event_volatile(int) volatile {}
	};
} // namespace

void compile_fail(member_thunk::page& p, volatile widget& w)
{
	using callback = void (*)(void*, int);
#ifndef MEMBER_THUNK_COMPILE_FAIL_CONTROL
	[[maybe_unused]] const auto cb = p.make_thunk<callback>(&w, &widget::on_event); // wrong: not volatile
#else
	[[maybe_unused]] const auto cb = p.make_thunk<callback>(&w, &widget::on_event_volatile);
	[[maybe_unused]] const auto cb2 = p.make_thunk<callback, &widget::on_event_volatile>(&w);
#endif
}
