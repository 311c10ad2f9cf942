// member_thunk: the heap's mechanism, without its lock: the regions, page allocation, the return of freed pages
// (page_cache.hpp), compaction, the hand-over of regions to another heap, and the invariants. locked_heap puts a
// lock (or none) around it for the user's heaps, the thread-local default heaps and the orphanage.
//
// Invariants of a heap_core h (checked by first_violation()):
//   h's regions form a valid region_list; every region is valid and owned by h's owner
//   no two regions overlap (checked at MEMBER_THUNK_DEBUG >= 2: quadratic)
//   h.live_pages_   == Σ popcount(r.used)
//   h.cached_pages_ == Σ popcount(r.committed & ~r.used)       free pages kept writable and trap-filled
//   h.cache_.size() == Σ popcount(r.queued)                     the first-in first-out queue of cached pages
//
// A freed page is revoked by its owner before the heap is locked (page_kind::revoke: no longer executable, trap-
// filled), then returned here under the lock: queued for reuse, or decommitted. So a steady state of allocating,
// sealing and freeing pages costs two protection changes per page, none of them under the lock, and no mapping change.
#pragma once

#include "../heap_statistics.hpp"
#include "../page.hpp"
#include "arch/encoder.hpp"
#include "config.hpp"
#include "os/result.hpp"
#include "os_error.hpp"
#include "page_cache.hpp"
#include "page_kind.hpp"
#include "placement.hpp"
#include "region.hpp"
#include "region_list.hpp"

#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace member_thunk::detail
{
	template<os::backend Os, std::size_t CacheCapacity = MEMBER_THUNK_PAGE_CACHE>
	class heap_core
	{
		using encoder = arch::native_encoder;

		template<os::backend, std::size_t>
		friend class heap_core;

	public:
		heap_core() noexcept
		{
			const std::size_t page_size = Os::page_size();
			const std::size_t region_size = Os::region_size();
			MEMBER_THUNK_EXPECTS(page_size % encoder::slot_size == 0 && region_size % page_size == 0 &&
			                         region_size / page_size >= 1 && region_size / page_size <= region::max_pages,
			                     "the OS back end's page size and region size do not fit a region");
		}

		heap_core(const heap_core&) = delete;
		heap_core& operator=(const heap_core&) = delete;
		heap_core(heap_core&&) = delete;
		heap_core& operator=(heap_core&&) = delete;

		/// Gives every region back. The owner has made sure no page is alive.
		~heap_core()
		{
			while (region* r = regions_.front())
			{
				// Nothing to report to: a failed munmap/VirtualFree of our own reservation leaves address space
				// behind but no accessible memory (every page in it is decommitted or trap-filled and writable).
				static_cast<void>(Os::unreserve(r->base, r->size_bytes()));
				static_cast<void>(regions_.take(*r));
			}
		}

		/// Takes a free page: the oldest cached one once the cache is full (no system call), else a decommitted one
		/// (reserving a region if none has one), made writable. Either way the page is filled with traps. Throws
		/// os_error or std::bad_alloc; the heap is unchanged but for a new empty region (compact() frees it).
		[[nodiscard]] page allocate(page_owner& owner)
		{
			region* r = nullptr;
			std::size_t index = 0;
			if (cache_.size() != 0 && cache_.full())
			{
				const auto oldest = cache_.pop_front();
				r = oldest.owner;
				index = oldest.index;
				--cached_pages_;
			}
			else
			{
				r = regions_.front();
				while (r != nullptr && !r->has_decommitted_page())
					r = r->next;
				if (r == nullptr)
					r = &add_region(owner);
				index = r->first_decommitted_page();
				if (const auto status = Os::make_writable(r->page_at(index), r->page_size); !status.ok())
					throw_os_error("commit a page for thunks", status);
				r->committed |= region::bit(index);
			}
			std::byte* const address = r->page_at(index);
			// Also over a cached page: whatever was written to it since it was freed never becomes executable.
			r->kind->fill_traps(address, r->page_size);
			r->used |= region::bit(index);
			++live_pages_;
			regions_.move_to_front(*r);
			return page_access::make(*r, address);
		}

		/// Takes back a page that its owner revoked (page_kind::revoke), `committed` being what that returned: queued
		/// at the back of the cache (the oldest cached page is decommitted if the cache is full), or decommitted.
		void return_page(region& r, std::byte* address, bool committed) noexcept
		{
			const std::size_t index = r.index_of(address);
			MEMBER_THUNK_INVARIANT(r.contains(address) && (r.used & region::bit(index)) != 0,
			                       "a page was returned that its region does not hold");
			r.used &= ~region::bit(index);
			--live_pages_;
			if (!committed)
			{
				r.committed &= ~region::bit(index);
				return;
			}
			++cached_pages_;
			if constexpr (CacheCapacity == 0)
				static_cast<void>(decommit_cached(r, index));
			else
			{
				if (cache_.full())
				{
					const auto oldest = cache_.pop_front();
					static_cast<void>(decommit_cached(*oldest.owner, oldest.index));
				}
				cache_.push_back(r, index);
			}
		}

		/// Gives back every region with no live page and decommits the cached pages of the others. Throws os_error
		/// (after trying them all) if the OS refused one; what it refused stays as it was (an empty region, a cached
		/// page outside the queue), and the next compact() tries again.
		void compact()
		{
			os::result first_failure = os::result::success();
			const char* doing = nullptr;
			const auto note = [&](const os::result& status, const char* what) {
				if (!status.ok() && first_failure.ok())
				{
					first_failure = status;
					doing = what;
				}
			};
			while (cache_.size() != 0)
				static_cast<void>(cache_.pop_front()); // decommitted below, with any page the queue had lost
			for (region* r = regions_.front(); r != nullptr;)
			{
				region* const next = r->next;
				if (r->empty())
					note(unreserve_region(*r), "release an empty region");
				else
					for (std::uint64_t cached = r->cached(); cached != 0; cached &= cached - 1)
						note(decommit_cached(*r, static_cast<std::size_t>(std::countr_zero(cached))),
						     "decommit a cached page");
				r = next;
			}
			if (!first_failure.ok())
				throw_os_error(doing, first_failure);
		}

		/// Gives `r` back if no page of it is alive (for the orphanage, which keeps nothing it does not need).
		void unreserve_if_empty(region& r) noexcept
		{
			if (r.empty())
				static_cast<void>(unreserve_region(r));
		}

		/// Hands every region with live pages to `to`, owned by `new_owner` from now on (their cached pages
		/// decommitted, best effort); gives the others back.
		template<std::size_t ToCapacity>
		void hand_over(heap_core<Os, ToCapacity>& to, page_owner& new_owner) noexcept
		{
			for (region* next = regions_.front(); next != nullptr;)
			{
				region& r = *next;
				next = r.next;
				if (r.empty())
				{
					// On failure the region stays here, and this heap's destructor tries once more.
					static_cast<void>(unreserve_region(r));
					continue;
				}
				cache_.remove(r);
				for (std::uint64_t cached = r.cached(); cached != 0; cached &= cached - 1)
					static_cast<void>(decommit_cached(r, static_cast<std::size_t>(std::countr_zero(cached))));
				live_pages_ -= r.live_pages();
				cached_pages_ -= r.cached_pages();
				r.owner.store(&new_owner, std::memory_order_release);
				to.live_pages_ += r.live_pages();
				to.cached_pages_ += r.cached_pages();
				to.regions_.push_front(regions_.take(r));
			}
		}

		/// The first clause of the invariants (see the top of this file) that does not hold, if any.
		[[nodiscard]] invariant_violation first_violation(const page_owner& owner) const noexcept
		{
			if (const auto v = regions_.first_violation())
				return v;
			std::size_t live = 0;
			std::size_t cached = 0;
			std::size_t queued = 0;
			for (const region* r = regions_.front(); r != nullptr; r = r->next)
			{
				if (const auto v = r->first_violation())
					return v;
				MEMBER_THUNK_CLAUSE(r->owner.load(std::memory_order_relaxed) == &owner);
#if MEMBER_THUNK_DEBUG >= 2
				for (const region* other = regions_.front(); other != r; other = other->next)
					MEMBER_THUNK_CLAUSE(r->base >= other->base + other->size_bytes() ||
					                    other->base >= r->base + r->size_bytes());
#endif
				live += r->live_pages();
				cached += r->cached_pages();
				queued += static_cast<std::size_t>(std::popcount(r->queued));
			}
			MEMBER_THUNK_CLAUSE(live == live_pages_);
			MEMBER_THUNK_CLAUSE(cached == cached_pages_);
			MEMBER_THUNK_CLAUSE(queued == cache_.size());
			return {};
		}

		[[nodiscard]] std::size_t live_pages() const noexcept
		{
			return live_pages_;
		}

		[[nodiscard]] heap_statistics statistics() const noexcept
		{
			heap_statistics s;
			s.live_pages = live_pages_;
			s.cached_pages = cached_pages_;
			for (const region* r = regions_.front(); r != nullptr; r = r->next)
			{
				++s.regions;
				s.reserved_bytes += r->size_bytes();
				s.committed_bytes += static_cast<std::size_t>(std::popcount(r->committed)) * r->page_size;
			}
			return s;
		}

	private:
		region& add_region(page_owner& owner)
		{
			auto r = std::make_unique<region>(); // before the reservation: a bad_alloc then leaves nothing behind
			if (const auto status = placement_.reserve(r->base); !status.ok())
				throw_os_error("reserve address space for thunks", status);
			r->page_size = Os::page_size();
			r->page_count = Os::region_size() / r->page_size;
			r->kind = &runtime_code_pages<Os>::kind;
			r->owner.store(&owner, std::memory_order_relaxed);
			return regions_.push_front(std::move(r));
		}

		/// Decommits a cached page that is not in the queue; if the OS refuses, it stays cached (writable traps are
		/// safe) and compact() tries again.
		os::result decommit_cached(region& r, std::size_t index) noexcept
		{
			auto status = Os::decommit(r.page_at(index), r.page_size);
			if (status.ok())
			{
				r.committed &= ~region::bit(index);
				--cached_pages_;
			}
			return status;
		}

		os::result unreserve_region(region& r) noexcept
		{
			MEMBER_THUNK_INVARIANT(r.empty(), "a region with live pages was about to be given back");
			auto status = Os::unreserve(r.base, r.size_bytes());
			if (status.ok())
			{
				cache_.remove(r);
				cached_pages_ -= r.cached_pages();
				static_cast<void>(regions_.take(r));
			}
			return status;
		}

		region_list regions_;
		page_cache<CacheCapacity> cache_;
		near_code_placement<encoder, Os> placement_;
		std::size_t live_pages_ = 0;
		std::size_t cached_pages_ = 0;
	};
} // namespace member_thunk::detail
