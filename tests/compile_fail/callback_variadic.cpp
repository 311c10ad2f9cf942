// Misuse: a variadic Callback (a thunk cannot forward a va_list).
#include <member_thunk/page.hpp>

namespace
{
	struct widget
	{
		void on_event(int) {}
	};
} // namespace

void compile_fail(member_thunk::page& p, widget& w)
{
#ifndef MEMBER_THUNK_COMPILE_FAIL_CONTROL
	using callback = void (*)(void*, int, ...); // wrong: variadic
#else
	using callback = void (*)(void*, int);
#endif
	[[maybe_unused]] const auto cb = p.make_thunk<callback>(&w, &widget::on_event);
}
