// member_thunk: a single owning thunk, for the common case of one callback per object.
//
//   member_thunk::unique_thunk<WNDPROC> proc = member_thunk::make_unique_thunk<WNDPROC, &window::on_message>(this);
//   RegisterClassW(... proc.get() ...);    // callable at once: no page, no mark_executable()
//
// A unique thunk is a prebuilt stub and its 16-byte data slot, taken from a heap's slab (detail/heap_core.hpp): making
// one writes two words and makes no system call once the slab has room. Destroying it points the slot at a trap, so a
// call through a dangling copy of its address traps; the slot is reused only after MEMBER_THUNK_UNIQUE_QUARANTINE other
// unique thunks of the heap were destroyed. Unlike a sealed page, its data slot stays writable while it lives: a
// memory-safety bug elsewhere in the process could redirect it (SECURITY.md). Use a page when what a thunk calls must
// be immutable.
#pragma once

#include "detail/callback.hpp"
#include "detail/config.hpp"
#include "detail/prebuilt_regions.hpp"
#include "detail/region.hpp"
#include "detail/slot_queue.hpp"

#include <bit>
#include <cstddef>
#include <cstdint>
#include <new>
#include <utility>

namespace member_thunk
{
	namespace detail
	{
		struct unique_thunk_access;
	}

	/// Move-only owner of one thunk, made by make_unique_thunk (from the default heap or a heap<Lock>). Empty when
	/// default-constructed or moved from. Thread safety follows its heap's: the thunk may be called from any thread;
	/// with thread-local default heaps (MEMBER_THUNK_THREAD_LOCAL_HEAPS) destroy it on the thread that made it while
	/// that thread runs, as for pages.
	template<class Callback>
	class unique_thunk
	{
	public:
		unique_thunk() noexcept = default;
		unique_thunk(const unique_thunk&) = delete;
		unique_thunk& operator=(const unique_thunk&) = delete;

		unique_thunk(unique_thunk&& other) noexcept :
		    entry_(std::exchange(other.entry_, nullptr)), slot_(std::exchange(other.slot_, 0))
		{
		}

		unique_thunk& operator=(unique_thunk&& other) noexcept
		{
			if (this != &other)
			{
				reset();
				entry_ = std::exchange(other.entry_, nullptr);
				slot_ = std::exchange(other.slot_, 0);
			}
			return *this;
		}

		/// Revokes the thunk: a call through its address traps from now on. Never throws.
		~unique_thunk() { reset(); }

		/// The function pointer to give to the C API; null when empty.
		[[nodiscard]] Callback get() const noexcept { return entry_; }

		[[nodiscard]] explicit operator bool() const noexcept { return entry_ != nullptr; }

		/// Revokes the thunk now and leaves this empty.
		void reset() noexcept
		{
			if (entry_ == nullptr)
				return;
			entry_ = nullptr;
			auto* const slot = reinterpret_cast<std::byte*>(slot_ & ~owns_block); // NOLINT(performance-no-int-to-ptr)
			const bool owned = (slot_ & owns_block) != 0;
			slot_ = 0;
			// The bound pointer of a run-time member thunk is its own block, read before the slot is emptied.
			const std::uintptr_t bound = reinterpret_cast<const detail::stub_slot*>(slot)->bound;
			void* const block = owned ? reinterpret_cast<void*>(bound) : nullptr; // NOLINT(performance-no-int-to-ptr)
			detail::region& r = detail::region_of_slot(slot);
			r.owner.load(std::memory_order_acquire)->free_slot(r, slot);
			::operator delete(block);
		}

	private:
		friend struct detail::unique_thunk_access;

		/// Set in slot_ when the thunk owns the block its bound pointer points to (slots are 16-byte aligned).
		static constexpr std::uintptr_t owns_block = 1;

		unique_thunk(Callback entry, std::byte* slot, bool owned) noexcept :
		    entry_(entry), slot_(reinterpret_cast<std::uintptr_t>(slot) | (owned ? owns_block : 0))
		{
		}

		Callback entry_ = nullptr;
		std::uintptr_t slot_ = 0;
	};

	namespace detail
	{
		/// Lets the heaps create unique thunks; nobody else can.
		struct unique_thunk_access
		{
			template<class Callback>
			[[nodiscard]] static unique_thunk<Callback> make(Callback entry, std::byte* slot, bool owned) noexcept
			{
				return {entry, slot, owned};
			}

			/// The thunk's data slot (for tests).
			template<class Callback>
			[[nodiscard]] static std::byte* slot_of(const unique_thunk<Callback>& t) noexcept
			{
				return reinterpret_cast<std::byte*>(t.slot_ & ~unique_thunk<Callback>::owns_block);
			}
		};
	} // namespace detail
} // namespace member_thunk
