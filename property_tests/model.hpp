// Property tests: the model of one page of thunks and closures (where each one goes, how many fit, what make_thunk and
// make_closure must do) for both kinds of page a heap hands out.
//
// The model states the layout from the documented geometry instead of asking the library:
//   run-time code   slots of the encoder's size (32 bytes), code from the start of the page: one slot per thunk, one or
//                   two per closure; a run-time member's {object, member pointer} block in whole slots taken from the
//                   end of the page;
//   prebuilt stubs  16-byte data slots in 4 KiB chunks whose first 4 slots are a header that holds no thunk (252
//                   thunks per chunk), one per thunk or closure; a run-time member's block one pointer-sized word per
//                   slot, in slots that are consecutive in memory, taken from the end: a run that would cross a chunk
//                   header moves below the header, and the positions it skipped are lost.
// Either way a thunk or closure takes the next positions from the start, and make_thunk / make_closure throw
// page_executable on a sealed page, page_full when it (its code and its block) does not fit. One thing only the
// library knows: whether a closure's run-time code takes one slot or two (that depends on how many argument registers
// it moves and on whether its jump reaches the target directly from where it lies). The model allows either, learns
// which from the page (free_slots() before and after: make_on_page in checks.hpp), and allows page_full where only the
// one-slot form would fit.
#pragma once

#include "family.hpp"

#include <member_thunk/detail/arch/encoder.hpp>
#include <member_thunk/detail/os/native.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

namespace prop
{
	enum class page_kind : std::uint8_t
	{
		runtime_code, // machine code written into the page, sealed read-execute
		prebuilt      // data slots of prebuilt stubs, sealed read-only
	};

	[[nodiscard]] inline const char* name(page_kind k) noexcept
	{
		return k == page_kind::prebuilt ? "prebuilt stubs" : "run-time code";
	}

	/// The kind of page this build's heaps hand out while the OS allows run-time code.
#if defined(MEMBER_THUNK_NO_RUNTIME_CODE)
	inline constexpr page_kind build_kind = page_kind::prebuilt;
#else
	inline constexpr page_kind build_kind = page_kind::runtime_code;
#endif

	/// The page size of the heaps under test: the system's, or PROPERTY_PAGE_SIZE for a heap whose OS back end
	/// reports larger pages made of the system's (so that pages of several 4 KiB chunks of prebuilt stubs, as on
	/// AArch64 with 16 KiB pages, are tested on any machine).
	[[nodiscard]] inline std::size_t page_size()
	{
#if defined(PROPERTY_PAGE_SIZE)
		return PROPERTY_PAGE_SIZE;
#else
		return member_thunk::detail::os::native::page_size();
#endif
	}

	/// A run-time member thunk's block: the object pointer and the member pointer (the same size for every member
	/// pointer of the family), as the thunk keeps them.
	struct member_block
	{
		target<long, long>* object;
		long (target<long, long>::*member)(long);
	};

	/// The geometry of a page of one kind.
	struct page_layout
	{
		std::size_t slot_size = 0;    // bytes per slot
		std::size_t chunk_slots = 1;  // slots per chunk
		std::size_t header_slots = 0; // slots at the start of each chunk that hold no thunk
		std::size_t capacity = 0;     // positions of a page: the most thunks it holds
		std::size_t block_slots = 0;  // the slots of a run-time member's block

		[[nodiscard]] std::size_t per_chunk() const noexcept { return chunk_slots - header_slots; }

		/// The index, from the page's start, of the slot at `position` (positions skip the chunk headers).
		[[nodiscard]] std::size_t slot_of(std::size_t position) const noexcept
		{
			return position / per_chunk() * chunk_slots + header_slots + position % per_chunk();
		}
	};

	[[nodiscard]] inline page_layout layout_of(page_kind kind)
	{
		if (kind == page_kind::runtime_code)
		{
			constexpr std::size_t slot = member_thunk::detail::arch::native_encoder::slot_size;
			return {slot, 1, 0, page_size() / slot, (sizeof(member_block) + slot - 1) / slot};
		}
		constexpr std::size_t slot = 16;
		constexpr std::size_t chunk = 4096 / slot;
		constexpr std::size_t header = 4;
		constexpr std::size_t word = sizeof(std::uintptr_t);
		return {slot, chunk, header, page_size() / (chunk * slot) * (chunk - header),
		        (sizeof(member_block) + word - 1) / word};
	}

	// ---- Model of one page ---------------------------------------------------------------------------------------

	struct page_model
	{
		page_kind kind = build_kind;
		std::vector<thunk_model> thunks; // in the order they were made, each with its first position
		std::size_t front = 0;           // positions taken from the start: the thunks' and closures' code
		std::size_t back = 0;            // positions taken from the end: blocks, and what was skipped for them
		bool executable = false;

		/// Positions in use (free_slots() is the capacity minus this).
		[[nodiscard]] std::size_t used() const noexcept { return front + back; }

		bool operator==(const page_model&) const = default;
	};

	/// What make_thunk or make_closure must do.
	enum class outcome
	{
		made,
		page_full,
		page_executable,
		made_or_page_full // a closure of run-time code that fits only if its code takes one slot: the library decides
	};

	[[nodiscard]] inline const char* name(outcome o) noexcept
	{
		switch (o)
		{
		case outcome::made:
			return "made";
		case outcome::page_full:
			return "page_full";
		case outcome::page_executable:
			return "page_executable";
		case outcome::made_or_page_full:
			return "made (in one slot) or page_full";
		}
		return "?";
	}

	/// How many positions from the start the code of a thunk or closure of `signature` may take on a page of `kind`:
	/// one, except a closure of run-time code, one or two.
	struct code_positions
	{
		std::size_t least = 1;
		std::size_t most = 1;
	};

	[[nodiscard]] inline code_positions code_of(page_kind kind, std::size_t signature) noexcept
	{
		if (kind == page_kind::runtime_code && is_closure(signature))
			return {1, 2};
		return {1, 1};
	}

	/// `back` after a thunk or closure of form `how` whose code takes `code` positions is made on `p`; nullopt if it
	/// does not fit.
	[[nodiscard]] inline std::optional<std::size_t> back_after(const page_model& p, form how, std::size_t code)
	{
		const page_layout layout = layout_of(p.kind);
		const std::size_t block = is_run_time(how) ? layout.block_slots : 0;
		if (layout.capacity - p.used() < code + block)
			return std::nullopt;
		if (block == 0 || p.kind == page_kind::runtime_code)
			return p.back + block;
		// The block's run [end - block, end) must lie in one chunk, and leave room for the code before it.
		std::size_t end = layout.capacity - p.back;
		while ((end - block) / layout.per_chunk() != (end - 1) / layout.per_chunk())
		{
			end = (end - 1) / layout.per_chunk() * layout.per_chunk();
			if (end < p.front + code + block)
				return std::nullopt;
		}
		return layout.capacity - (end - block);
	}

	[[nodiscard]] inline outcome predict(const page_model& p, std::size_t signature, form how)
	{
		if (p.executable)
			return outcome::page_executable;
		const code_positions code = code_of(p.kind, signature);
		if (!back_after(p, how, code.least))
			return outcome::page_full;
		return back_after(p, how, code.most) ? outcome::made : outcome::made_or_page_full;
	}

	/// Records a thunk or closure made on `p` whose code took `code` positions (it must fit).
	inline void add_thunk(page_model& p, std::size_t signature, form how, long object, std::size_t code)
	{
		p.back = back_after(p, how, code).value();
		p.thunks.push_back({signature, how, object, p.front});
		p.front += code;
	}
} // namespace prop
