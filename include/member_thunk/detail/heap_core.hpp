// member_thunk: the heap's mechanism, without its lock: a list of regions, page allocation, revocation, sealing,
// compaction and the validity check. heap<Lock, Os> puts a lock around it; the thread-local default heap and the
// orphanage (which adopts pages that outlive their thread) reuse it as is.
//
// Invariants of a heap_core h (checked by is_valid()):
//   the regions form one well-linked list (r.next->prev == r) of exactly h.region_count_ elements
//   every region is valid, owned by h's owner, and overlaps no other region
//   h.live_pages_ == Σ popcount(r.used)
//   h.cached_pages_ == Σ popcount(r.committed & ~r.used)   free pages kept read-write and trap-filled for reuse
//
// Page cache: a freed page is made read-write and filled with traps (never executable) before its heap is locked,
// and kept committed, up to MEMBER_THUNK_PAGE_CACHE pages per heap, so that a steady state of allocating, sealing and
// freeing pages costs two protection changes per page, none of them under the heap's lock, and no mapping change;
// the next allocate_page() takes it (refilling the traps), and compact() decommits what is left. Beyond the limit
// (or with MEMBER_THUNK_PAGE_CACHE=0) the freed page is then decommitted.
//
// Placement: regions are reserved near the library's code when the address space allows it, so that the encoder
// can use its direct jump (encoder::direct_reach); the choice between direct and absolute jump is made per thunk.
#pragma once

#include "../exception.hpp"
#include "../page.hpp"
#include "arch/encoder.hpp"
#include "config.hpp"
#include "os/result.hpp"
#include "region.hpp"

#include <gsl/pointers>

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>

namespace member_thunk
{
	/// A heap's use of memory, for monitoring and benchmarks.
	struct heap_statistics
	{
		std::size_t regions = 0;         ///< reservations held
		std::size_t reserved_bytes = 0;  ///< address space reserved
		std::size_t committed_bytes = 0; ///< memory committed (live pages and free pages kept for reuse)
		std::size_t live_pages = 0;      ///< pages held by page handles
		std::size_t cached_pages = 0;    ///< free pages kept committed (read-write, trap-filled) for reuse
	};

	namespace detail
	{
		/// Throws the os_error for a failed OS call: what() says what the library was doing, which call failed and,
		/// when the back end knows, why the OS refused.
		[[noreturn]] inline void throw_os_error(const char* doing, const os::result& failed)
		{
			std::string what = "member_thunk: could not ";
			what += doing;
			what += ": ";
			what += failed.call;
			what += " failed";
			if (failed.hint != nullptr)
			{
				what += " because ";
				what += failed.hint;
			}
			throw os_error(failed.error, what);
		}

		template<os::backend Os>
		class heap_core
		{
			using encoder = arch::native_encoder;

		public:
			heap_core() noexcept
			{
				const std::size_t page_size = Os::page_size();
				const std::size_t region_size = Os::region_size();
				MEMBER_THUNK_EXPECTS(page_size % encoder::slot_size == 0 && region_size % page_size == 0 &&
				                         region_size / page_size >= 1 && region_size / page_size <= region::max_pages,
				                     "the OS back end's page size and region size do not fit a region");
			}

			heap_core(const heap_core&) = delete;
			heap_core& operator=(const heap_core&) = delete;
			heap_core(heap_core&&) = delete;
			heap_core& operator=(heap_core&&) = delete;

			/// Releases every region. The owner has made sure no page is alive.
			~heap_core()
			{
				for (gsl::owner<region*> r = head_; r != nullptr;)
				{
					gsl::owner<region*> const next = r->next;
					// Nothing to report to: a failed munmap/VirtualFree of our own reservation leaves address space
					// behind but no accessible memory (every page in it is decommitted).
					static_cast<void>(Os::release(r->base, r->size_bytes()));
					delete r;
					r = next;
				}
			}

			/// Takes a free page: a cached one if there is one (no system call), else a decommitted one (reserving a
			/// region if none has one), committed read-write. Either way the page is filled with traps. Throws
			/// os_error or std::bad_alloc; the heap is unchanged but for a new empty region (compact() frees it).
			[[nodiscard]] page allocate(page_owner& owner)
			{
				region* r = nullptr;
				std::size_t index = 0;
				if (cached_pages_ != 0)
				{
					r = head_;
					while (r->cached() == 0)
						r = r->next; // cached_pages_ != 0: some region has one
					index = static_cast<std::size_t>(std::countr_zero(r->cached()));
					--cached_pages_;
				}
				else
				{
					r = head_;
					while (r != nullptr && !r->has_free_page())
						r = r->next;
					if (r == nullptr)
						r = &add_region(owner);
					index = r->first_free_page();
					if (const auto status = Os::commit(r->page_at(index), r->page_size); !status.ok())
						throw_os_error("commit a page for thunks", status);
					r->committed |= region::bit(index);
				}
				std::byte* const address = r->page_at(index);
				// Also over a cached page: whatever was written to it since it was freed never becomes executable.
				encoder::fill_traps(std::span<std::byte>(address, r->page_size));
				r->used |= region::bit(index);
				++live_pages_;
				// Most recently used region first: the next allocation finds a free page at once.
				if (r != head_)
				{
					unlink(*r);
					push_front(*r);
				}
				return page_access::make(*r, address);
			}

			/// Revokes a page: its call targets are withdrawn and it stops being executable at once, so a stale call
			/// faults. It is made read-write and trap-filled (to be kept for reuse); if the OS refuses, it is
			/// decommitted; if that fails too, nothing safe remains and the process ends. Needs no lock: the page is
			/// still marked used, so nothing else touches it. Returns whether the page is still committed; pass that
			/// to release().
			[[nodiscard]] static bool revoke(std::byte* address, std::size_t sealed_thunks) noexcept
			{
				const std::size_t page_size = Os::page_size();
				// A failure to withdraw CFG targets leaves them valid on an address that is no longer executable:
				// weaker, not unsafe, and a destructor has nobody to tell.
				if (sealed_thunks != 0)
					static_cast<void>(
					    Os::set_call_targets(address, page_size, sealed_thunks, encoder::slot_size, false));
				if (Os::commit(address, page_size).ok())
				{
					encoder::fill_traps(std::span<std::byte>(address, page_size));
					return true;
				}
				if (Os::decommit(address, page_size).ok())
					return false;
				fail_fast("a freed page could not be revoked: the OS refused both to make it non-executable and to "
				          "decommit it, so its thunks would stay callable");
			}

			/// Returns a page revoked by revoke() to its region: kept in the cache while it has room, else
			/// decommitted (if the OS refuses, it stays cached: read-write traps are safe, only over the limit).
			void release(region& r, std::byte* address, bool committed) noexcept
			{
				const std::size_t index = r.index_of(address);
				MEMBER_THUNK_INVARIANT(r.contains(address) && (r.used & region::bit(index)) != 0,
				                       "a page was released that its region does not hold");
				if (committed && cached_pages_ >= page_cache_limit && Os::decommit(address, r.page_size).ok())
					committed = false;
				if (committed)
					++cached_pages_;
				else
					r.committed &= ~region::bit(index);
				r.used &= ~region::bit(index);
				--live_pages_;
			}

			/// Releases every region with no live page and decommits the cached pages of the others. Throws os_error
			/// (after trying them all) if the OS refused one; what it refused stays as it was (empty region, cached
			/// page), and the next compact() tries again.
			void compact()
			{
				os::result first_failure{};
				const char* doing = nullptr;
				for (region* r = head_; r != nullptr;)
				{
					region* const next = r->next;
					if (r->empty())
					{
						if (const auto status = release_region(*r); !status.ok() && first_failure.ok())
						{
							first_failure = status;
							doing = "release an empty region";
						}
					}
					else
					{
						for (std::uint64_t cached = r->cached(); cached != 0; cached &= cached - 1)
						{
							const auto index = static_cast<std::size_t>(std::countr_zero(cached));
							if (const auto status = Os::decommit(r->page_at(index), r->page_size); status.ok())
							{
								r->committed &= ~region::bit(index);
								--cached_pages_;
							}
							else if (first_failure.ok())
							{
								first_failure = status;
								doing = "decommit a cached page";
							}
						}
					}
					r = next;
				}
				if (!first_failure.ok())
					throw_os_error(doing, first_failure);
			}

			/// Releases `r` if no page of it is alive (for the orphanage, which keeps nothing it does not need).
			void release_if_empty(region& r) noexcept
			{
				if (r.empty())
					static_cast<void>(release_region(r));
			}

			/// Hands every region with live pages to `to`, owned by `new_owner` from now on; releases the others.
			void transfer_live_regions(heap_core& to, page_owner& new_owner) noexcept
			{
				for (region* next = head_; next != nullptr;)
				{
					region& r = *next;
					next = r.next;
					if (r.empty())
					{
						// On failure the region stays here, and this heap's destructor tries once more.
						static_cast<void>(release_region(r));
						continue;
					}
					unlink(r);
					live_pages_ -= r.live_pages();
					cached_pages_ -= r.cached_pages();
					r.owner.store(&new_owner, std::memory_order_release);
					to.push_front(r);
					to.live_pages_ += r.live_pages();
					to.cached_pages_ += r.cached_pages();
				}
			}

			/// Makes a page read-execute and registers its thunk entries (page_owner::seal_page). Needs no lock: it
			/// touches only the page, which its handle owns.
			static void seal(std::byte* address, std::size_t thunks, bool& sealed)
			{
				const std::size_t page_size = Os::page_size();
				sealed = false;
				if (const auto status = Os::make_executable(address, page_size); !status.ok())
					throw_os_error("make a page executable", status);
				sealed = true;
				auto status = Os::flush_instruction_cache(address, page_size);
				const char* doing = "flush the instruction cache for a page";
				if (status.ok())
				{
					status = Os::set_call_targets(address, page_size, thunks, encoder::slot_size, true);
					doing = "register a page's thunks as call targets";
				}
				if (status.ok())
					return;
				// No thunk may be called before mark_executable() returns, so the page can go back to read-write.
				if (Os::commit(address, page_size).ok())
					sealed = false;
				throw_os_error(doing, status);
			}

			[[nodiscard]] bool is_valid(const page_owner& owner) const noexcept
			{
				std::size_t count = 0;
				std::size_t live = 0;
				std::size_t cached = 0;
				const region* prev = nullptr;
				for (const region* r = head_; r != nullptr; prev = r, r = r->next)
				{
					if (++count > region_count_ || r->prev != prev || !r->is_valid() ||
					    r->owner.load(std::memory_order_relaxed) != &owner)
						return false;
					for (const region* other = head_; other != r; other = other->next)
						if (r->base < other->base + other->size_bytes() && other->base < r->base + r->size_bytes())
							return false;
					live += r->live_pages();
					cached += r->cached_pages();
				}
				return count == region_count_ && live == live_pages_ && cached == cached_pages_;
			}

			[[nodiscard]] std::size_t live_pages() const noexcept { return live_pages_; }

			[[nodiscard]] heap_statistics statistics() const noexcept
			{
				heap_statistics s;
				s.live_pages = live_pages_;
				s.cached_pages = cached_pages_;
				for (const region* r = head_; r != nullptr; r = r->next)
				{
					++s.regions;
					s.reserved_bytes += r->size_bytes();
					s.committed_bytes += static_cast<std::size_t>(std::popcount(r->committed)) * r->page_size;
				}
				return s;
			}

		private:
			region& add_region(page_owner& owner)
			{
				auto r = std::make_unique<region>();
				r->base = reserve_region();
				r->page_size = Os::page_size();
				r->page_count = Os::region_size() / r->page_size;
				r->owner.store(&owner, std::memory_order_relaxed);
				push_front(*r);
				return *r.release();
			}

			/// Whether the encoder's direct jump reaches every address (a 32-bit address space), and its reach capped
			/// at the largest address.
			static constexpr bool reaches_everywhere = encoder::direct_reach >
			                                           std::numeric_limits<std::uintptr_t>::max();
			static constexpr std::uintptr_t capped_reach = reaches_everywhere
			                                                   ? std::numeric_limits<std::uintptr_t>::max()
			                                                   : static_cast<std::uintptr_t>(encoder::direct_reach);

			/// An address in the code that includes this heap, which is where the trampolines thunks jump to are.
			static void code_anchor() noexcept {}

			/// Whether every slot of [base, base + size) can reach `code` (and code near it) with a direct jump.
			[[nodiscard]] static bool within_reach(std::uintptr_t base, std::size_t size, std::uintptr_t code) noexcept
			{
				const auto distance = [code](std::uintptr_t at) { return at > code ? at - code : code - at; };
				return base + size > base && distance(base) <= encoder::direct_reach &&
				       distance(base + size) <= encoder::direct_reach;
			}

			/// Reserves a region, near the code when the address space allows it (below it first: above a program
			/// lies its break heap). A hint is only a wish: the OS places the reservation elsewhere if the range is
			/// taken, and then the next hint is tried; the last reservation is kept wherever it is (its thunks use the
			/// absolute jump).
			std::byte* reserve_region()
			{
				const std::size_t size = Os::region_size();
				const auto code = reinterpret_cast<std::uintptr_t>(&code_anchor);
				const auto aligned = [size](std::uintptr_t address) { return address - address % size; };
				const std::uintptr_t reach = capped_reach;
				std::array<std::uintptr_t, 4> hints{};
				std::size_t count = 0;
				// A jump that reaches the whole address space (i386) makes every place near: no hint needed.
				if constexpr (!reaches_everywhere)
				{
					if (last_near_ > size && within_reach(last_near_ - size, size, code))
						hints[count++] = last_near_ - size; // grow down from the last region placed near the code
					for (const std::uintptr_t below : {reach / 2, reach / 4, reach - reach / 4})
						if (code > below + size)
							hints[count++] = aligned(code - below);
				}
				if (count == 0)
					hints[count++] = 0; // nowhere to aim: anywhere
				for (std::size_t i = 0;; ++i)
				{
					void* base = nullptr;
					// A hint is an address computed from the code's; it is never dereferenced.
					void* const hint = reinterpret_cast<void*>(hints[i]); // NOLINT(performance-no-int-to-ptr)
					if (const auto status = Os::reserve(size, hint, base); !status.ok())
						throw_os_error("reserve address space for thunks", status);
					const auto at = reinterpret_cast<std::uintptr_t>(base);
					const bool in_reach = within_reach(at, size, code);
					if (in_reach)
						last_near_ = at;
					// A reservation out of reach that cannot be given back is kept rather than leaked.
					if (in_reach || i + 1 == count || !Os::release(base, size).ok())
						return static_cast<std::byte*>(base);
				}
			}

			os::result release_region(region& r) noexcept
			{
				MEMBER_THUNK_INVARIANT(r.empty(), "a region with live pages was about to be released");
				auto status = Os::release(r.base, r.size_bytes());
				if (status.ok())
				{
					cached_pages_ -= r.cached_pages();
					unlink(r);
					delete &r;
				}
				return status;
			}

			void push_front(region& r) noexcept
			{
				r.prev = nullptr;
				r.next = head_;
				if (head_ != nullptr)
					head_->prev = &r;
				head_ = &r;
				++region_count_;
			}

			void unlink(region& r) noexcept
			{
				if (r.prev != nullptr)
					r.prev->next = r.next;
				else
					head_ = r.next;
				if (r.next != nullptr)
					r.next->prev = r.prev;
				r.prev = r.next = nullptr;
				--region_count_;
			}

			static constexpr std::size_t page_cache_limit = MEMBER_THUNK_PAGE_CACHE;

			gsl::owner<region*> head_ = nullptr;
			std::size_t region_count_ = 0;
			std::size_t live_pages_ = 0;
			std::size_t cached_pages_ = 0;
			std::uintptr_t last_near_ = 0; // base of the last region reserved within reach of the code
		};
	} // namespace detail
} // namespace member_thunk
