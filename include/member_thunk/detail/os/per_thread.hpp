// member_thunk: one object per thread, destroyed when its thread ends (a thread's default heap in
// MEMBER_THUNK_THREAD_LOCAL_HEAPS mode).
//
// per_thread<T>::get(out) sets `out` to the calling thread's T, made by the thread's first call (T must be nothrow
// default-constructible). When the thread ends, its T is destroyed:
//  - POSIX: a thread_local T, destroyed with the thread's other thread_local objects (in the reverse order of their
//    construction); `out` is never null.
//  - Windows: after all of the thread's C++ thread_local objects, by a PE TLS callback (windows_thread_exit.hpp);
//    `out` is null for code that runs later in the thread's exit, which must then do without.
// A failure to make the T (Windows: no TLS slot left, no memory) is returned; the caller reports it.
#pragma once

#include "../config.hpp"
#include "result.hpp"

#include <type_traits>

#if defined(MEMBER_THUNK_OS_WINDOWS)
#include "windows_thread_exit.hpp"
#endif

namespace member_thunk::detail::os
{
#if defined(MEMBER_THUNK_OS_WINDOWS)
	template<class T>
	using per_thread = windows_per_thread<T>;
#else
	template<class T>
	struct per_thread
	{
		static result get(T*& out) noexcept
		{
			static_assert(std::is_nothrow_default_constructible_v<T>,
			              "a per-thread object is made where nothing may throw");
			thread_local T the;
			out = &the;
			return result::success();
		}
	};
#endif
} // namespace member_thunk::detail::os
