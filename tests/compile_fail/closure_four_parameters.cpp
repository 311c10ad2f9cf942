// Misuse: a closure whose Callback has 4 parameters on Windows x64: with the object pointer in front the fourth
// would move from position 4 (r9 or xmm3) to the stack, whatever its kind (float and double count here). Registered
// for Windows x64 only.
#include <member_thunk/page.hpp>

namespace
{
	struct widget
	{
		void four(int, double, const char*, float) {}
		void three(int, double, const char*) {}
	};
} // namespace

void compile_fail(member_thunk::page& p, widget& w)
{
#ifndef MEMBER_THUNK_COMPILE_FAIL_CONTROL
	using callback = void (*)(int, double, const char*, float); // wrong: four positions
	[[maybe_unused]] const auto cb = p.make_closure<callback, &widget::four>(&w);
#else
	using callback = void (*)(int, double, const char*); // the limit
	[[maybe_unused]] const auto cb = p.make_closure<callback, &widget::three>(&w);
#endif
}
