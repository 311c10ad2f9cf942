// member_thunk: a heap of thunk pages.
#pragma once

#include "detail/config.hpp"
#include "detail/locked_heap.hpp"
#include "detail/os/native.hpp"
#include "heap_statistics.hpp"
#include "lock.hpp"
#include "page.hpp"
#include "unique_thunk.hpp"

namespace member_thunk
{
	/// The lock a heap uses when none is named: slim_lock when the default heap is the single thread-safe heap
	/// (MEMBER_THUNK_THREAD_SAFE_HEAP), null_lock otherwise (thread-local or single-threaded default heap, or no
	/// default heap: then you handle thread safety yourself).
#if !defined(MEMBER_THUNK_DISABLE_DEFAULT_HEAP) && MEMBER_THUNK_DEFAULT_HEAP_SAFETY == MEMBER_THUNK_THREAD_SAFE_HEAP
	using default_lock = slim_lock;
#else
	using default_lock = null_lock;
#endif

	/// A heap of thunk pages. allocate_page() and compact() take the lock; page handles return their page to the
	/// heap (under the lock) when destroyed. Not copyable, not movable (pages point to it). Destroying a heap while
	/// any of its pages is alive is a contract violation: the process ends with a message. `Os` replaces the OS
	/// back end (for tests that inject failures).
	template<class Lock = default_lock, detail::os::backend Os = detail::os::native>
	// A final class: nothing can be deleted through a pointer to a base of it that lacks the virtual destructor.
	class heap final // NOLINT(cppcoreguidelines-virtual-class-destructor)
	    : private detail::locked_heap<Lock, Os, detail::shared_heap_policy>
	{
		static_assert(heap_lock<Lock>, "member_thunk: the heap's Lock must be default-constructible and BasicLockable "
		                               "(have lock() and unlock()), such as slim_lock, null_lock or std::mutex");
		using base = detail::locked_heap<Lock, Os, detail::shared_heap_policy>;

	public:
		heap() = default;
		heap(const heap&) = delete;
		heap& operator=(const heap&) = delete;
		heap(heap&&) = delete;
		heap& operator=(heap&&) = delete;

		~heap() override
		{
			if (base::live_objects() != 0)
				detail::fail_fast("a member_thunk::heap was destroyed while some of its pages or unique thunks were "
				                  "still alive; destroy them before their heap");
		}

		/// Returns a new read-write page, ready for make_thunk(). Throws os_error if the OS refuses memory.
		using base::allocate_page;

		/// Makes a unique thunk (see unique_thunk.hpp): make_unique_thunk<Callback, &Class::member>(object),
		/// make_unique_thunk<Callback>(object, &Class::member), make_unique_thunk<Callback>(callable).
		using base::make_unique_thunk;

		/// Makes a unique closure (every argument kept, the object pointer in front): make_unique_closure<Callback,
		/// &Class::member>(object), make_unique_closure<Callback>(object, &Class::member),
		/// make_unique_closure<Callback>(callable).
		using base::make_unique_closure;

		/// Gives back every region in which no page is alive, and the memory of the freed pages kept for reuse.
		/// Throws os_error if the OS refuses (after trying everything; the next call tries again).
		using base::compact;

		/// Checks the heap's invariants (see detail/heap_core.hpp); true when they hold.
		using base::is_valid;

		/// The first clause of the heap's invariants that does not hold (its expression, file and line), if any.
		using base::first_violation;

		/// What the heap holds right now.
		using base::statistics;
	};
} // namespace member_thunk
