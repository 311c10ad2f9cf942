// member_thunk: the per-thread default heap (MEMBER_THUNK_THREAD_LOCAL_HEAPS) and the orphanage that adopts the
// pages still alive when their thread ends.
//
// A thread's heap takes no lock: only its thread allocates from it and frees into it. When the thread ends, the
// regions that still hold live pages move to the orphanage, a process-wide locked heap that never dies; those pages
// stay valid, may be destroyed from any thread, and each region is given back as soon as its last page goes.
#pragma once

#include "../lock.hpp"
#include "config.hpp"
#include "locked_heap.hpp"
#include "os/result.hpp"

#include <cstddef>
#include <mutex>
#include <new>
#include <thread>

namespace member_thunk::detail
{
	/// Storage for an object that is constructed on first use and never destroyed, so that it outlives every static
	/// and thread-local object that may still hold one of its pages.
	template<class T>
	class never_destroyed
	{
	public:
		never_destroyed() { ::new (static_cast<void*>(storage_)) T(); }
		never_destroyed(const never_destroyed&) = delete;
		never_destroyed& operator=(const never_destroyed&) = delete;
		never_destroyed(never_destroyed&&) = delete;
		never_destroyed& operator=(never_destroyed&&) = delete;
		~never_destroyed() = default;

		[[nodiscard]] T& get() noexcept { return *std::launder(reinterpret_cast<T*>(storage_)); }

	private:
		alignas(T) unsigned char storage_[sizeof(T)]{};
	};

	/// The orphanage keeps nothing it does not need: no cache, and a region goes as soon as its last page does.
	struct orphanage_policy
	{
		static constexpr std::size_t cache_capacity = 0;
		static constexpr bool reuses_slots = false;
		static constexpr bool unreserve_empty = true;
		static constexpr bool thread_cache = false;
		static void check_free_thread() noexcept {}
	};

	template<os::backend Os>
	class orphanage final : public locked_heap<std::mutex, Os, orphanage_policy>
	{
	public:
		[[nodiscard]] static orphanage& instance()
		{
			static never_destroyed<orphanage> the;
			return the.get();
		}

		/// Takes over `from`'s regions that still hold live pages; gives the others back.
		template<class Core>
		void adopt(Core& from) noexcept
		{
			this->with_core([&](auto& core) { from.hand_over(core, *this); });
		}

	private:
		friend class never_destroyed<orphanage>;
		orphanage() = default;
	};

	/// A thread's heap may only be used on its thread (it has no lock).
	class owning_thread_policy
	{
	public:
		static constexpr std::size_t cache_capacity = MEMBER_THUNK_PAGE_CACHE;
		static constexpr bool reuses_slots = true;
		static constexpr bool unreserve_empty = false;
		static constexpr bool thread_cache = false;

		void check_free_thread() const noexcept
		{
			if (std::this_thread::get_id() != thread_)
				fail_fast("a page or unique thunk of a thread-local default heap (MEMBER_THUNK_THREAD_LOCAL_HEAPS) was "
				          "destroyed on another thread while the thread that made it was still running; destroy it "
				          "on its own thread, or use MEMBER_THUNK_THREAD_SAFE_HEAP");
		}

	private:
		std::thread::id thread_ = std::this_thread::get_id();
	};

	template<os::backend Os>
	// A final class: nothing can be deleted through a pointer to a base of it that lacks the virtual destructor.
	class thread_heap final // NOLINT(cppcoreguidelines-virtual-class-destructor)
	    : public locked_heap<null_lock, Os, owning_thread_policy>
	{
	public:
		thread_heap() = default;
		thread_heap(const thread_heap&) = delete;
		thread_heap& operator=(const thread_heap&) = delete;
		thread_heap(thread_heap&&) = delete;
		thread_heap& operator=(thread_heap&&) = delete;

		/// The pages still alive go to the orphanage, with their regions.
		~thread_heap() override
		{
			this->with_core([](auto& core) { orphanage<Os>::instance().adopt(core); });
		}
	};
} // namespace member_thunk::detail
