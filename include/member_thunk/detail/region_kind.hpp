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

#include <array>
#include <cstddef>
#include <cstdint>
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

	/// The entries of a page of run-time code, in the form the OS back end registers them as call targets
	/// (os::backend, set_call_targets): bit i % 64 of word i / 64 is set when slot i starts a thunk or a closure. A
	/// closure of two slots sets only its first: its second slot is the middle of its code, never a call target.
	/// Only Windows keeps a list of call targets (CFG), and its pages are 4 KiB on every architecture: 128 slots, two
	/// words. The mask is kept on every OS, so that the same code runs and is tested everywhere; a page of more slots
	/// (AArch64 Linux with 16 or 64 KiB pages) leaves those past the 128th unrecorded, which only an OS with a list of
	/// call targets would see (a call there would be refused, never a wrong target accepted), and none has one.
	class entry_mask
	{
	public:
		static constexpr std::size_t capacity = 128;

		/// Records slot `slot` as an entry.
		void add(std::size_t slot) noexcept
		{
			if (slot < capacity)
				words_[slot / 64] |= std::uint64_t{1} << (slot % 64);
		}

		[[nodiscard]] std::span<const std::uint64_t> words() const noexcept { return words_; }

	private:
		std::array<std::uint64_t, capacity / 64> words_{};
	};
#if defined(MEMBER_THUNK_OS_WINDOWS)
	static_assert(4096 / arch::native_encoder::slot_size <= entry_mask::capacity,
	              "member_thunk: an entry_mask must hold every slot of a Windows page (4 KiB)");
#endif

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
		/// Makes a page callable and nothing in it writable. Run-time code: its `entries` (an entry_mask's words) are
		/// the only slots registered as call targets. Prebuilt stubs: unused (the stubs' code is registered once,
		/// when it is copied).
		seal_outcome (*seal)(region& r, std::byte* page, std::span<const std::uint64_t> entries) noexcept;
		/// Revokes a page whose `sealed_entries` were registered as call targets when it was sealed (empty if it was
		/// not): nothing in it is callable afterwards. Returns whether the page is still committed (writable,
		/// trap-filled) or was decommitted instead; if neither could be done, ends the process.
		bool (*revoke)(const region& r, std::byte* page, std::span<const std::uint64_t> sealed_entries) noexcept;

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
