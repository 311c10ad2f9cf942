// member_thunk: how the pages of a region hold thunks, where their memory comes from, and the protection steps of
// their life: commit, fill with traps, seal, revoke, decommit, give back. A region records its kind as a pointer to a
// table of static functions, so that a page handle seals and revokes its page without its heap (which may be another
// thread's, or the orphanage by then) and without knowing the OS back end's type.
//
// Kinds:
//   run-time code     a page is machine code written read-write by the native encoder, sealed read-execute
//                     (this file);
//   prebuilt stubs    a page is data slots {bound, target} for stubs mapped or copied read-execute once, sealed
//                     read-only (prebuilt_regions.hpp), in reservations of their own or in the image pool.
#pragma once

#include "arch/encoder.hpp"
#include "config.hpp"
#include "os/result.hpp"

#include <cstddef>
#include <span>

namespace member_thunk::detail
{
	struct region;

	/// What sealing a page did. `sealed`: the page ended in its sealed state (its thunks may be called). On failure,
	/// `failure` is the OS call that failed and `doing` what the library was doing; the page was put back to its
	/// writable state if the OS allowed it (then `sealed` is false).
	struct [[nodiscard]] seal_outcome
	{
		bool sealed = false;
		os::result failure = os::result::success();
		const char* doing = nullptr;

		[[nodiscard]] bool ok() const noexcept { return failure.ok(); }
	};

	/// The steps of one kind of region, as static functions (one table per kind and OS back end).
	struct region_kind
	{
		/// Thunks are prebuilt stubs with data slots (true), or machine code written into the page (false).
		bool prebuilt;
		/// Bytes per slot: the place of one thunk's code (run-time code) or data (prebuilt) in a page.
		std::size_t slot_size;
		/// Slots are grouped in chunks whose first header_slots slots hold no thunk (prebuilt stubs: the code the
		/// chunk's stubs share). Run-time code: chunks of one slot, no header.
		std::size_t chunk_slots;
		std::size_t header_slots;
		/// Gives a decommitted page memory, read-write.
		os::result (*commit)(std::byte* page, std::size_t page_size) noexcept;
		/// Takes a free page's memory back; it becomes inaccessible.
		os::result (*decommit)(std::byte* page, std::size_t page_size) noexcept;
		/// Gives the whole region back (its reservation, or its share of the image pool).
		os::result (*unreserve)(const region& r) noexcept;
		/// Fills a writable page of `r` with traps, so that nothing in it can run.
		void (*fill_traps)(const region& r, std::byte* page) noexcept;
		/// Makes a page's first `thunks` slots callable and nothing else in it writable.
		seal_outcome (*seal)(region& r, std::byte* page, std::size_t thunks) noexcept;
		/// Revokes a page whose first `sealed_thunks` slots were registered as call targets: nothing in it is callable
		/// afterwards. Returns whether the page is still committed (writable, trap-filled) or was decommitted
		/// instead; if neither could be done, ends the process.
		bool (*revoke)(const region& r, std::byte* page, std::size_t sealed_thunks) noexcept;

		/// How many thunks a page of `page_size` bytes holds.
		[[nodiscard]] constexpr std::size_t usable_slots(std::size_t page_size) const noexcept
		{
			return page_size / slot_size / chunk_slots * (chunk_slots - header_slots);
		}

		/// The index of the slot that holds the `position`-th thunk of a page (skipping the chunk headers).
		[[nodiscard]] constexpr std::size_t slot_of(std::size_t position) const noexcept
		{
			const std::size_t per_chunk = chunk_slots - header_slots;
			return position / per_chunk * chunk_slots + header_slots + position % per_chunk;
		}

		/// Whether the slot at `index` may hold a thunk (it is not a chunk header).
		[[nodiscard]] constexpr bool is_thunk_slot(std::size_t index) const noexcept
		{
			return index % chunk_slots >= header_slots;
		}
	};
} // namespace member_thunk::detail
