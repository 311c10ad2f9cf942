// Misuse: a closure whose Callback has 6 integer-class parameters on x86-64 System V: with the object pointer in
// front the sixth would move from r9 to the stack, which a closure that only moves registers cannot do. Registered
// for System V x86-64 only (closure_eight_integers.cpp and closure_four_parameters.cpp are the other ABIs' limits).
#include <member_thunk/page.hpp>

namespace
{
	struct widget
	{
		void six(long, int, const char*, short, unsigned long, char) {}
		void five(double, long, int, float, const char*, short, unsigned long, double) {}
	};
} // namespace

void compile_fail(member_thunk::page& p, widget& w)
{
#ifndef MEMBER_THUNK_COMPILE_FAIL_CONTROL
	using callback = void (*)(long, int, const char*, short, unsigned long, char); // wrong: one too many
	[[maybe_unused]] const auto cb = p.make_closure<callback, &widget::six>(&w);
#else
	// The limit, with float and double parameters, which do not count, around the integers.
	using callback = void (*)(double, long, int, float, const char*, short, unsigned long, double);
	[[maybe_unused]] const auto cb = p.make_closure<callback, &widget::five>(&w);
#endif
}
