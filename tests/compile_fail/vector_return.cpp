// Misuse: the Callback returns a vector type (a GNU extension), which is not a scalar: where a vector comes back
// depends on the ABI and even on the instruction set (a vector register, or on i386 without SSE a hidden pointer at
// [esp+4], the slot the thunk replaces).
#include <member_thunk/page.hpp>

namespace
{
	typedef int int4 __attribute__((vector_size(16)));

	struct widget
	{
		int4 splat(int x) { return int4{x, x, x, x}; }
		int same(int x) { return x; }
	};
} // namespace

void compile_fail(member_thunk::page& p, widget& w)
{
#ifndef MEMBER_THUNK_COMPILE_FAIL_CONTROL
	using callback = int4 (*)(void*, int); // wrong: not a scalar
	[[maybe_unused]] const auto cb = p.make_thunk<callback, &widget::splat>(&w);
#else
	using callback = int (*)(void*, int);
	[[maybe_unused]] const auto cb = p.make_thunk<callback, &widget::same>(&w);
#endif
}
