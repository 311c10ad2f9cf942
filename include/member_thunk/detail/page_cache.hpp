// member_thunk: the queue of freed pages a heap keeps committed for reuse, first in, first out.
//
// A freed page is revoked (writable, trap-filled, never executable) and queued at the back; allocation takes the page
// at the front, and only when the queue is full: so a page is handed out again only after `Capacity` other pages were
// freed after it, which keeps a dangling thunk pointer faulting for that long. A page whose turn comes while the
// queue overflows is decommitted instead.
//
// Invariants (checked by the heap): the entries are distinct cached pages of the heap's regions, and a region's
// `queued` mask has exactly the bits of its entries.
#pragma once

#include "region.hpp"

#include <array>
#include <cstddef>
#include <cstdint>

namespace member_thunk::detail
{
	template<std::size_t Capacity>
	class page_cache
	{
	public:
		struct entry
		{
			region* owner = nullptr;
			std::size_t index = 0;
		};

		static constexpr std::size_t capacity = Capacity;

		[[nodiscard]] std::size_t size() const noexcept { return size_; }
		[[nodiscard]] bool full() const noexcept { return size_ == Capacity; }

		/// Queues a cached page; the queue must not be full.
		void push_back(region& r, std::size_t index) noexcept
		{
			entries_[(front_ + size_) % Capacity] = {&r, index};
			++size_;
			r.queued |= region::bit(index);
		}

		/// Takes the page at the front; the queue must not be empty.
		[[nodiscard]] entry pop_front() noexcept
		{
			const entry e = entries_[front_];
			front_ = (front_ + 1) % Capacity;
			--size_;
			e.owner->queued &= ~region::bit(e.index);
			return e;
		}

		/// Removes every entry of `r` (the heap is about to hand `r` over or release it), keeping the others in order.
		void remove(const region& r) noexcept
		{
			std::size_t kept = 0;
			for (std::size_t i = 0; i < size_; ++i)
			{
				const entry e = entries_[(front_ + i) % Capacity];
				if (e.owner != &r)
					entries_[(front_ + kept++) % Capacity] = e;
				else
					e.owner->queued &= ~region::bit(e.index);
			}
			size_ = kept;
		}

		template<class F>
		void for_each(F f) const
		{
			for (std::size_t i = 0; i < size_; ++i)
				f(entries_[(front_ + i) % Capacity]);
		}

	private:
		std::array<entry, Capacity> entries_{};
		std::size_t front_ = 0;
		std::size_t size_ = 0;
	};

	/// No cache at all (MEMBER_THUNK_PAGE_CACHE 0): every freed page is decommitted.
	template<>
	class page_cache<0>
	{
	public:
		struct entry
		{
			region* owner = nullptr;
			std::size_t index = 0;
		};

		static constexpr std::size_t capacity = 0;

		[[nodiscard]] static std::size_t size() noexcept { return 0; }
		[[nodiscard]] static bool full() noexcept { return true; }
		static void push_back([[maybe_unused]] region& r, [[maybe_unused]] std::size_t index) noexcept {}
		[[nodiscard]] static entry pop_front() noexcept { return {}; }
		static void remove([[maybe_unused]] const region& r) noexcept {}
		template<class F>
		static void for_each([[maybe_unused]] F f)
		{
		}
	};
} // namespace member_thunk::detail
