// member_thunk: the heap's mechanism, without its lock: the regions, the choice between run-time code and prebuilt
// stubs, page allocation, the return of freed pages (page_cache.hpp), the slab of unique thunks (slot_queue.hpp),
// compaction, the hand-over of regions to another heap, and the invariants. locked_heap puts a lock (or none) around it
// for the user's heaps, the thread-local default heaps and the orphanage.
//
// Run-time code or prebuilt stubs: page handles get run-time code (the fastest call: a direct jump) while the OS
// allows it, and pages of prebuilt stubs once it does not. The heap finds out without a caller ever seeing a refusal:
// each new region of run-time code is probed (one of its pages made read-execute and inaccessible again), and a W^X
// policy's refusal there, or when a page of it is sealed, switches the heap to prebuilt stubs for good.
// MEMBER_THUNK_NO_RUNTIME_CODE switches it from the start. Unique thunks always take a slot of prebuilt stubs.
//
// Invariants of a heap_core h (checked by first_violation()):
//   h's regions form a valid region_list; every region is valid and owned by h's owner
//   no two regions overlap (checked at MEMBER_THUNK_DEBUG >= 2: quadratic)
//   h.live_pages_   == Σ popcount(r.used & ~r.slab)             pages held by page handles
//   h.cached_pages_ == Σ popcount(r.committed & ~r.used)        free pages kept writable and trap-filled
//   h.cache_.size() == Σ popcount(r.queued)                     the first-in first-out queue of cached pages
//   h.live_slots_   == Σ r.live_slots[i]                        unique thunks alive
//   the slot queue holds free slots of slab pages only, each once (slot_queue.hpp)
#pragma once

#include "../heap_statistics.hpp"
#include "../page.hpp"
#include "arch/encoder.hpp"
#include "config.hpp"
#include "os/result.hpp"
#include "os_error.hpp"
#include "page_cache.hpp"
#include "placement.hpp"
#include "prebuilt_regions.hpp"
#include "region.hpp"
#include "region_kind.hpp"
#include "region_list.hpp"
#include "runtime_regions.hpp"
#include "slot_queue.hpp"

#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace member_thunk::detail
{
	/// Where a unique thunk's data slot is.
	struct slot_location
	{
		region* owner = nullptr;
		std::byte* slot = nullptr;
	};

	template<os::backend Os, std::size_t CacheCapacity = MEMBER_THUNK_PAGE_CACHE, bool ReusesSlots = true>
	class heap_core
	{
		using encoder = arch::native_encoder;

		template<os::backend, std::size_t, bool>
		friend class heap_core;

	public:
		heap_core() noexcept
		{
			const std::size_t page_size = Os::page_size();
			const std::size_t region_size = Os::region_size();
			MEMBER_THUNK_EXPECTS(page_size % encoder::slot_size == 0 && region_size % page_size == 0 &&
			                         region_size / page_size >= 1 && region_size / page_size <= region::max_pages &&
			                         stubs::table_size % page_size == 0,
			                     "the OS back end's page size and region size do not fit a region");
		}

		heap_core(const heap_core&) = delete;
		heap_core& operator=(const heap_core&) = delete;
		heap_core(heap_core&&) = delete;
		heap_core& operator=(heap_core&&) = delete;

		/// Gives every region back. The owner has made sure no page and no unique thunk is alive.
		~heap_core()
		{
			while (region* r = regions_.front())
			{
				// Nothing to report to: a failed munmap/VirtualFree of our own reservation leaves address space
				// behind but no accessible memory (every page in it is decommitted or trap-filled and writable).
				static_cast<void>(r->kind->unreserve(*r));
				static_cast<void>(regions_.take(*r));
			}
		}

		/// Takes a free page for a page handle: of run-time code while the OS allows it, else of prebuilt stubs.
		/// The oldest cached page once the cache is full (no system call), else a decommitted one (reserving a region
		/// if none has one), made writable. Either way the page is filled with traps. Throws os_error,
		/// image_pool_exhausted or std::bad_alloc; the heap is unchanged but for a new empty region (compact() frees
		/// it).
		[[nodiscard]] page allocate(page_owner& owner)
		{
			note_refusals();
			const bool prebuilt = runtime_refused_;
			const auto [r, index] = take_page(owner, prebuilt);
			++live_pages_;
			return page_access::make(*r, r->page_at(index));
		}

		/// Takes back a page that its owner revoked (region_kind::revoke), `committed` being what that returned: queued
		/// at the back of the cache (the oldest cached page is decommitted if the cache is full), or decommitted.
		void return_page(region& r, std::byte* address, bool committed) noexcept
		{
			const std::size_t index = r.index_of(address);
			MEMBER_THUNK_INVARIANT(r.contains(address) && (r.used & ~r.slab & region::bit(index)) != 0,
			                       "a page was returned that its region does not hold");
			--live_pages_;
			put_page(r, index, committed);
		}

		/// Takes a free data slot of prebuilt stubs for a unique thunk; its stub is `location.slot +
		/// location.owner->thunk_stubs`. The slot holds the trap until the caller writes it. Throws like allocate().
		[[nodiscard]] slot_location allocate_slot(page_owner& owner)
		{
			std::byte* slot = nullptr;
			if (slots_.ready())
				slot = slots_.pop();
			else
			{
				if (fresh_.exhausted())
				{
					const auto [r, index] = take_page(owner, true);
					r->slab |= region::bit(index);
					fresh_.start(*r, index);
				}
				slot = fresh_.take();
			}
			region& r = region_of_slot(slot);
			++live_slots_;
			++r.live_slots[r.index_of(slot)];
			return {&r, slot};
		}

		/// Takes back a unique thunk's slot, which the caller has emptied (it holds the trap). Queued for reuse; a
		/// heap that never reuses slots (the orphanage) gives the page back once its last slot is free.
		void return_slot(region& r, std::byte* slot) noexcept
		{
			const std::size_t index = r.index_of(slot);
			MEMBER_THUNK_INVARIANT(r.contains(slot) && (r.slab & region::bit(index)) != 0 && r.live_slots[index] != 0,
			                       "a unique thunk's slot was returned that its region does not hold");
			--live_slots_;
			--r.live_slots[index];
			if constexpr (ReusesSlots)
				slots_.push(slot);
			else if (r.live_slots[index] == 0)
				release_slab_page(r, index);
		}

		/// Gives back every region with no live page and no unique thunk, the slab pages no unique thunk uses (but
		/// those with a slot still in quarantine), and the memory of the cached pages of the others. Throws os_error
		/// (after trying them all) if the OS refused one; what it refused stays as it was, and the next compact() tries
		/// again.
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
			release_unused_slab_pages();
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

		/// Hands every region with live pages or unique thunks to `to`, owned by `new_owner` from now on (their
		/// cached pages decommitted and their free slots forgotten, best effort); gives the others back.
		template<std::size_t ToCapacity, bool ToReuses>
		void hand_over(heap_core<Os, ToCapacity, ToReuses>& to, page_owner& new_owner) noexcept
		{
			slots_.clear();
			fresh_ = {};
			release_unused_slab_pages();
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
				const std::size_t slots = slab_slots(r);
				live_pages_ -= r.handle_pages();
				cached_pages_ -= r.cached_pages();
				live_slots_ -= slots;
				r.owner.store(&new_owner, std::memory_order_release);
				to.live_pages_ += r.handle_pages();
				to.cached_pages_ += r.cached_pages();
				to.live_slots_ += slots;
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
			std::size_t slots = 0;
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
				live += r->handle_pages();
				cached += r->cached_pages();
				queued += static_cast<std::size_t>(std::popcount(r->queued));
				slots += slab_slots(*r);
			}
			MEMBER_THUNK_CLAUSE(live == live_pages_);
			MEMBER_THUNK_CLAUSE(cached == cached_pages_);
			MEMBER_THUNK_CLAUSE(queued == cache_.size());
			MEMBER_THUNK_CLAUSE(slots == live_slots_);
#if MEMBER_THUNK_DEBUG >= 2
			if (const auto v = slots_.first_violation())
				return v;
#endif
			return {};
		}

		[[nodiscard]] std::size_t live_pages() const noexcept
		{
			return live_pages_;
		}
		[[nodiscard]] std::size_t live_slots() const noexcept
		{
			return live_slots_;
		}

		/// Whether page handles get run-time code (false once the OS refused, or with MEMBER_THUNK_NO_RUNTIME_CODE).
		[[nodiscard]] bool makes_runtime_code() const noexcept
		{
			return !runtime_refused_;
		}

		[[nodiscard]] heap_statistics statistics() const noexcept
		{
			heap_statistics s;
			s.live_pages = live_pages_;
			s.cached_pages = cached_pages_;
			s.live_unique_thunks = live_slots_;
			s.runtime_code = !runtime_refused_;
			for (const region* r = regions_.front(); r != nullptr; r = r->next)
			{
				++s.regions;
				if (r->kind->prebuilt)
					++s.prebuilt_regions;
				s.reserved_bytes += r->reservation_size;
				s.committed_bytes += static_cast<std::size_t>(std::popcount(r->committed)) * r->page_size;
				s.slab_pages += static_cast<std::size_t>(std::popcount(r->slab));
			}
			return s;
		}

	private:
		struct taken_page
		{
			region* r;
			std::size_t index;
		};

		/// A runtime region's seal was refused by a W^X policy since the last allocation: no more run-time code.
		void note_refusals() noexcept
		{
			if (runtime_refused_)
				return;
			for (const region* r = regions_.front(); r != nullptr; r = r->next)
				if (!r->kind->prebuilt && r->execution_refused.load(std::memory_order_relaxed))
				{
					runtime_refused_ = true;
					return;
				}
		}

		/// A free page of the wanted kind, writable and trap-filled, marked used.
		taken_page take_page(page_owner& owner, bool prebuilt)
		{
			region* r = nullptr;
			std::size_t index = 0;
			// The cache hands out its oldest page once full; one of the other kind is decommitted on the way.
			while (cache_.size() != 0 && cache_.full() && r == nullptr)
			{
				const auto oldest = cache_.pop_front();
				if (oldest.owner->kind->prebuilt == prebuilt)
				{
					r = oldest.owner;
					index = oldest.index;
					--cached_pages_;
				}
				else
					static_cast<void>(decommit_cached(*oldest.owner, oldest.index));
			}
			if (r == nullptr)
			{
				r = regions_.front();
				while (r != nullptr && (r->unusable || r->kind->prebuilt != prebuilt || !r->has_decommitted_page()))
					r = r->next;
				if (r == nullptr)
				{
					r = prebuilt ? &add_prebuilt_region(owner) : add_runtime_region(owner);
					if (r == nullptr) // the probe found that the OS forbids run-time code
						return take_page(owner, true);
				}
				index = r->first_decommitted_page();
				if (const auto status = r->kind->commit(r->page_at(index), r->page_size); !status.ok())
					throw_os_error("commit a page for thunks", status);
				r->committed |= region::bit(index);
			}
			// Also over a cached page: whatever was written to it since it was freed never becomes executable.
			r->kind->fill_traps(*r, r->page_at(index));
			r->used |= region::bit(index);
			regions_.move_to_front(*r);
			return {r, index};
		}

		/// A free page back into its region: queued in the cache, or decommitted.
		void put_page(region& r, std::size_t index, bool committed) noexcept
		{
			r.used &= ~region::bit(index);
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

		/// A region of run-time code near the code, after probing that the OS lets it become executable; null (and
		/// nothing reserved) if a W^X policy refuses, which switches the heap to prebuilt stubs.
		region* add_runtime_region(page_owner& owner)
		{
			auto r = std::make_unique<region>(); // before the reservation: a bad_alloc then leaves nothing behind
			if (const auto status = placement_.reserve(r->base); !status.ok())
				throw_os_error("reserve address space for thunks", status);
			r->page_size = Os::page_size();
			r->page_count = Os::region_size() / r->page_size;
			r->reservation = r->base;
			r->reservation_size = Os::region_size();
			r->kind = &runtime_code_regions<Os>::kind;
			r->owner.store(&owner, std::memory_order_relaxed);
			if (const auto status = Os::probe_executable(r->base, r->page_size); !status.ok())
			{
				// If the OS refuses to take the region back, it is listed, empty, and compact() tries again.
				if (!Os::unreserve(r->reservation, r->reservation_size).ok())
					regions_.push_front(std::move(r));
				if (!status.is_policy_refusal())
					throw_os_error("find out whether the OS allows run-time code", status);
				runtime_refused_ = true;
				return nullptr;
			}
			return &regions_.push_front(std::move(r));
		}

		region& add_prebuilt_region(page_owner& owner)
		{
			auto r = std::make_unique<region>();
			// A reservation that a failed way could not give back is listed, empty and unusable, so that compact() (or
			// the destructor) gives it back instead of leaking it.
			reserve_prebuilt_region<Os>(*r, !runtime_refused_, [&](const region& lost) {
				auto kept = std::make_unique<region>();
				kept->base = lost.base;
				kept->page_size = lost.page_size;
				kept->page_count = lost.page_count;
				kept->reservation = lost.reservation;
				kept->reservation_size = lost.reservation_size;
				kept->kind = lost.kind;
				kept->unusable = true;
				kept->owner.store(&owner, std::memory_order_relaxed);
				regions_.push_front(std::move(kept));
			});
			r->owner.store(&owner, std::memory_order_relaxed);
			return regions_.push_front(std::move(r));
		}

		/// Unique thunks alive in `r`.
		[[nodiscard]] static std::size_t slab_slots(const region& r) noexcept
		{
			std::size_t total = 0;
			for (std::size_t i = 0; i < r.page_count; ++i)
				total += r.live_slots[i];
			return total;
		}

		/// A slab page none of whose slots is alive leaves the slab: its free slots leave the queue, and the page is
		/// returned as a freed page (cached or decommitted).
		void release_slab_page(region& r, std::size_t index) noexcept
		{
			std::byte* const page = r.page_at(index);
			slots_.remove_page(page, r.page_size);
			if (fresh_.is_on(page))
				fresh_ = {};
			r.slab &= ~region::bit(index);
			r.kind->fill_traps(r, page);
			put_page(r, index, true);
		}

		/// Releases the slab pages no unique thunk uses, except those holding a slot still in quarantine: released,
		/// such a page would be the next slab page taken (its slots handed out as fresh ones at once), and a call
		/// through a dangling pointer to a unique thunk destroyed just now would run a new one.
		void release_unused_slab_pages() noexcept
		{
			for (region* r = regions_.front(); r != nullptr; r = r->next)
				for (std::uint64_t slab = r->slab; slab != 0; slab &= slab - 1)
				{
					const auto index = static_cast<std::size_t>(std::countr_zero(slab));
					if (r->live_slots[index] == 0 && !slots_.quarantines(r->page_at(index), r->page_size))
						release_slab_page(*r, index);
				}
		}

		/// Decommits a cached page that is not in the queue; if the OS refuses, it stays cached (writable traps are
		/// safe) and compact() tries again.
		os::result decommit_cached(region& r, std::size_t index) noexcept
		{
			auto status = r.kind->decommit(r.page_at(index), r.page_size);
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
			// A refused seal switches the heap for good: note it before the region that recorded it goes.
			if (r.execution_refused.load(std::memory_order_relaxed))
				runtime_refused_ = true;
			auto status = r.kind->unreserve(r);
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
		slot_queue slots_;
		fresh_slots fresh_;
		near_code_placement<encoder, Os> placement_;
		std::size_t live_pages_ = 0;
		std::size_t cached_pages_ = 0;
		std::size_t live_slots_ = 0;
#if defined(MEMBER_THUNK_NO_RUNTIME_CODE)
		bool runtime_refused_ = true;
#else
		bool runtime_refused_ = false;
#endif
	};
} // namespace member_thunk::detail
