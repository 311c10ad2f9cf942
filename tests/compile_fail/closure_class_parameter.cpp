// Misuse: a closure whose Callback takes a structure by value: its classification (two registers, memory, an HFA, a
// hidden copy) cannot follow a one-register shift.
#include <member_thunk/page.hpp>

namespace
{
	struct point
	{
		long x;
		long y;
	};

	struct widget
	{
		void by_value(point) {}
		void by_pointer(const point*) {}
	};
} // namespace

void compile_fail(member_thunk::page& p, widget& w)
{
#ifndef MEMBER_THUNK_COMPILE_FAIL_CONTROL
	using callback = void (*)(point); // wrong: a class type by value
	[[maybe_unused]] const auto cb = p.make_closure<callback, &widget::by_value>(&w);
#else
	using callback = void (*)(const point*);
	[[maybe_unused]] const auto cb = p.make_closure<callback, &widget::by_pointer>(&w);
#endif
}
