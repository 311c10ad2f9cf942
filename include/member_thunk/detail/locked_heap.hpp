// member_thunk: one heap mechanism for every owner of regions: heap_core behind a lock, taking back the pages its
// handles free. The user's heap<Lock>, a thread's default heap (MEMBER_THUNK_THREAD_LOCAL_HEAPS) and the orphanage
// that adopts the pages outliving their thread are all this class; they differ only in their Policy:
//   Policy::cache_capacity      how many freed pages to keep committed for reuse
//   Policy::unreserve_empty     give a region back as soon as its last page is freed (the orphanage)
//   policy.check_free_thread()  called before a page is freed (a thread's heap: only on its thread)
#pragma once

#include "../heap_statistics.hpp"
#include "../page.hpp"
#include "config.hpp"
#include "heap_core.hpp"
#include "os/result.hpp"
#include "region.hpp"

#include <cstddef>
#include <mutex>

namespace member_thunk::detail
{
	/// The policy of a heap that any thread may use (through its lock) and that keeps its regions until compact().
	struct shared_heap_policy
	{
		static constexpr std::size_t cache_capacity = MEMBER_THUNK_PAGE_CACHE;
		static constexpr bool unreserve_empty = false;
		static void check_free_thread() noexcept {}
	};

	template<class Lock, os::backend Os, class Policy>
	class locked_heap : public page_owner, protected Policy
	{
	public:
		using core_type = heap_core<Os, Policy::cache_capacity>;

		locked_heap() = default;
		locked_heap(const locked_heap&) = delete;
		locked_heap& operator=(const locked_heap&) = delete;
		locked_heap(locked_heap&&) = delete;
		locked_heap& operator=(locked_heap&&) = delete;
		~locked_heap() override = default;

		/// A new writable page, filled with traps. Throws os_error if the OS refuses memory, std::bad_alloc.
		[[nodiscard]] page allocate_page()
		{
			const std::lock_guard guard(lock_);
			check();
			auto result = core_.allocate(*this);
			check();
			return result;
		}

		/// Gives back the regions in which no page is alive and decommits the cached pages. Throws os_error.
		void compact()
		{
			const std::lock_guard guard(lock_);
			check();
			core_.compact();
			check();
		}

		/// The first broken clause of the invariants (detail/heap_core.hpp), if any.
		[[nodiscard]] invariant_violation first_violation() const
		{
			const std::lock_guard guard(lock_);
			return core_.first_violation(*this);
		}

		[[nodiscard]] bool is_valid() const { return !first_violation(); }

		[[nodiscard]] heap_statistics statistics() const
		{
			const std::lock_guard guard(lock_);
			return core_.statistics();
		}

		/// Revokes the page outside the lock (it is still marked used, so nothing else touches it), then takes it
		/// back under the lock. A lock that throws here ends the process: a destructor has no way to report.
		void free_page(region& r, std::byte* address, std::size_t sealed_thunks) noexcept final
		{
			Policy::check_free_thread();
			const bool committed = r.kind->revoke(address, r.page_size, sealed_thunks);
			const std::lock_guard guard(lock_);
			check();
			core_.return_page(r, address, committed);
			if constexpr (Policy::unreserve_empty)
				core_.unreserve_if_empty(r);
			check();
		}

	protected:
		/// Runs `f(core)` under the lock (for adopting and handing over regions).
		template<class F>
		void with_core(F f) noexcept
		{
			const std::lock_guard guard(lock_);
			check();
			f(core_);
			check();
		}

		[[nodiscard]] std::size_t live_pages() const
		{
			const std::lock_guard guard(lock_);
			return core_.live_pages();
		}

	private:
		void check() const noexcept
		{
#if MEMBER_THUNK_DEBUG
			if (const auto v = core_.first_violation(*this))
				fail_invariant("invariant broken: a heap's regions and pages are inconsistent", v);
#endif
		}

		mutable Lock lock_;
		core_type core_;
	};
} // namespace member_thunk::detail
