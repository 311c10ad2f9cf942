// member_thunk: the heap's mechanism, without its lock: a list of regions, page allocation, revocation, sealing,
// compaction and the validity check. heap<Lock, Os> puts a lock around it; the thread-local default heap and the
// orphanage (which adopts pages that outlive their thread) reuse it as is.
//
// Invariants of a heap_core h (checked by is_valid()):
//   the regions form one well-linked list (r.next->prev == r) of exactly h.region_count_ elements
//   every region is valid, owned by h's owner, and overlaps no other region
//   h.live_pages_ == Σ popcount(r.used)
#pragma once

#include "../exception.hpp"
#include "../page.hpp"
#include "arch/encoder.hpp"
#include "config.hpp"
#include "os/result.hpp"
#include "region.hpp"

#include <gsl/pointers>

#include <cstddef>
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
			heap_core()
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

			/// Takes a free page (reserving a region if none has one), commits it read-write and fills it with traps.
			/// Throws os_error or std::bad_alloc; the heap is unchanged but for a new empty region (compact() frees
			/// it).
			[[nodiscard]] page allocate(page_owner& owner)
			{
				region* r = head_;
				while (r != nullptr && !r->has_free_page())
					r = r->next;
				if (r == nullptr)
					r = &add_region(owner);
				const std::size_t index = r->first_free_page();
				std::byte* const address = r->page_at(index);
				if ((r->committed & region::bit(index)) == 0)
				{
					if (const auto status = Os::commit(address, r->page_size); !status.ok())
						throw_os_error("commit a page for thunks", status);
					encoder::fill_traps(std::span<std::byte>(address, r->page_size));
					r->committed |= region::bit(index);
				}
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

			/// Revokes a page: its call targets are withdrawn and its memory decommitted, so a stale call faults. If
			/// the OS refuses to decommit, the page is made read-write (never executable) and trap-filled, and kept
			/// committed for reuse; if that fails too, nothing safe remains and the process ends.
			void release(region& r, std::byte* address, std::size_t sealed_thunks) noexcept
			{
				const std::size_t index = r.index_of(address);
				MEMBER_THUNK_INVARIANT(r.contains(address) && (r.used & region::bit(index)) != 0,
				                       "a page was released that its region does not hold");
				// A failure to withdraw CFG targets leaves them valid on an address that faults once decommitted:
				// weaker, not unsafe, and a destructor has nobody to tell.
				if (sealed_thunks != 0)
					static_cast<void>(
					    Os::set_call_targets(address, r.page_size, sealed_thunks, encoder::slot_size, false));
				if (Os::decommit(address, r.page_size).ok())
					r.committed &= ~region::bit(index);
				else if (Os::commit(address, r.page_size).ok())
					encoder::fill_traps(std::span<std::byte>(address, r.page_size));
				else
					fail_fast("a freed page could not be revoked: the OS refused both to decommit it and to make it "
					          "non-executable, so its thunks would stay callable");
				r.used &= ~region::bit(index);
				--live_pages_;
			}

			/// Releases every region with no live page. Throws os_error (after trying them all) if the OS refused
			/// to release one; that region stays, empty, and the next compact() tries again.
			void compact()
			{
				os::result first_failure{};
				for (region* r = head_; r != nullptr;)
				{
					region* const next = r->next;
					if (r->empty())
					{
						if (const auto status = release_region(*r); !status.ok() && first_failure.ok())
							first_failure = status;
					}
					r = next;
				}
				if (!first_failure.ok())
					throw_os_error("release an empty region", first_failure);
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
					r.owner.store(&new_owner, std::memory_order_release);
					to.push_front(r);
					to.live_pages_ += r.live_pages();
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
				}
				return count == region_count_ && live == live_pages_;
			}

			[[nodiscard]] std::size_t live_pages() const noexcept { return live_pages_; }

			[[nodiscard]] heap_statistics statistics() const noexcept
			{
				heap_statistics s;
				s.live_pages = live_pages_;
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
				void* base = nullptr;
				if (const auto status = Os::reserve(Os::region_size(), base); !status.ok())
					throw_os_error("reserve address space for thunks", status);
				r->base = static_cast<std::byte*>(base);
				r->page_size = Os::page_size();
				r->page_count = Os::region_size() / r->page_size;
				r->owner.store(&owner, std::memory_order_relaxed);
				push_front(*r);
				return *r.release();
			}

			os::result release_region(region& r) noexcept
			{
				MEMBER_THUNK_INVARIANT(r.empty(), "a region with live pages was about to be released");
				auto status = Os::release(r.base, r.size_bytes());
				if (status.ok())
				{
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

			gsl::owner<region*> head_ = nullptr;
			std::size_t region_count_ = 0;
			std::size_t live_pages_ = 0;
		};
	} // namespace detail
} // namespace member_thunk
