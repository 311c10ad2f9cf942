// member_thunk: the locks a heap can use.
//
// A heap's Lock is any default-constructible BasicLockable type (lock() and unlock()), for example std::mutex.
// member_thunk provides two: null_lock (no locking, for single-threaded heaps) and slim_lock (one word).
#pragma once

#include "detail/config.hpp"

#include <atomic>
#include <concepts>
#include <cstdint>

#if defined(MEMBER_THUNK_OS_WINDOWS)
#include "detail/os/windows_sdk.hpp"
#endif

namespace member_thunk
{
	/// What a heap needs of its lock: default-constructible and BasicLockable (lock() and unlock()).
	template<class L>
	concept heap_lock = std::default_initializable<L> && requires(L& lock)
	{
		lock.lock();
		lock.unlock();
	};

	/// A lock that does nothing: for heaps used by one thread at a time.
	class null_lock
	{
	public:
		// Members, not static functions: they implement the Lockable interface.
		constexpr void lock() noexcept {}
		constexpr bool try_lock() noexcept { return true; } // NOLINT(readability-convert-member-functions-to-static)
		constexpr void unlock() noexcept {}
	};

	/// A small exclusive lock of one machine word: an SRWLOCK on Windows; elsewhere a futex-style word driven by
	/// C++20 atomic wait/notify (0 free, 1 held, 2 held with waiters). Not recursive, not copyable.
	class slim_lock
	{
	public:
		slim_lock() noexcept = default;
		slim_lock(const slim_lock&) = delete;
		slim_lock& operator=(const slim_lock&) = delete;
		slim_lock(slim_lock&&) = delete;
		slim_lock& operator=(slim_lock&&) = delete;
		~slim_lock() = default;

#if defined(MEMBER_THUNK_OS_WINDOWS)
		void lock() noexcept
		{
			::AcquireSRWLockExclusive(&lock_);
		}
		[[nodiscard]] bool try_lock() noexcept
		{
			return ::TryAcquireSRWLockExclusive(&lock_) != 0;
		}
		void unlock() noexcept
		{
			::ReleaseSRWLockExclusive(&lock_);
		}

	private:
		SRWLOCK lock_ = SRWLOCK_INIT;
#else
		void lock() noexcept
		{
			std::uint32_t expected = free;
			if (state_.compare_exchange_strong(expected, held, std::memory_order_acquire, std::memory_order_relaxed))
				return;
			// Contended: announce a waiter, then sleep until the word changes.
			while (state_.exchange(contended, std::memory_order_acquire) != free)
				state_.wait(contended, std::memory_order_relaxed);
		}

		[[nodiscard]] bool try_lock() noexcept
		{
			std::uint32_t expected = free;
			return state_.compare_exchange_strong(expected, held, std::memory_order_acquire, std::memory_order_relaxed);
		}

		void unlock() noexcept
		{
			if (state_.exchange(free, std::memory_order_release) == contended)
				state_.notify_one();
		}

	private:
		static constexpr std::uint32_t free = 0;
		static constexpr std::uint32_t held = 1;
		static constexpr std::uint32_t contended = 2;
		std::atomic<std::uint32_t> state_{free};
#endif
	};

	static_assert(heap_lock<null_lock>);
	static_assert(heap_lock<slim_lock>);
	static_assert(sizeof(slim_lock) <= sizeof(void*), "slim_lock must stay one machine word");
} // namespace member_thunk
