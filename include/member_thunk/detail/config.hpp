// member_thunk: configuration macros and the contract helpers every layer uses.
//
// Configuration (define before including any member_thunk header, the same way in every translation unit):
//   MEMBER_THUNK_DEFAULT_HEAP_SAFETY  3 (default): one locked default heap; 2: one default heap per thread;
//                                     1: one unlocked default heap.
//   MEMBER_THUNK_DISABLE_DEFAULT_HEAP removes the default heap and the free functions allocate_page()/compact().
//   MEMBER_THUNK_DEBUG                1: check the heap and region invariants at entry and exit of every mutating
//                                     call (terminates with a message on corruption); 0: do not. Defaults to 1
//                                     unless NDEBUG is defined. It never changes the layout of any class.
//   MEMBER_THUNK_PAGE_CACHE           how many freed pages each heap keeps committed (read-write, trap-filled, never
//                                     executable) for reuse by the next allocate_page(); compact() decommits them.
//                                     Default 16; 0 decommits every freed page at once.
#pragma once

#include <cstdio>
#include <exception>

#include <gsl/assert>

#ifndef MEMBER_THUNK_DEFAULT_HEAP_SAFETY
#define MEMBER_THUNK_DEFAULT_HEAP_SAFETY 3
#endif
#if MEMBER_THUNK_DEFAULT_HEAP_SAFETY < 1 || MEMBER_THUNK_DEFAULT_HEAP_SAFETY > 3
#error \
    "MEMBER_THUNK_DEFAULT_HEAP_SAFETY must be 1 (single-threaded heap), 2 (thread-local heaps) or 3 (thread-safe heap)"
#endif

#ifndef MEMBER_THUNK_PAGE_CACHE
#define MEMBER_THUNK_PAGE_CACHE 16
#endif
#if MEMBER_THUNK_PAGE_CACHE < 0
#error "MEMBER_THUNK_PAGE_CACHE must be 0 (decommit every freed page) or a positive number of pages"
#endif

#ifndef MEMBER_THUNK_DEBUG
#ifdef NDEBUG
#define MEMBER_THUNK_DEBUG 0
#else
#define MEMBER_THUNK_DEBUG 1
#endif
#endif

#if defined(__x86_64__) || defined(_M_X64)
#define MEMBER_THUNK_ARCH_X86_64 1
#elif defined(__aarch64__) || defined(_M_ARM64)
#define MEMBER_THUNK_ARCH_AARCH64 1
#elif defined(_M_IX86) || (defined(__i386__) && defined(_WIN32))
// Win32 callbacks are stdcall and members thiscall; the i386 encoder implements cdecl only, and nothing tests it there.
#error "member_thunk does not support 32-bit x86 Windows: its i386 encoder implements the cdecl of Linux and the BSDs"
#elif defined(__i386__)
#define MEMBER_THUNK_ARCH_X86_32 1
#else
#error "member_thunk supports x86-64, AArch64 and i386 (POSIX) hosts; this target has no thunk encoder"
#endif

#if defined(_WIN32)
#define MEMBER_THUNK_OS_WINDOWS 1
#elif defined(__unix__) || defined(__APPLE__)
#define MEMBER_THUNK_OS_POSIX 1
#else
#error "member_thunk supports POSIX and Windows hosts; this target has no OS back end"
#endif

namespace member_thunk::detail
{
	// Reports a broken contract or invariant and ends the process. Used where throwing is not an option
	// (destructors, corrupted state) or would hide a programming error.
	inline void report(const char* what) noexcept
	{
		// Best effort: if stderr is gone there is nobody left to tell.
		static_cast<void>(std::fputs("member_thunk: fatal: ", stderr));
		static_cast<void>(std::fputs(what, stderr));
		static_cast<void>(std::fputc('\n', stderr));
		static_cast<void>(std::fflush(stderr));
	}

	[[noreturn]] inline void fail_fast(const char* what) noexcept
	{
		report(what);
		std::terminate();
	}
} // namespace member_thunk::detail

// Checks a public precondition: on violation, says which one on stderr, then fails through GSL's contract handler
// (std::terminate). The condition is evaluated once.
#define MEMBER_THUNK_EXPECTS(cond, message)                                    \
	do                                                                         \
	{                                                                          \
		const bool member_thunk_expects_ok = static_cast<bool>(cond);          \
		if (!member_thunk_expects_ok)                                          \
			::member_thunk::detail::report("precondition violated: " message); \
		Expects(member_thunk_expects_ok);                                      \
	} while (false)

// Checks an internal invariant in checked builds (MEMBER_THUNK_DEBUG=1). The expression must have no side effects.
#if MEMBER_THUNK_DEBUG
#define MEMBER_THUNK_INVARIANT(cond, what)                                \
	do                                                                    \
	{                                                                     \
		if (!(cond))                                                      \
			::member_thunk::detail::fail_fast("invariant broken: " what); \
	} while (false)
#else
#define MEMBER_THUNK_INVARIANT(cond, what) \
	do                                     \
	{                                      \
	} while (false)
#endif
