// member_thunk: the per-thread default heap (MEMBER_THUNK_DEFAULT_HEAP_SAFETY 2) and the orphanage that adopts the
// pages still alive when their thread ends.
//
// A thread's heap takes no lock: only its thread allocates from it and frees into it. When the thread ends, the
// regions that still hold live pages move to the orphanage, a process-wide locked heap that never dies; those pages
// stay valid, may be destroyed from any thread, and each region is released as soon as its last page goes.
#pragma once

#include "config.hpp"
#include "heap_core.hpp"
#include "region.hpp"

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

	template<os::backend Os>
	class orphanage final : public page_owner
	{
	public:
		[[nodiscard]] static orphanage& instance()
		{
			static never_destroyed<orphanage> the;
			return the.get();
		}

		/// Takes over `from`'s regions that still hold live pages; releases the others.
		void adopt(heap_core<Os>& from) noexcept
		{
			const std::lock_guard guard(lock_);
			from.transfer_live_regions(core_, *this);
			MEMBER_THUNK_INVARIANT(core_.is_valid(*this), "the orphanage's regions are inconsistent");
		}

		[[nodiscard]] bool is_valid() const
		{
			const std::lock_guard guard(lock_);
			return core_.is_valid(*this);
		}

		[[nodiscard]] heap_statistics statistics() const
		{
			const std::lock_guard guard(lock_);
			return core_.statistics();
		}

		void seal_page(std::byte* address, std::size_t thunks, bool& sealed) override
		{
			heap_core<Os>::seal(address, thunks, sealed);
		}

		void release_page(region& r, std::byte* address, std::size_t sealed_thunks) noexcept override
		{
			const bool committed = heap_core<Os>::revoke(address, sealed_thunks);
			const std::lock_guard guard(lock_);
			core_.release(r, address, committed);
			core_.release_if_empty(r);
			MEMBER_THUNK_INVARIANT(core_.is_valid(*this), "the orphanage's regions are inconsistent");
		}

	private:
		friend class never_destroyed<orphanage>;
		orphanage() = default;

		mutable std::mutex lock_;
		heap_core<Os> core_;
	};

	template<os::backend Os>
	class thread_heap final : public page_owner
	{
	public:
		thread_heap() = default;
		thread_heap(const thread_heap&) = delete;
		thread_heap& operator=(const thread_heap&) = delete;
		thread_heap(thread_heap&&) = delete;
		thread_heap& operator=(thread_heap&&) = delete;

		~thread_heap() override { orphanage<Os>::instance().adopt(core_); }

		[[nodiscard]] page allocate_page()
		{
			check();
			auto result = core_.allocate(*this);
			check();
			return result;
		}

		void compact()
		{
			check();
			core_.compact();
			check();
		}

		[[nodiscard]] bool is_valid() const noexcept { return core_.is_valid(*this); }
		[[nodiscard]] heap_statistics statistics() const noexcept { return core_.statistics(); }

		void seal_page(std::byte* address, std::size_t thunks, bool& sealed) override
		{
			heap_core<Os>::seal(address, thunks, sealed);
		}

		void release_page(region& r, std::byte* address, std::size_t sealed_thunks) noexcept override
		{
			if (std::this_thread::get_id() != thread_)
				fail_fast("a page of a thread-local default heap (MEMBER_THUNK_DEFAULT_HEAP_SAFETY 2) was destroyed "
				          "on another thread while the thread that allocated it was still running; destroy pages on "
				          "their own thread, or use MEMBER_THUNK_DEFAULT_HEAP_SAFETY 3");
			const bool committed = heap_core<Os>::revoke(address, sealed_thunks);
			check();
			core_.release(r, address, committed);
			check();
		}

	private:
		void check() const noexcept
		{
			MEMBER_THUNK_INVARIANT(core_.is_valid(*this), "the thread's heap's regions and pages are inconsistent");
		}

		std::thread::id thread_ = std::this_thread::get_id();
		heap_core<Os> core_;
	};
} // namespace member_thunk::detail
