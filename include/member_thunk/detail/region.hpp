// member_thunk: a region, one reservation of address space cut into pages.
//
// Glossary
//   heap    owns regions and hands out pages; one lock (or none) guards it.
//   region  page_count pages of page_size bytes from one reservation (or from the image pool), of one kind
//           (region_kind.hpp): run-time code, or the data pages of prebuilt stubs.
//   page    one OS page of a region, handed out to one `page` handle, which writes thunks into it and then seals it,
//           or kept by the heap as a slab from which unique thunks take one slot each.
//   slot    the fixed-size place of one thunk (or of its data) in a page.
//   thunk   code that puts a bound pointer in the callback's first argument and jumps to the target: written into a
//           slot (run-time code), or a prebuilt stub whose data slot holds the pointer and the target.
//
// Invariants of a region r (checked by first_violation()):
//   r.base != nullptr, aligned to the page size;  1 <= r.page_count <= 64;  r.kind != nullptr
//   r.used      ⊆ {0 .. page_count-1}   pages held by a live page handle or by the heap's slab of unique thunks
//   r.slab      ⊆ r.used                 pages of the slab (prebuilt regions only)
//   r.live_slots[i] == 0 unless i ∈ r.slab   unique thunks alive on each page
//   r.committed ⊆ {0 .. page_count-1}   pages with memory (read-write or sealed)
//   r.used ⊆ r.committed                 a free but committed page (a cached page) is writable, trap-filled, never
//                                        executable
//   r.queued ⊆ r.committed \ r.used      the cached pages in the heap's first-in first-out queue (page_cache.hpp); a
//                                        cached page outside it is one the OS refused to decommit
//   r.unusable ⇒ r.used = r.committed = ∅  a reservation kept only to be given back holds no page
#pragma once

#include "config.hpp"
#include "region_kind.hpp"

#include <array>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <span>

namespace member_thunk::detail
{
	struct region;

	/// What a page handle needs from whoever owns its region (a heap, a thread's heap, or the orphanage that adopts
	/// pages outliving their thread): taking the page back. Type-erased so that `page` does not depend on the heap's
	/// lock or OS. Sealing needs no owner: it is a static step of the region's kind.
	class page_owner
	{
	public:
		virtual ~page_owner() = default;

		/// Revokes the page (its thunks stop being callable at once) and takes it back into its region.
		/// `sealed_entries`: the entries registered as call targets when it was sealed (an entry_mask's words; empty
		/// if it was never sealed), which revoking withdraws.
		virtual void free_page(region& r, std::byte* page, std::span<const std::uint64_t> sealed_entries) noexcept = 0;

		/// Empties a unique thunk's data slot (a call through it traps from now on) and takes the slot back.
		virtual void free_slot(region& r, std::byte* slot) noexcept = 0;

	protected:
		page_owner() = default;
		page_owner(const page_owner&) = default;
		page_owner& operator=(const page_owner&) = default;
		page_owner(page_owner&&) = default;
		page_owner& operator=(page_owner&&) = default;
	};

	struct region
	{
		static constexpr std::size_t max_pages = 64;

		std::byte* base = nullptr; ///< the first page (for prebuilt stubs: the first data page)
		std::size_t page_size = 0;
		std::size_t page_count = 0;
		std::uint64_t used = 0;
		std::uint64_t committed = 0;
		std::uint64_t queued = 0;
		std::uint64_t slab = 0;
		const region_kind* kind = nullptr;
		/// What unreserve gives back: the reservation (which may start before `base`), or the pool's share.
		std::byte* reservation = nullptr;
		std::size_t reservation_size = 0;
		/// Prebuilt stubs: added to a data slot's address, the address of its thunk stub and of its closure stub.
		std::ptrdiff_t thunk_stubs = 0;
		std::ptrdiff_t closure_stubs = 0;
		/// Set when the OS refused to make one of the region's pages executable: a W^X policy came into force after
		/// the heap probed for one. The heap then stops making run-time code.
		std::atomic<bool> execution_refused{false};
		/// Set on a reservation listed only to be given back: a way of mapping prebuilt stubs failed in it and the
		/// OS refused to release it (prebuilt_regions.hpp). It never holds a page; compact() gives it back.
		bool unusable = false;
		std::atomic<page_owner*> owner{nullptr};
		region* prev = nullptr;
		region* next = nullptr;
		/// Unique thunks alive on each slab page.
		std::array<std::uint16_t, max_pages> live_slots{};

		[[nodiscard]] std::uint64_t all_pages() const noexcept
		{
			return page_count >= 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << page_count) - 1;
		}

		[[nodiscard]] bool has_free_page() const noexcept { return (used & all_pages()) != all_pages(); }
		[[nodiscard]] bool empty() const noexcept { return used == 0; }
		[[nodiscard]] std::size_t live_pages() const noexcept { return static_cast<std::size_t>(std::popcount(used)); }
		/// Pages held by page handles (not the slab).
		[[nodiscard]] std::size_t handle_pages() const noexcept
		{
			return static_cast<std::size_t>(std::popcount(used & ~slab));
		}
		/// Free pages kept committed (read-write, trap-filled) for reuse.
		[[nodiscard]] std::uint64_t cached() const noexcept { return committed & ~used; }
		[[nodiscard]] std::size_t cached_pages() const noexcept
		{
			return static_cast<std::size_t>(std::popcount(cached()));
		}
		[[nodiscard]] std::size_t size_bytes() const noexcept { return page_size * page_count; }

		/// The lowest page that is neither used nor committed (one must exist).
		[[nodiscard]] std::size_t first_decommitted_page() const noexcept
		{
			return static_cast<std::size_t>(std::countr_zero(~(used | committed)));
		}
		[[nodiscard]] bool has_decommitted_page() const noexcept
		{
			return ((used | committed) & all_pages()) != all_pages();
		}

		[[nodiscard]] std::byte* page_at(std::size_t index) const noexcept { return base + index * page_size; }

		[[nodiscard]] bool contains(const std::byte* page) const noexcept
		{
			return page >= base && page < base + size_bytes();
		}

		[[nodiscard]] std::size_t index_of(const std::byte* page) const noexcept
		{
			return static_cast<std::size_t>(page - base) / page_size;
		}

		[[nodiscard]] static constexpr std::uint64_t bit(std::size_t index) noexcept
		{
			return std::uint64_t{1} << index;
		}

		/// The first clause of the region's invariants that does not hold, if any.
		[[nodiscard]] invariant_violation first_violation() const noexcept
		{
			MEMBER_THUNK_CLAUSE(base != nullptr && page_size != 0);
			MEMBER_THUNK_CLAUSE(reinterpret_cast<std::uintptr_t>(base) % page_size == 0);
			MEMBER_THUNK_CLAUSE(page_count >= 1 && page_count <= max_pages);
			MEMBER_THUNK_CLAUSE(kind != nullptr);
			MEMBER_THUNK_CLAUSE((used & ~all_pages()) == 0);
			MEMBER_THUNK_CLAUSE((committed & ~all_pages()) == 0);
			MEMBER_THUNK_CLAUSE((used & ~committed) == 0);
			MEMBER_THUNK_CLAUSE((queued & ~cached()) == 0);
			MEMBER_THUNK_CLAUSE((slab & ~used) == 0);
			MEMBER_THUNK_CLAUSE(slab == 0 || kind->prebuilt);
			MEMBER_THUNK_CLAUSE(!unusable || (used == 0 && committed == 0));
			for (std::size_t i = 0; i < page_count; ++i)
				MEMBER_THUNK_CLAUSE(live_slots[i] == 0 || (slab & bit(i)) != 0);
			return {};
		}

		[[nodiscard]] bool is_valid() const noexcept { return !first_violation(); }
	};
} // namespace member_thunk::detail
