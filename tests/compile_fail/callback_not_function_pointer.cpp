// Misuse: the Callback type is not a pointer to a function.
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
	using callback = int; // wrong: not a function pointer
#else
	using callback = void (*)(void*, int);
#endif
	[[maybe_unused]] const auto cb = p.make_thunk<callback, &widget::on_event>(&w);
}
