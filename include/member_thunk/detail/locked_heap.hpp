// member_thunk: one heap mechanism for every owner of regions: heap_core behind a lock, taking back the pages its
// handles free. The user's heap<Lock>, a thread's default heap (MEMBER_THUNK_THREAD_LOCAL_HEAPS) and the orphanage
// that adopts the pages outliving their thread are all this class; they differ only in their Policy:
//   Policy::cache_capacity      how many freed pages to keep committed for reuse
//   Policy::reuses_slots        queue freed unique-thunk slots for reuse (the orphanage never allocates: it does not)
//   Policy::unreserve_empty     give a region back as soon as its last page is freed (the orphanage)
//   Policy::thread_cache        unique-thunk slots go through a cache per thread (slot_cache.hpp): the one
//                               thread-safe default heap, whose lock every thread would otherwise queue on
//   policy.check_free_thread()  called before a page is freed (a thread's heap: only on its thread)
#pragma once

#include "../heap_statistics.hpp"
#include "../page.hpp"
#include "../unique_thunk.hpp"
#include "callback.hpp"
#include "config.hpp"
#include "heap_core.hpp"
#include "os/per_thread.hpp"
#include "os/result.hpp"
#include "region.hpp"
#include "slot_cache.hpp"
#include "slot_queue.hpp"

#include <gsl/pointers>

#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <new>
#include <span>
#include <type_traits>

namespace member_thunk::detail
{
	/// The policy of a heap that any thread may use (through its lock) and that keeps its regions until compact().
	struct shared_heap_policy
	{
		static constexpr std::size_t cache_capacity = MEMBER_THUNK_PAGE_CACHE;
		static constexpr bool reuses_slots = true;
		static constexpr bool unreserve_empty = false;
		static constexpr bool thread_cache = false;
		static void check_free_thread() noexcept {}
	};

	/// The thread-safe default heap: a shared heap with a slot cache per thread. Only one heap may have this policy
	/// (the caches are thread_local objects of its type).
	struct default_heap_policy : shared_heap_policy
	{
		static constexpr bool thread_cache = true;
	};

	template<class Lock, os::backend Os, class Policy>
	class locked_heap : public page_owner, protected Policy
	{
	public:
		using core_type = heap_core<Os, Policy::cache_capacity, Policy::reuses_slots>;

		locked_heap() = default;
		locked_heap(const locked_heap&) = delete;
		locked_heap& operator=(const locked_heap&) = delete;
		locked_heap(locked_heap&&) = delete;
		locked_heap& operator=(locked_heap&&) = delete;
		~locked_heap() override = default;

		/// A new writable page, filled with traps. Throws os_error if the OS refuses memory, std::bad_alloc.
		[[nodiscard]] page allocate_page()
		{
			const std::lock_guard guard(lock_);
			check();
			auto result = core_.allocate(*this);
			check();
			return result;
		}

		/// A unique thunk that calls `(that->*MemberFn)(args...)` when called as `Callback(first, args...)`; callable
		/// at once. Same checks and preconditions as page::make_thunk. Throws os_error or image_pool_exhausted if no
		/// slot can be had, std::bad_alloc.
		template<class Callback, auto MemberFn, class Class>
		[[nodiscard]] unique_thunk<Callback> make_unique_thunk(Class* that)
		{
			return unique_member<binding::replaces_first, Callback, MemberFn>(that);
		}

		/// A unique thunk that calls `(that->*fn)(args...)`; its object and member pointers are kept in a block the
		/// thunk owns (allocated with operator new, freed with the thunk).
		template<class Callback, class MemberFn, class Class>
		[[nodiscard]] unique_thunk<Callback> make_unique_thunk(Class* that, MemberFn fn)
		{
			return unique_bound_member<binding::replaces_first, Callback>(that, fn);
		}

		/// A unique thunk that calls `callable(args...)`; the callable is referenced, not copied: it must outlive
		/// every call of the thunk.
		template<class Callback, class Callable>
		[[nodiscard]] unique_thunk<Callback> make_unique_thunk(Callable& callable)
		{
			return unique_callable<binding::replaces_first, Callback>(callable);
		}

		/// A temporary callable would be gone before the thunk is called: this overload only explains the error.
		template<class Callback, class Callable>
		requires(!std::is_lvalue_reference_v<Callable>)
		    unique_thunk<Callback> make_unique_thunk([[maybe_unused]] Callable&& callable)
		{
			explain_temporary<Callable>();
			return {};
		}

		/// A unique closure that calls `(that->*MemberFn)(args...)` when called as `Callback(args...)`: every argument
		/// is kept and the object pointer passed in front of them (see page::make_closure for what Callback may be).
		template<class Callback, auto MemberFn, class Class>
		[[nodiscard]] unique_thunk<Callback> make_unique_closure(Class* that)
		{
			return unique_member<binding::prepends, Callback, MemberFn>(that);
		}

		/// A unique closure that calls `(that->*fn)(args...)` (the pointers in a block the closure owns).
		template<class Callback, class MemberFn, class Class>
		[[nodiscard]] unique_thunk<Callback> make_unique_closure(Class* that, MemberFn fn)
		{
			return unique_bound_member<binding::prepends, Callback>(that, fn);
		}

		/// A unique closure that calls `callable(args...)` (referenced, not copied).
		template<class Callback, class Callable>
		[[nodiscard]] unique_thunk<Callback> make_unique_closure(Callable& callable)
		{
			return unique_callable<binding::prepends, Callback>(callable);
		}

		/// A temporary callable would be gone before the closure is called: this overload only explains the error.
		template<class Callback, class Callable>
		requires(!std::is_lvalue_reference_v<Callable>)
		    unique_thunk<Callback> make_unique_closure([[maybe_unused]] Callable&& callable)
		{
			explain_temporary<Callable>();
			return {};
		}

		/// Gives back the regions in which no page is alive and decommits the cached pages. Throws os_error.
		void compact()
		{
			// The calling thread's cache of unique-thunk slots goes back first, so that its slab pages can go too
			// (other threads' caches keep theirs).
			if constexpr (Policy::thread_cache)
				if (cache_type* const cache = this_thread_cache())
					cache->flush();
			const std::lock_guard guard(lock_);
			check();
			core_.compact();
			check();
		}

		/// The first broken clause of the invariants (detail/heap_core.hpp), if any.
		[[nodiscard]] invariant_violation first_violation() const
		{
			const std::lock_guard guard(lock_);
			return core_.first_violation(*this);
		}

		[[nodiscard]] bool is_valid() const { return !first_violation(); }

		[[nodiscard]] heap_statistics statistics() const
		{
			const std::lock_guard guard(lock_);
			heap_statistics s = core_.statistics();
			for (const cache_type* c = caches_; c != nullptr; c = c->next)
				s.live_unique_thunks -= c->held();
			return s;
		}

		/// Revokes the page outside the lock (it is still marked used, so nothing else touches it), then takes it
		/// back under the lock. A lock that throws here ends the process: a destructor has no way to report.
		void free_page(region& r, std::byte* address, std::span<const std::uint64_t> sealed_entries) noexcept final
		{
			Policy::check_free_thread();
			const bool committed = r.kind->revoke(r, address, sealed_entries);
			const std::lock_guard guard(lock_);
			check();
			core_.return_page(r, address, committed);
			if constexpr (Policy::unreserve_empty)
				core_.unreserve_if_empty(r);
			check();
		}

		/// Empties the slot outside the lock (it is still counted alive, so nothing else touches it), then takes it
		/// back under the lock.
		void free_slot(region& r, std::byte* slot) noexcept final
		{
			Policy::check_free_thread();
			empty_slot(slot);
			if constexpr (Policy::thread_cache)
				if (cache_type* const cache = this_thread_cache())
				{
					cache->give(*this, slot);
					return;
				}
			const std::lock_guard guard(lock_);
			check();
			core_.return_slot(r, slot);
			if constexpr (Policy::unreserve_empty)
				core_.unreserve_if_empty(r);
			check();
		}

	protected:
		/// Runs `f(core)` under the lock (for adopting and handing over regions).
		template<class F>
		void with_core(F f) noexcept
		{
			const std::lock_guard guard(lock_);
			check();
			f(core_);
			check();
		}

		/// Pages and unique thunks alive.
		[[nodiscard]] std::size_t live_objects() const
		{
			const std::lock_guard guard(lock_);
			return core_.live_pages() + core_.live_slots();
		}

		// The thread caches' side (slot_cache.hpp), each under the lock.
		using cache_type = thread_slot_cache<locked_heap>;
		friend cache_type;

		void adopt_cache(cache_type& cache)
		{
			const std::lock_guard guard(lock_);
			cache.next = caches_;
			if (caches_ != nullptr)
				caches_->prev = &cache;
			caches_ = &cache;
		}

		void refill_cache(slot_queue& into, std::size_t count)
		{
			const std::lock_guard guard(lock_);
			check();
			for (std::size_t i = 0; i < count; ++i)
				into.push(core_.allocate_slot(*this).slot);
			check();
		}

		void drain_cache(slot_queue& from, std::size_t count) noexcept
		{
			const std::lock_guard guard(lock_);
			check();
			for (std::size_t i = 0; i < count && from.size() != 0; ++i)
			{
				std::byte* const slot = from.pop();
				core_.return_slot(region_of_slot(slot), slot);
			}
			check();
		}

		void retire_cache(cache_type& cache) noexcept
		{
			drain_cache(cache.ready_slots(), cache.ready_slots().size());
			drain_cache(cache.quarantined_slots(), cache.quarantined_slots().size());
			const std::lock_guard guard(lock_);
			if (cache.prev != nullptr)
				cache.prev->next = cache.next;
			else
				caches_ = cache.next;
			if (cache.next != nullptr)
				cache.next->prev = cache.prev;
		}

	private:
		/// The calling thread's cache; null if there is none (late in the thread's exit, or none could be made).
		[[nodiscard]] static cache_type* this_thread_cache() noexcept
		{
			cache_type* cache = nullptr;
			if (!os::per_thread<cache_type>::get(cache).ok())
				return nullptr;
			return cache;
		}

		template<class Callable>
		static void explain_temporary() noexcept
		{
			static_assert(std::is_pointer_v<std::remove_cvref_t<Callable>> || std::is_lvalue_reference_v<Callable>,
			              "member_thunk: the callable must outlive the thunk, which refers to it: pass a named object "
			              "(an lvalue), not a temporary");
			static_assert(!std::is_pointer_v<std::remove_cvref_t<Callable>>,
			              "member_thunk: pass the callable object itself (by reference), not a pointer to it; for a "
			              "member function use make_unique_thunk<Callback>(object, &Class::member) or "
			              "make_unique_thunk<Callback, &Class::member>(object)");
		}

		template<binding B, class Callback, auto MemberFn, class Class>
		[[nodiscard]] unique_thunk<Callback> unique_member(Class* that)
		{
			if constexpr (check_member<Callback, Class, decltype(MemberFn), B>())
			{
				static_assert(!is_null_member<MemberFn>, "member_thunk: MemberFn must not be a null member pointer");
				MEMBER_THUNK_EXPECTS(that != nullptr, "make_unique_thunk() was given a null object pointer");
				return make_unique<B, Callback>(
				    that, &trampolines_for<Callback, B>::template member<Class, MemberFn>::call, false);
			}
			else
				return {};
		}

		template<binding B, class Callback, class MemberFn, class Class>
		[[nodiscard]] unique_thunk<Callback> unique_bound_member(Class* that, MemberFn fn)
		{
			if constexpr (check_member<Callback, Class, MemberFn, B>())
			{
				MEMBER_THUNK_EXPECTS(that != nullptr, "make_unique_thunk() was given a null object pointer");
				MEMBER_THUNK_EXPECTS(fn != nullptr, "make_unique_thunk() was given a null member function pointer");
				using block = bound_member_block<Class, MemberFn>;
				static_assert(alignof(block) <= __STDCPP_DEFAULT_NEW_ALIGNMENT__);
				void* const storage = ::operator new(sizeof(block));
				try
				{
					// Owned by the unique thunk from here on (unique_thunk::reset deletes it).
					const gsl::owner<const block*> b = ::new (storage) block{that, fn};
					return make_unique<B, Callback>(
					    b, &trampolines_for<Callback, B>::template bound_member<block>::call, true);
				}
				catch (...)
				{
					::operator delete(storage);
					throw;
				}
			}
			else
				return {};
		}

		template<binding B, class Callback, class Callable>
		[[nodiscard]] unique_thunk<Callback> unique_callable(Callable& callable)
		{
			if constexpr (check_callable<Callback, Callable, B>())
				return make_unique<B, Callback>(
				    std::addressof(callable), &trampolines_for<Callback, B>::template callable<Callable>::call, false);
			else
				return {};
		}

		/// Takes a slot (from the thread's cache, or under the lock) and writes it outside the lock.
		template<binding B, class Callback>
		[[nodiscard]] unique_thunk<Callback> make_unique(const volatile void* bound,
		                                                 typename bound_signature<B, Callback>::target target,
		                                                 bool owned)
		{

			std::byte* slot = nullptr;
			if constexpr (Policy::thread_cache)
				if (cache_type* const cache = this_thread_cache())
					slot = cache->take(*this);
			if (slot == nullptr)
			{
				const std::lock_guard guard(lock_);
				check();
				slot = core_.allocate_slot(*this).slot;
				check();
			}
			write_slot(slot, reinterpret_cast<std::uintptr_t>(bound), reinterpret_cast<std::uintptr_t>(target));
			const region& r = region_of_slot(slot);
			const std::ptrdiff_t stub = B == binding::replaces_first ? r.thunk_stubs : r.closure_stubs;
			return unique_thunk_access::make<Callback>(std::bit_cast<Callback>(slot + stub), slot, owned);
		}

		void check() const noexcept
		{
#if MEMBER_THUNK_DEBUG
			if (const auto v = core_.first_violation(*this))
				fail_invariant("invariant broken: a heap's regions and pages are inconsistent", v);
#endif
		}

		mutable Lock lock_;
		core_type core_;
		cache_type* caches_ = nullptr; // the thread caches of this heap (Policy::thread_cache)
	};
} // namespace member_thunk::detail
