// member_thunk: a heap of thunk pages.
#pragma once

#include "detail/config.hpp"
#include "detail/heap_core.hpp"
#include "detail/os/native.hpp"
#include "detail/region.hpp"
#include "lock.hpp"
#include "page.hpp"

#include <cstddef>
#include <mutex>

namespace member_thunk
{
	/// The lock a heap uses when none is named: slim_lock when the default heap is the single thread-safe heap
	/// (MEMBER_THUNK_DEFAULT_HEAP_SAFETY 3), null_lock otherwise (thread-local or single-threaded default heap, or no
	/// default heap: then you handle thread safety yourself).
#if !defined(MEMBER_THUNK_DISABLE_DEFAULT_HEAP) && MEMBER_THUNK_DEFAULT_HEAP_SAFETY == 3
	using default_lock = slim_lock;
#else
	using default_lock = null_lock;
#endif

	/// A heap of thunk pages. allocate_page() and compact() take the lock; page handles return their page to the
	/// heap (under the lock) when destroyed. Not copyable, not movable (pages point to it). Destroying a heap while
	/// any of its pages is alive is a contract violation: the process ends with a message. `Os` replaces the OS
	/// back end (for tests that inject failures).
	template<class Lock = default_lock, detail::os::backend Os = detail::os::native>
	class heap final : private detail::page_owner
	{
		static_assert(heap_lock<Lock>, "member_thunk: the heap's Lock must be default-constructible and BasicLockable "
		                               "(have lock() and unlock()), such as slim_lock, null_lock or std::mutex");

	public:
		heap() = default;
		heap(const heap&) = delete;
		heap& operator=(const heap&) = delete;
		heap(heap&&) = delete;
		heap& operator=(heap&&) = delete;

		~heap() override
		{
			if (core_.live_pages() != 0)
				detail::fail_fast("a member_thunk::heap was destroyed while some of its pages were still alive; "
				                  "destroy every page before its heap");
		}

		/// Returns a new read-write page, ready for make_thunk(). Throws os_error if the OS refuses memory.
		[[nodiscard]] page allocate_page()
		{
			const std::lock_guard guard(lock_);
			check();
			auto result = core_.allocate(*this);
			check();
			return result;
		}

		/// Releases every region in which no page is alive. Throws os_error if the OS refuses to release one.
		void compact()
		{
			const std::lock_guard guard(lock_);
			check();
			core_.compact();
			check();
		}

		/// Checks the heap's invariants (see detail/heap_core.hpp); true when they hold.
		[[nodiscard]] bool is_valid() const
		{
			const std::lock_guard guard(lock_);
			return core_.is_valid(*this);
		}

		/// What the heap holds right now.
		[[nodiscard]] heap_statistics statistics() const
		{
			const std::lock_guard guard(lock_);
			return core_.statistics();
		}

	private:
		void check() const noexcept
		{
			MEMBER_THUNK_INVARIANT(core_.is_valid(*this), "the heap's regions and pages are inconsistent");
		}

		void seal_page(std::byte* address, std::size_t thunks, bool& sealed) override
		{
			detail::heap_core<Os>::seal(address, thunks, sealed);
		}

		void release_page(detail::region& r, std::byte* address, std::size_t sealed_thunks) noexcept override
		{
			const bool committed = detail::heap_core<Os>::revoke(address, sealed_thunks);
			const std::lock_guard guard(lock_); // a lock that throws here ends the process: no way to report
			check();
			core_.release(r, address, committed);
			check();
		}

		mutable Lock lock_;
		detail::heap_core<Os> core_;
	};
} // namespace member_thunk
