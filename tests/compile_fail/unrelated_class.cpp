// Misuse: a member function of a class the object neither is nor derives from.
#include <member_thunk/page.hpp>

namespace
{
	struct base
	{
		void on_event(int) {}
	};

	struct widget : base
	{
	};

	struct other
	{
		void on_event(int) {}
	};
} // namespace

void compile_fail(member_thunk::page& p, widget& w)
{
	using callback = void (*)(void*, int);
#ifndef MEMBER_THUNK_COMPILE_FAIL_CONTROL
	[[maybe_unused]] const auto cb = p.make_thunk<callback, &other::on_event>(&w); // wrong: unrelated class
#else
	[[maybe_unused]] const auto cb = p.make_thunk<callback, &base::on_event>(&w); // a base's member is fine
#endif
}
