// Misuse: a plain function where a pointer to a member function is expected.
#include <member_thunk/page.hpp>

namespace
{
	struct widget
	{
		void on_event(int) {}
	};

	void free_function(int) {}
} // namespace

void compile_fail(member_thunk::page& p, widget& w)
{
	using callback = void (*)(void*, int);
#ifndef MEMBER_THUNK_COMPILE_FAIL_CONTROL
	[[maybe_unused]] const auto cb = p.make_thunk<callback>(&w, &free_function); // wrong: not a member
#else
	(void)&free_function;
	[[maybe_unused]] const auto cb = p.make_thunk<callback>(&w, &widget::on_event);
#endif
}
