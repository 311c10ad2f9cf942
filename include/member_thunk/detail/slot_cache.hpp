// member_thunk: a thread's cache of free unique-thunk slots, in front of the thread-safe default heap
// (MEMBER_THUNK_THREAD_SAFE_HEAP), so that making and destroying unique thunks takes the heap's lock once per `batch`
// operations instead of at each: the work scales with the threads instead of queueing on one lock.
//
// A cache holds two first-in first-out lists of slots (linked through the slots themselves, slot_queue.hpp):
//   ready        slots taken from the heap by `batch`, never used since (or out of the heap's own quarantine);
//   quarantined  slots of unique thunks this thread destroyed; one is handed out again only when more than
//                MEMBER_THUNK_UNIQUE_QUARANTINE are queued behind it, and the oldest `batch` go back to the heap once
//                more than quarantine + batch are queued.
// Every slot a cache holds counts as alive in the heap's core, so no page of it is given back meanwhile; the heap
// subtracts what the caches hold (each cache publishes its size) to report the unique thunks really alive. When its
// thread ends, a cache gives everything back (os::per_thread).
#pragma once

#include "config.hpp"
#include "slot_queue.hpp"

#include <atomic>
#include <cstddef>

namespace member_thunk::detail
{
	template<class Heap>
	class thread_slot_cache
	{
	public:
		static constexpr std::size_t quarantine = MEMBER_THUNK_UNIQUE_QUARANTINE;
		static constexpr std::size_t batch = 32;

		thread_slot_cache() noexcept = default;
		thread_slot_cache(const thread_slot_cache&) = delete;
		thread_slot_cache& operator=(const thread_slot_cache&) = delete;
		thread_slot_cache(thread_slot_cache&&) = delete;
		thread_slot_cache& operator=(thread_slot_cache&&) = delete;

		/// The thread ends: every slot goes back to the heap, and the cache leaves the heap's list.
		~thread_slot_cache()
		{
			if (heap_ != nullptr)
				heap_->retire_cache(*this);
		}

		/// A free slot, holding the trap. Throws like the heap's allocation when it must refill.
		[[nodiscard]] std::byte* take(Heap& heap)
		{
			std::byte* slot = nullptr;
			if (quarantined_.ready())
				slot = quarantined_.pop();
			else
			{
				if (ready_.size() == 0)
				{
					if (heap_ == nullptr)
					{
						heap.adopt_cache(*this);
						heap_ = &heap;
					}
					heap.refill_cache(ready_, batch);
				}
				slot = ready_.pop();
			}
			publish();
			return slot;
		}

		/// Takes back the emptied slot of a destroyed unique thunk.
		void give(Heap& heap, std::byte* slot) noexcept
		{
			// Joins the heap's list first, even on a thread that never made a unique thunk: a cache the heap does not
			// list would neither be subtracted from the statistics nor give its slots back when its thread ends.
			if (heap_ == nullptr)
			{
				heap.adopt_cache(*this);
				heap_ = &heap;
			}
			quarantined_.push(slot);
			if (quarantined_.size() > quarantine + batch)
				heap.drain_cache(quarantined_, batch);
			publish();
		}

		/// Gives every slot it holds back to the heap (compact() on this thread), quarantined ones at the back of the
		/// heap's own quarantine queue.
		void flush() noexcept
		{
			if (heap_ == nullptr)
				return;
			heap_->drain_cache(ready_, ready_.size());
			heap_->drain_cache(quarantined_, quarantined_.size());
			publish();
		}

		/// Slots held, as last published by the owning thread (read by the heap under its lock for statistics).
		[[nodiscard]] std::size_t held() const noexcept { return held_.load(std::memory_order_relaxed); }

		slot_queue& ready_slots() noexcept { return ready_; }
		slot_queue& quarantined_slots() noexcept { return quarantined_; }

		// The heap's intrusive list of caches, guarded by its lock.
		thread_slot_cache* prev = nullptr;
		thread_slot_cache* next = nullptr;

	private:
		// One writer (the owning thread): a plain store, no read-modify-write on the fast path.
		void publish() noexcept { held_.store(ready_.size() + quarantined_.size(), std::memory_order_relaxed); }

		slot_queue ready_;
		slot_queue quarantined_;
		std::atomic<std::size_t> held_{0};
		Heap* heap_ = nullptr;
	};
} // namespace member_thunk::detail
