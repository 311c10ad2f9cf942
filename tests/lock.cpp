// Tests of the heap locks.
#include <member_thunk/lock.hpp>

#include <catch2/catch.hpp>

#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

using member_thunk::heap_lock;
using member_thunk::null_lock;
using member_thunk::slim_lock;

namespace
{
	struct not_default_constructible
	{
		explicit not_default_constructible(int) {}
		void lock() {}
		void unlock() {}
	};

	struct no_unlock
	{
		void lock() {}
	};
} // namespace

TEST_CASE("lock::the heap_lock concept accepts BasicLockable types only", "[lock]")
{
	STATIC_REQUIRE(heap_lock<null_lock>);
	STATIC_REQUIRE(heap_lock<slim_lock>);
	STATIC_REQUIRE(heap_lock<std::mutex>);
	STATIC_REQUIRE(heap_lock<std::recursive_mutex>);
	STATIC_REQUIRE_FALSE(heap_lock<int>);
	STATIC_REQUIRE_FALSE(heap_lock<no_unlock>);
	STATIC_REQUIRE_FALSE(heap_lock<not_default_constructible>);
}

TEST_CASE("lock::slim_lock is one word and not copyable", "[lock]")
{
	STATIC_REQUIRE(sizeof(slim_lock) <= sizeof(void*));
	STATIC_REQUIRE_FALSE(std::is_copy_constructible_v<slim_lock>);
	STATIC_REQUIRE_FALSE(std::is_move_constructible_v<slim_lock>);
}

TEST_CASE("lock::slim_lock try_lock fails while held", "[lock]")
{
	slim_lock lock;
	REQUIRE(lock.try_lock());
	CHECK_FALSE(lock.try_lock());
	bool other_thread_got_it = true;
	std::thread([&] { other_thread_got_it = lock.try_lock(); }).join();
	CHECK_FALSE(other_thread_got_it);
	lock.unlock();
	CHECK(lock.try_lock());
	lock.unlock();
}

TEST_CASE("lock::slim_lock excludes under contention", "[lock][threads]")
{
	// A non-atomic read-modify-write under the lock: any lost update means two threads were inside at once.
	slim_lock lock;
	long counter = 0;
	constexpr int threads = 4;
	constexpr int rounds = 50000;
	std::vector<std::thread> workers;
	for (int t = 0; t < threads; ++t)
		workers.emplace_back([&] {
			for (int i = 0; i < rounds; ++i)
			{
				const std::lock_guard guard(lock);
				const long seen = counter;
				if (i % 64 == 0)
					std::this_thread::yield(); // widen the window a broken lock would expose
				counter = seen + 1;
			}
		});
	for (auto& w : workers)
		w.join();
	CHECK(counter == long{threads} * rounds);
}
