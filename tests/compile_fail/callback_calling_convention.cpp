// Misuse: the Callback has a calling convention other than the default one, so the first argument is not where the
// thunk writes it (ms_abi on x86-64 System V passes it in rcx, not rdi, and sysv_abi on Windows x64 in rdi, not rcx;
// stdcall on i386 also expects the callee to pop the arguments). Registered for x86 targets only: elsewhere these
// attributes do not exist.
#include <member_thunk/page.hpp>

namespace
{
	struct widget
	{
		int on_event(int x) { return x; }
	};
} // namespace

void compile_fail(member_thunk::page& p, widget& w)
{
#if defined(MEMBER_THUNK_COMPILE_FAIL_CONTROL)
	using callback = int (*)(void*, int);
#elif defined(__x86_64__) && defined(_WIN32)
	using callback = int(__attribute__((sysv_abi))*)(void*, int); // wrong: System V convention on Windows x64
#elif defined(__x86_64__)
	using callback = int(__attribute__((ms_abi))*)(void*, int); // wrong: Windows x64 convention on System V
#else
	using callback = int(__attribute__((stdcall))*)(void*, int); // wrong: the callee pops, and cdecl's does not
#endif
	[[maybe_unused]] const auto cb = p.make_thunk<callback, &widget::on_event>(&w);
}
