// member_thunk: the default heap and the free functions allocate_page() and compact() that use it.
//
// MEMBER_THUNK_DEFAULT_HEAP_SAFETY selects how it works (see the README's table):
//   MEMBER_THUNK_THREAD_SAFE_HEAP (3)      one heap for the process, locked with slim_lock (the default);
//   MEMBER_THUNK_THREAD_LOCAL_HEAPS (2)    one heap per thread, without locks; pages that outlive their thread stay
//                                          valid (see detail/thread_heap.hpp);
//   MEMBER_THUNK_SINGLE_THREADED_HEAP (1)  one heap for the process, without locks: use it from one thread at a time.
// The default heap of the thread-safe and single-threaded modes is never destroyed, so pages may outlive static
// destruction.
// MEMBER_THUNK_DISABLE_DEFAULT_HEAP removes all of this.
#pragma once

#include "detail/config.hpp"

#ifndef MEMBER_THUNK_DISABLE_DEFAULT_HEAP

#include "detail/os/native.hpp"
#include "detail/os_error.hpp"
#include "detail/thread_heap.hpp"
#include "heap.hpp"
#include "page.hpp"
#include "unique_thunk.hpp"

#include <utility>

#if MEMBER_THUNK_DEFAULT_HEAP_SAFETY == MEMBER_THUNK_THREAD_LOCAL_HEAPS
#include "detail/os/per_thread.hpp"
#endif

namespace member_thunk
{
	namespace detail
	{
#if MEMBER_THUNK_DEFAULT_HEAP_SAFETY == MEMBER_THUNK_THREAD_LOCAL_HEAPS
		using default_heap_type = thread_heap<os::native>;

		/// The calling thread's heap, made by its first call and handed to the orphanage when the thread ends
		/// (os::per_thread). Null for code that runs later in the thread's exit (Windows: see
		/// detail/os/windows_thread_exit.hpp). Throws os_error if the heap cannot be made.
		[[nodiscard]] inline default_heap_type* this_thread_heap()
		{
			default_heap_type* heap = nullptr;
			if (const auto status = os::per_thread<default_heap_type>::get(heap); !status.ok())
				throw_os_error("create the thread's default heap", status);
			return heap;
		}

		/// The calling thread's heap. Not for code that runs after the thread's heap was handed to the orphanage.
		[[nodiscard]] inline default_heap_type& default_heap()
		{
			default_heap_type* const heap = this_thread_heap();
			if (heap == nullptr)
				fail_fast("the default heap of a thread was used after the thread handed it to the orphanage");
			return *heap;
		}
#elif MEMBER_THUNK_DEFAULT_HEAP_SAFETY == MEMBER_THUNK_THREAD_SAFE_HEAP
		/// One locked heap for the process, with a cache of unique-thunk slots per thread (slot_cache.hpp).
		using default_heap_type = locked_heap<default_lock, os::native, default_heap_policy>;
#else
		using default_heap_type = heap<default_lock>;

#endif
#if MEMBER_THUNK_DEFAULT_HEAP_SAFETY != MEMBER_THUNK_THREAD_LOCAL_HEAPS
		[[nodiscard]] inline default_heap_type& default_heap()
		{
			static never_destroyed<default_heap_type> the;
			return the.get();
		}
#endif
	} // namespace detail

	namespace detail
	{
		/// Calls `f` with the heap that serves the calling thread: the default heap, or, late in a thread's exit
		/// once its heap was handed to the orphanage (MEMBER_THUNK_THREAD_LOCAL_HEAPS), the orphanage (locked, never
		/// destroyed), which takes what it makes back from any thread.
		template<class F>
		decltype(auto) with_serving_heap(F&& f)
		{
#if MEMBER_THUNK_DEFAULT_HEAP_SAFETY == MEMBER_THUNK_THREAD_LOCAL_HEAPS
			if (default_heap_type* const heap = this_thread_heap())
				return std::forward<F>(f)(*heap);
			return std::forward<F>(f)(orphanage<os::native>::instance());
#else
			return std::forward<F>(f)(default_heap());
#endif
		}
	} // namespace detail

	/// Returns a new read-write page from the default heap. Throws os_error if the OS refuses memory,
	/// image_pool_exhausted if it refuses run-time code and no prebuilt stub is left.
	[[nodiscard]] inline page allocate_page()
	{
		return detail::with_serving_heap([](auto& heap) { return heap.allocate_page(); });
	}

	/// A unique thunk from the default heap that calls `(that->*MemberFn)(args...)` when called as
	/// `Callback(first, args...)`; callable at once. Throws os_error, image_pool_exhausted or std::bad_alloc.
	template<class Callback, auto MemberFn, class Class>
	[[nodiscard]] unique_thunk<Callback> make_unique_thunk(Class* that)
	{
		return detail::with_serving_heap(
		    [that](auto& heap) { return heap.template make_unique_thunk<Callback, MemberFn>(that); });
	}

	/// A unique thunk from the default heap that calls `(that->*fn)(args...)`.
	template<class Callback, class MemberFn, class Class>
	[[nodiscard]] unique_thunk<Callback> make_unique_thunk(Class* that, MemberFn fn)
	{
		return detail::with_serving_heap(
		    [that, fn](auto& heap) { return heap.template make_unique_thunk<Callback>(that, fn); });
	}

	/// A unique thunk from the default heap that calls `callable(args...)` (referenced, not copied: it must outlive
	/// the thunk).
	template<class Callback, class Callable>
	[[nodiscard]] unique_thunk<Callback> make_unique_thunk(Callable&& callable)
	{
		return detail::with_serving_heap([&callable](auto& heap) {
			return heap.template make_unique_thunk<Callback>(std::forward<Callable>(callable));
		});
	}

	/// A unique closure from the default heap that calls `(that->*MemberFn)(args...)` when called as
	/// `Callback(args...)`: every argument is kept and the object pointer passed in front of them (see
	/// page::make_closure for what Callback may be). Callable at once.
	template<class Callback, auto MemberFn, class Class>
	[[nodiscard]] unique_thunk<Callback> make_unique_closure(Class* that)
	{
		return detail::with_serving_heap(
		    [that](auto& heap) { return heap.template make_unique_closure<Callback, MemberFn>(that); });
	}

	/// A unique closure from the default heap that calls `(that->*fn)(args...)`.
	template<class Callback, class MemberFn, class Class>
	[[nodiscard]] unique_thunk<Callback> make_unique_closure(Class* that, MemberFn fn)
	{
		return detail::with_serving_heap(
		    [that, fn](auto& heap) { return heap.template make_unique_closure<Callback>(that, fn); });
	}

	/// A unique closure from the default heap that calls `callable(args...)` (referenced, not copied).
	template<class Callback, class Callable>
	[[nodiscard]] unique_thunk<Callback> make_unique_closure(Callable&& callable)
	{
		return detail::with_serving_heap([&callable](auto& heap) {
			return heap.template make_unique_closure<Callback>(std::forward<Callable>(callable));
		});
	}

	/// Releases the default heap's regions in which no page is alive (in mode 2: the calling thread's heap).
	inline void compact()
	{
#if MEMBER_THUNK_DEFAULT_HEAP_SAFETY == MEMBER_THUNK_THREAD_LOCAL_HEAPS
		// Late in the thread's exit there is nothing to do: the orphanage keeps no empty region and no free page.
		if (detail::default_heap_type* const heap = detail::this_thread_heap())
			heap->compact();
#else
		detail::default_heap().compact();
#endif
	}
} // namespace member_thunk

#endif
