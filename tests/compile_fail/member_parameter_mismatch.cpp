// Misuse: the member takes a long where the Callback passes an int (no silent conversions in a thunk).
#include <member_thunk/page.hpp>

namespace
{
	struct widget
	{
		void on_long(long) {}
		void on_int(int) {}
	};
} // namespace

void compile_fail(member_thunk::page& p, widget& w)
{
	using callback = void (*)(void*, int);
#ifndef MEMBER_THUNK_COMPILE_FAIL_CONTROL
	[[maybe_unused]] const auto cb = p.make_thunk<callback>(&w, &widget::on_long); // wrong: long, not int
#else
	[[maybe_unused]] const auto cb = p.make_thunk<callback>(&w, &widget::on_int);
#endif
}
