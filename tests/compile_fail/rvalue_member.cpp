// Misuse: a &&-qualified member function (a thunk calls its member on an lvalue).
#include <member_thunk/page.hpp>

namespace
{
	struct widget
	{
		void on_event(int) && {}
		void on_event_lvalue(int) & {}
	};
} // namespace

void compile_fail(member_thunk::page& p, widget& w)
{
	using callback = void (*)(void*, int);
#ifndef MEMBER_THUNK_COMPILE_FAIL_CONTROL
	[[maybe_unused]] const auto cb = p.make_thunk<callback>(&w, &widget::on_event); // wrong: &&-qualified
#else
	[[maybe_unused]] const auto cb = p.make_thunk<callback>(&w, &widget::on_event_lvalue);
#endif
}
