// Misuse: the Callback's first parameter is an int, smaller than a pointer, so the object pointer cannot take its
// place.
#include <member_thunk/page.hpp>

#include <cstdint>

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
	using callback = void (*)(int, int); // wrong: int is not pointer-sized
#else
	using callback = void (*)(std::intptr_t, int);
#endif
	[[maybe_unused]] const auto cb = p.make_thunk<callback, &widget::on_event>(&w);
}
