// Misuse: a temporary callable for a unique closure of the default heap: it would be destroyed before the closure
// that refers to it is called.
#include <member_thunk/member_thunk.hpp>

void compile_fail()
{
	using callback = int (*)(const void*, const void*);
	int calls = 0;
#ifndef MEMBER_THUNK_COMPILE_FAIL_CONTROL
	[[maybe_unused]] const auto cb = member_thunk::make_unique_closure<callback>( // wrong: a temporary
	    [&calls](const void*, const void*) { return ++calls; });
#else
	auto count = [&calls](const void*, const void*) { return ++calls; };
	[[maybe_unused]] const auto cb = member_thunk::make_unique_closure<callback>(count);
#endif
}
