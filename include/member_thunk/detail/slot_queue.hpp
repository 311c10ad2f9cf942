// member_thunk: the free slots of a heap's slab of unique thunks. A slab page is a page of prebuilt stubs that the heap
// keeps writable and hands out one data slot at a time: first the slots never used (fresh_slots), then the slots freed
// since, first in, first out (slot_queue).
//
// Quarantine: a freed slot is handed out again only once more than MEMBER_THUNK_UNIQUE_QUARANTINE other free slots
// are queued behind it, so a dangling pointer to a destroyed unique thunk keeps trapping for that long. The queue is
// linked through the slots themselves: a free slot is {next free slot, trap}, and its stub traps whatever the first
// word holds.
#pragma once

#include "arch/stub_tables.hpp"
#include "config.hpp"
#include "prebuilt_regions.hpp"
#include "region.hpp"

#include <cstddef>
#include <cstdint>

namespace member_thunk::detail
{
	struct slot_location;

	/// The region of a slot of prebuilt stubs, from the header of its chunk (stamped, encoded, when the page was
	/// filled). Ends the process if the header does not decode to a region of prebuilt stubs holding the slot.
	[[nodiscard]] inline region& region_of_slot(const std::byte* slot) noexcept
	{
		if (slot == nullptr)
			fail_fast("a null slot of prebuilt thunks: the slab's free list is corrupted");
		const auto address = reinterpret_cast<std::uintptr_t>(slot);
		const std::byte* const chunk = slot - address % stubs::chunk_size;
		const auto stored = reinterpret_cast<const stub_slot*>(chunk)->bound;
		// The chunk's first word, written by prebuilt_pages::fill_traps; it decodes to a pointer by construction.
		auto* const r = reinterpret_cast<region*>(decode_metadata(stored, chunk)); // NOLINT(performance-no-int-to-ptr)
		// Regions of prebuilt stubs start on a chunk boundary, so a slot is a stub (not a chunk header) by its offset
		// in its chunk: constants only, no division by a run-time value on this path, which every unique thunk takes.
		const std::size_t in_chunk = address % stubs::chunk_size;
		if (r == nullptr || !r->contains(slot) || r->kind == nullptr || !r->kind->prebuilt ||
		    in_chunk % stubs::slot_size != 0 || in_chunk < stubs::header_slots * stubs::slot_size)
			fail_fast("the metadata of a page of prebuilt thunks is corrupted (a chunk's region does not hold the "
			          "slot): something wrote into memory it does not own");
		return *r;
	}

	class slot_queue
	{
	public:
		static constexpr std::size_t quarantine = MEMBER_THUNK_UNIQUE_QUARANTINE;

		/// Whether the oldest free slot may be handed out: more than `quarantine` slots are queued.
		[[nodiscard]] bool ready() const noexcept { return count_ > quarantine; }
		[[nodiscard]] std::size_t size() const noexcept { return count_; }

		/// Takes the oldest free slot (ready() must be true).
		[[nodiscard]] std::byte* pop() noexcept
		{
			std::byte* const slot = head_;
			head_ = next_of(slot);
			if (head_ == nullptr)
				tail_ = nullptr;
			--count_;
			empty_slot(slot);
			return slot;
		}

		/// Queues an emptied slot at the back.
		void push(std::byte* slot) noexcept
		{
			if (slot == nullptr)
				fail_fast("a null slot of prebuilt thunks was queued");
			write_slot(slot, 0, stubs::trap_target());
			if (tail_ != nullptr)
				write_slot(tail_, encode_metadata(reinterpret_cast<std::uintptr_t>(slot), tail_), stubs::trap_target());
			else
				head_ = slot;
			tail_ = slot;
			++count_;
		}

		/// Forgets the slots of the page [page, page + size), keeping the others in order.
		void remove_page(const std::byte* page, std::size_t size) noexcept
		{
			std::byte* slot = head_;
			const std::byte* const last = tail_;
			head_ = tail_ = nullptr;
			count_ = 0;
			while (slot != nullptr)
			{
				std::byte* const next = slot == last ? nullptr : link_of(slot);
				if (slot < page || slot >= page + size)
					push(slot);
				slot = next;
			}
		}

		/// Whether a slot of the page [page, page + size) is among the newest `quarantine` queued, which may not be
		/// handed out yet: such a page must stay in the slab, or its slots could come back as fresh ones at once.
		[[nodiscard]] bool quarantines(const std::byte* page, std::size_t size) const noexcept
		{
			std::size_t position = 0; // from the oldest; the newest `quarantine` are at count_ - quarantine and on
			for (const std::byte* slot = head_; slot != nullptr; slot = next_of(slot), ++position)
				if (position + quarantine >= count_ && slot >= page && slot < page + size)
					return true;
			return false;
		}

		void clear() noexcept
		{
			head_ = tail_ = nullptr;
			count_ = 0;
		}

		/// The queue is well formed: count_ slots from head_ to tail_, each a stub slot of a slab page.
		[[nodiscard]] invariant_violation first_violation() const noexcept
		{
			std::size_t n = 0;
			const std::byte* last = nullptr;
			for (const std::byte* slot = head_; slot != nullptr; slot = next_of(slot))
			{
				MEMBER_THUNK_CLAUSE(++n <= count_);
				const region& r = region_of_slot(slot);
				MEMBER_THUNK_CLAUSE(r.contains(slot) && (r.slab & region::bit(r.index_of(slot))) != 0);
				MEMBER_THUNK_CLAUSE(reinterpret_cast<const stub_slot*>(slot)->target == stubs::trap_target());
				last = slot;
			}
			MEMBER_THUNK_CLAUSE(n == count_);
			MEMBER_THUNK_CLAUSE(last == tail_);
			return {};
		}

	private:
		/// The next free slot after `slot`; null after the last.
		[[nodiscard]] std::byte* next_of(const std::byte* slot) const noexcept
		{
			return slot == tail_ ? nullptr : link_of(slot);
		}

		/// The slot a free slot's link points to (the first word of a free slot is the encoded address of the next
		/// one, written by push()), checked to be a slot of a region of prebuilt stubs: region_of_slot ends the
		/// process otherwise.
		[[nodiscard]] static std::byte* link_of(const std::byte* slot) noexcept
		{
			auto* const next = reinterpret_cast<std::byte*>( // NOLINT(performance-no-int-to-ptr)
			    decode_metadata(reinterpret_cast<const stub_slot*>(slot)->bound, slot));
			static_cast<void>(region_of_slot(next));
			return next;
		}

		std::byte* head_ = nullptr;
		std::byte* tail_ = nullptr;
		std::size_t count_ = 0;
	};

	/// The slots of the newest slab page that were never handed out, in order.
	class fresh_slots
	{
	public:
		[[nodiscard]] bool exhausted() const noexcept { return owner_ == nullptr || next_ == end_; }
		[[nodiscard]] bool is_on(const std::byte* page) const noexcept { return owner_ != nullptr && page_ == page; }

		void start(region& r, std::size_t index) noexcept
		{
			owner_ = &r;
			page_ = r.page_at(index);
			next_ = 0;
			end_ = r.kind->usable_slots(r.page_size);
		}

		/// The next never-used slot (exhausted() must be false).
		[[nodiscard]] std::byte* take() noexcept
		{
			return page_ + owner_->kind->slot_of(next_++) * owner_->kind->slot_size;
		}

	private:
		region* owner_ = nullptr;
		std::byte* page_ = nullptr;
		std::size_t next_ = 0;
		std::size_t end_ = 0;
	};
} // namespace member_thunk::detail
