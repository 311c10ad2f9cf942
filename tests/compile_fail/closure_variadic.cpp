// Misuse: a variadic closure Callback (a closure cannot forward a variable argument list).
#include <member_thunk/page.hpp>

namespace
{
	struct printer
	{
		int print(const char*) { return 0; }
	};
} // namespace

void compile_fail(member_thunk::page& p, printer& w)
{
#ifndef MEMBER_THUNK_COMPILE_FAIL_CONTROL
	using callback = int (*)(const char*, ...); // wrong: variadic
#else
	using callback = int (*)(const char*);
#endif
	[[maybe_unused]] const auto cb = p.make_closure<callback, &printer::print>(&w);
}
