// member_thunk: the regions a heap owns, as an intrusive doubly-linked list.
//
// Invariants (checked by first_violation()): the list is well linked (r.next->prev == r, head.prev == null) and has
// exactly size() elements. The list owns its regions: they enter as std::unique_ptr and leave as one.
#pragma once

#include "config.hpp"
#include "region.hpp"

#include <cstddef>
#include <memory>

namespace member_thunk::detail
{
	class region_list
	{
	public:
		region_list() = default;
		region_list(const region_list&) = delete;
		region_list& operator=(const region_list&) = delete;
		region_list(region_list&&) = delete;
		region_list& operator=(region_list&&) = delete;

		/// Deletes the regions still listed (their reservations are the owner's business).
		~region_list()
		{
			while (head_ != nullptr)
				static_cast<void>(take(*head_));
		}

		[[nodiscard]] region* front() const noexcept { return head_; }
		[[nodiscard]] std::size_t size() const noexcept { return size_; }

		region& push_front(std::unique_ptr<region> owned) noexcept
		{
			region& r = *owned.release(); // owned by the list from now on; take() gives it back
			r.prev = nullptr;
			r.next = head_;
			if (head_ != nullptr)
				head_->prev = &r;
			head_ = &r;
			++size_;
			return r;
		}

		/// Unlinks `r` and hands it back to the caller.
		[[nodiscard]] std::unique_ptr<region> take(region& r) noexcept
		{
			if (r.prev != nullptr)
				r.prev->next = r.next;
			else
				head_ = r.next;
			if (r.next != nullptr)
				r.next->prev = r.prev;
			r.prev = r.next = nullptr;
			--size_;
			return std::unique_ptr<region>(&r);
		}

		/// Most recently used first: the next allocation finds a free page at once.
		void move_to_front(region& r) noexcept
		{
			if (&r != head_)
				push_front(take(r));
		}

		[[nodiscard]] invariant_violation first_violation() const noexcept
		{
			std::size_t count = 0;
			const region* prev = nullptr;
			for (const region* r = head_; r != nullptr; prev = r, r = r->next)
			{
				MEMBER_THUNK_CLAUSE(++count <= size_);
				MEMBER_THUNK_CLAUSE(r->prev == prev);
			}
			MEMBER_THUNK_CLAUSE(count == size_);
			return {};
		}

	private:
		region* head_ = nullptr;
		std::size_t size_ = 0;
	};
} // namespace member_thunk::detail
