// member_thunk: configuration macros, the targets the library supports, and the contract helpers every layer uses.
//
// Configuration (define before including any member_thunk header, the same way in every translation unit):
//   MEMBER_THUNK_DEFAULT_HEAP_SAFETY  how the default heap works: MEMBER_THUNK_THREAD_SAFE_HEAP (3, the default): one
//                                     locked heap; MEMBER_THUNK_THREAD_LOCAL_HEAPS (2): one heap per thread;
//                                     MEMBER_THUNK_SINGLE_THREADED_HEAP (1): one unlocked heap.
//   MEMBER_THUNK_DISABLE_DEFAULT_HEAP removes the default heap and the free functions allocate_page()/compact().
//   MEMBER_THUNK_DEBUG                1: check the heap and region invariants at entry and exit of every mutating
//                                     call (terminates with the failed clause on corruption); 2: also the quadratic
//                                     ones (no two regions overlap); 0: none. Defaults to 1 unless NDEBUG is defined.
//                                     It never changes the layout of any class.
//   MEMBER_THUNK_PAGE_CACHE           how many freed pages each heap keeps committed (read-write, trap-filled, never
//                                     executable) in a first-in first-out queue; a freed page is handed out again only
//                                     once this many pages were freed after it. Default 16; 0 decommits every freed
//                                     page at once (and may hand its address out again at once).
//   MEMBER_THUNK_UNIQUE_QUARANTINE    how many freed unique-thunk slots a heap keeps queued before it reuses the
//   oldest:
//                                     a dangling pointer to a destroyed unique thunk traps until at least this many
//                                     other unique thunks were destroyed after it. Default 256.
//   MEMBER_THUNK_NO_RUNTIME_CODE      never write code at run time: every thunk is a prebuilt stub.
//   MEMBER_THUNK_IMAGE_POOL_TABLES    the size of the pool of stubs compiled into the program (see
//                                     detail/arch/stub_tables.hpp). Default 1.
//   MEMBER_THUNK_FOLLOW_JUMPS         1 (default): a thunk that reaches its target with a direct jump skips a
//                                     trampoline that is only a tail jump, which means reading that trampoline's first
//                                     instruction; 0: never read code (for execute-only text).
//   MEMBER_THUNK_ALLOW_UNTESTED_TARGET  compile for an OS and architecture pair that no test runs on (see below).
#pragma once

#include <cstdio>
#include <exception>

#include <gsl/assert>

// The default heap's safety modes, by name.
#define MEMBER_THUNK_SINGLE_THREADED_HEAP 1
#define MEMBER_THUNK_THREAD_LOCAL_HEAPS 2
#define MEMBER_THUNK_THREAD_SAFE_HEAP 3

#ifndef MEMBER_THUNK_DEFAULT_HEAP_SAFETY
#define MEMBER_THUNK_DEFAULT_HEAP_SAFETY MEMBER_THUNK_THREAD_SAFE_HEAP
#endif
#if MEMBER_THUNK_DEFAULT_HEAP_SAFETY < 1 || MEMBER_THUNK_DEFAULT_HEAP_SAFETY > 3
#error \
    "MEMBER_THUNK_DEFAULT_HEAP_SAFETY must be 1 (single-threaded heap), 2 (thread-local heaps) or 3 (thread-safe heap)"
#endif

#ifndef MEMBER_THUNK_PAGE_CACHE
#define MEMBER_THUNK_PAGE_CACHE 16
#endif
#if MEMBER_THUNK_PAGE_CACHE < 0 || MEMBER_THUNK_PAGE_CACHE > 256
#error "MEMBER_THUNK_PAGE_CACHE must be 0 (decommit every freed page) or a number of pages up to 256"
#endif

#ifndef MEMBER_THUNK_UNIQUE_QUARANTINE
#define MEMBER_THUNK_UNIQUE_QUARANTINE 256
#endif
#if MEMBER_THUNK_UNIQUE_QUARANTINE < 0
#error "MEMBER_THUNK_UNIQUE_QUARANTINE must be 0 or a positive number of slots"
#endif

#ifndef MEMBER_THUNK_DEBUG
#ifdef NDEBUG
#define MEMBER_THUNK_DEBUG 0
#else
#define MEMBER_THUNK_DEBUG 1
#endif
#endif

#ifndef MEMBER_THUNK_FOLLOW_JUMPS
#if defined(__OpenBSD__)
#define MEMBER_THUNK_FOLLOW_JUMPS 0 // execute-only text: code cannot be read
#else
#define MEMBER_THUNK_FOLLOW_JUMPS 1
#endif
#endif

// Architectures: each has a thunk encoder (detail/arch/).
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

// Operating systems: each has a back end (detail/os/).
#if defined(_WIN32)
#define MEMBER_THUNK_OS_WINDOWS 1
#elif defined(__unix__) || defined(__APPLE__)
#define MEMBER_THUNK_OS_POSIX 1
#else
#error "member_thunk supports POSIX and Windows hosts; this target has no OS back end"
#endif

// Pointer authentication of function pointers (arm64e) would need every thunk address signed: not implemented.
#if defined(__has_feature)
#if __has_feature(ptrauth_calls)
#error "member_thunk does not support arm64e: function pointers are signed there, and thunk addresses are not"
#endif
#endif

// The targets the tests run on (README, "Platforms"): Linux on x86-64, i386 and AArch64 with GCC or Clang, and
// Windows x64 with mingw-w64 GCC. Anything else may compile but has never run a test; it needs the user's consent.
#if !defined(MEMBER_THUNK_ALLOW_UNTESTED_TARGET)
#if defined(__linux__) && (defined(__GNUC__) || defined(__clang__))
// tested: x86-64, i386 and AArch64 (the architecture checks above refuse the others)
#elif defined(_WIN32) && defined(__MINGW64__) && defined(MEMBER_THUNK_ARCH_X86_64)
// tested: Windows x64 with mingw-w64
#else
#error "member_thunk is tested on Linux (x86-64, i386, AArch64) and on Windows x64 with mingw-w64 only; define \
MEMBER_THUNK_ALLOW_UNTESTED_TARGET to build for this target anyway (and run the tests there)"
#endif
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

	/// The first clause of an invariant found false: its expression, file and line. A default-constructed one (no
	/// clause) means every clause held.
	struct invariant_violation
	{
		const char* clause = nullptr;
		const char* file = nullptr;
		int line = 0;

		[[nodiscard]] explicit operator bool() const noexcept { return clause != nullptr; }
	};

	/// Ends the process, naming the broken clause.
	[[noreturn]] inline void fail_invariant(const char* what, const invariant_violation& v) noexcept
	{
		report(what);
		static_cast<void>(std::fprintf(stderr, "member_thunk: broken clause: %s (%s:%d)\n", v.clause, v.file, v.line));
		static_cast<void>(std::fflush(stderr));
		std::terminate();
	}
} // namespace member_thunk::detail

// Inside a function returning invariant_violation: returns the clause if it is false.
#define MEMBER_THUNK_CLAUSE(cond)                                                          \
	do                                                                                     \
	{                                                                                      \
		if (!(cond))                                                                       \
			return ::member_thunk::detail::invariant_violation{#cond, __FILE__, __LINE__}; \
	} while (false)

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

// Checks an internal invariant in checked builds (MEMBER_THUNK_DEBUG >= 1). The expression must have no side effects.
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
