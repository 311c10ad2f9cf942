// Misuse: the Callback has no parameter for the thunk to replace with the object pointer.
#include <member_thunk/page.hpp>

namespace
{
	struct widget
	{
		void on_event() {}
	};
} // namespace

void compile_fail(member_thunk::page& p, widget& w)
{
#ifndef MEMBER_THUNK_COMPILE_FAIL_CONTROL
	using callback = void (*)(); // wrong: no first parameter
#else
	using callback = void (*)(void*);
#endif
	[[maybe_unused]] const auto cb = p.make_thunk<callback, &widget::on_event>(&w);
}
