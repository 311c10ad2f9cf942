// Misuse: the member returns long where the Callback returns int.
#include <member_thunk/page.hpp>

namespace
{
	struct widget
	{
		long get_long() { return 1; }
		int get_int() { return 1; }
	};
} // namespace

void compile_fail(member_thunk::page& p, widget& w)
{
	using callback = int (*)(void*);
#ifndef MEMBER_THUNK_COMPILE_FAIL_CONTROL
	[[maybe_unused]] const auto cb = p.make_thunk<callback, &widget::get_long>(&w); // wrong: returns long
#else
	[[maybe_unused]] const auto cb = p.make_thunk<callback, &widget::get_int>(&w);
#endif
}
