// Misuse: the Callback's first parameter is an integer of another size than a pointer, so the object pointer cannot
// take its place: int where pointers are 64 bits wide, long long (two stack slots) on i386.
#include <member_thunk/page.hpp>

#include <cstdint>
#include <type_traits>

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
	using not_pointer_sized = std::conditional_t<sizeof(int) == sizeof(void*), long long, int>;
	using callback = void (*)(not_pointer_sized, int); // wrong: not pointer-sized
#else
	using callback = void (*)(std::intptr_t, int);
#endif
	[[maybe_unused]] const auto cb = p.make_thunk<callback, &widget::on_event>(&w);
}
