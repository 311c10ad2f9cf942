// Misuse: the Callback returns a class type, which a member function and a plain function may return differently.
#include <member_thunk/page.hpp>

namespace
{
	struct point
	{
		int x;
		int y;
	};

	struct widget
	{
		point where() { return {1, 2}; }
		int x() { return 1; }
	};
} // namespace

void compile_fail(member_thunk::page& p, widget& w)
{
#ifndef MEMBER_THUNK_COMPILE_FAIL_CONTROL
	using callback = point (*)(void*); // wrong: returns a struct
	[[maybe_unused]] const auto cb = p.make_thunk<callback, &widget::where>(&w);
#else
	using callback = int (*)(void*);
	[[maybe_unused]] const auto cb = p.make_thunk<callback, &widget::x>(&w);
#endif
}
