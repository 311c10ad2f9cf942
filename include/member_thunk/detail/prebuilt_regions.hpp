// member_thunk: regions of prebuilt stubs (arch/stub_tables.hpp). A region is the data pages of stubs whose code is
// never written by the library: a page is a row of 16-byte data slots {bound, target}; sealing it makes it read-only
// (what its thunks call cannot change any more), revoking it makes it writable again and points every slot at the trap.
//
// Where the stubs' code comes from, in the order tried (the first way that fails for a reason other than a lack of
// memory is not tried again by the process):
//   image_file    the stub template mapped read-execute from the program's own file (Linux): no writable memory, no
//                 memory of its own (the file's pages are shared), allowed by PR_SET_MDWE, systemd's filter and
//                 SELinux (the program's file is executable by definition);
//   sealed_copy   a sealed memfd holding a copy of the template, mapped read-execute (Linux): needs the right to
//                 execute tmpfs files, which strict SELinux policies deny;
//   runtime_copy  a copy written into fresh pages and sealed read-execute, like run-time code (every OS; only when
//                 the process may make memory executable);
//   image_pool    the stubs compiled into the program (MEMBER_THUNK_IMAGE_POOL_TABLES tables), with their data in .bss:
//                 a fixed number, shared by every heap of the process. The only way under Windows ACG.
// A reservation holds [thunk stubs][closure stubs][data], each arch::stubs::table_size bytes.
#pragma once

#include "../exception.hpp"
#include "arch/stub_tables.hpp"
#include "config.hpp"
#include "os/result.hpp"
#include "os_error.hpp"
#include "region.hpp"
#include "region_kind.hpp"

#include <array>
#include <atomic>
#include <bitset>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <random>
#include <span>
#include <string>
#include <system_error>

namespace member_thunk::detail
{
	namespace stubs = arch::stubs;

	/// One data slot, as the stubs read it: `bound` at +0, `target` at +pointer size.
	struct stub_slot
	{
		std::uintptr_t bound;
		std::uintptr_t target;
	};
	static_assert(sizeof(stub_slot) <= stubs::slot_size);

	/// Writes a slot, each word in one store (a stub that runs meanwhile reads an old or a new word, never a torn one).
	/// Nothing else is needed for the thunk to be called: a thread that calls it got its address through some
	/// synchronisation with the writer, which orders these stores before its loads.
	inline void write_slot(std::byte* slot, std::uintptr_t bound, std::uintptr_t target) noexcept
	{
		auto* const words = reinterpret_cast<std::uintptr_t*>(slot);
		std::atomic_ref<std::uintptr_t>(words[0]).store(bound, std::memory_order_relaxed);
		std::atomic_ref<std::uintptr_t>(words[1]).store(target, std::memory_order_relaxed);
	}

	/// Points a slot at the trap: a call through its stub traps.
	inline void empty_slot(std::byte* slot) noexcept
	{
		write_slot(slot, 0, stubs::trap_target());
	}

	/// The process's secret, once made: 0 until the first use. A namespace-scope word that is constant-initialised (so
	/// a heap used during static initialisation sees 0 and makes the secret, never uses a half-made one), read with one
	/// plain load on every use; a function-local static would test its guard each time (the unique-thunk cycle
	/// decodes metadata three or four times).
	// Process-wide by design: NOLINTNEXTLINE(cppcoreguidelines-avoid-non-const-global-variables)
	inline std::atomic<std::uintptr_t> metadata_secret_word{0};

	/// Makes the secret on first use; threads that race agree on the first one stored.
	[[nodiscard]] inline std::uintptr_t make_metadata_secret() noexcept
	{
		std::uintptr_t value = 0;
		try
		{
			std::random_device entropy;
			for (std::size_t i = 0; i < sizeof value; i += sizeof(unsigned int))
				value = (value << (8 * sizeof(unsigned int) % (8 * sizeof value))) ^ entropy();
		}
		catch (...)
		{
			// No entropy source: the address of this function and of a stack object still differ per run (ASLR),
			// which is all that is left.
			int local = 0;
			value = reinterpret_cast<std::uintptr_t>(&make_metadata_secret) ^
			        (reinterpret_cast<std::uintptr_t>(&local) << 7);
		}
		value |= 1; // never 0 (0 means "not made yet"), and odd: an encoded null is never null
		std::uintptr_t expected = 0;
		if (!metadata_secret_word.compare_exchange_strong(expected, value, std::memory_order_relaxed))
			return expected; // another thread made it first
		return value;
	}

	/// Metadata kept in writable slab pages (a chunk's region, the links of free slots) is stored encoded, as
	/// allocators protect their free lists (glibc's safe-linking, mimalloc's encoded free lists): mixed with the
	/// address where it is stored (whose high bits are randomised by ASLR) and with a secret of the process. A
	/// corrupted word then decodes to an address that fails the checks of region_of_slot and slot_queue, which end
	/// the process instead of following it.
	[[nodiscard]] inline std::uintptr_t metadata_secret() noexcept
	{
		const std::uintptr_t secret = metadata_secret_word.load(std::memory_order_relaxed);
		if (secret != 0) [[likely]]
			return secret;
		return make_metadata_secret();
	}

	[[nodiscard]] inline std::uintptr_t encode_metadata(std::uintptr_t value, const std::byte* where) noexcept
	{
		return value ^ (reinterpret_cast<std::uintptr_t>(where) >> 12) ^ metadata_secret();
	}

	[[nodiscard]] inline std::uintptr_t decode_metadata(std::uintptr_t stored, const std::byte* where) noexcept
	{
		return encode_metadata(stored, where); // the mix is its own inverse
	}

	/// The ways to get the stubs' code, in the order tried.
	enum class stub_source : int
	{
		image_file,
		sealed_copy,
		runtime_copy,
		image_pool
	};

	/// The process-wide state of the ways: the first one still worth trying, why each closed way was refused (the
	/// failed call and the OS's reason, static strings, for image_pool_exhausted), and (for tests) a way to force.
	struct stub_sources
	{
		// Process-wide state by design: the ways are the process's, whichever heap tries them.
		static inline std::atomic<int> first{0};   // NOLINT(cppcoreguidelines-avoid-non-const-global-variables)
		static inline std::atomic<int> forced{-1}; // NOLINT(cppcoreguidelines-avoid-non-const-global-variables)
		// NOLINTNEXTLINE(cppcoreguidelines-avoid-non-const-global-variables)
		static inline std::array<std::atomic<const char*>, 4> refused_call{};
		// NOLINTNEXTLINE(cppcoreguidelines-avoid-non-const-global-variables)
		static inline std::array<std::atomic<const char*>, 4> refused_reason{};

		/// Tests: use `way` only (or every way again, in order, with reset()).
		static void force(stub_source way) noexcept { forced.store(static_cast<int>(way)); }
		static void reset() noexcept
		{
			forced.store(-1);
			first.store(0);
			for (std::size_t i = 0; i < refused_call.size(); ++i)
			{
				refused_call[i].store(nullptr);
				refused_reason[i].store(nullptr);
			}
		}
	};

	/// The data-page steps every prebuilt region shares: fill, seal (read-only), revoke (writable, slots emptied).
	template<os::backend Os>
	struct prebuilt_pages
	{
		/// Every slot points at the trap; the first word of each chunk (a header slot, whose data no stub reads) holds
		/// the region, so that a slot's region is found from its address (slot_queue.hpp, region_of_slot).
		static void fill_traps(const region& r, std::byte* page) noexcept
		{
			for (std::size_t at = 0; at < r.page_size; at += stubs::slot_size)
				empty_slot(page + at);
			for (std::size_t at = 0; at < r.page_size; at += stubs::chunk_size)
				write_slot(page + at, encode_metadata(reinterpret_cast<std::uintptr_t>(&r), page + at),
				           stubs::trap_target());
		}

		static seal_outcome seal(region& r, std::byte* page,
		                         [[maybe_unused]] std::span<const std::uint64_t> entries) noexcept
		{
			seal_outcome outcome;
			outcome.failure = Os::protect(page, r.page_size, os::access::read);
			outcome.sealed = outcome.ok();
			if (!outcome.ok())
				outcome.doing = "make a page of prebuilt thunks read-only";
			return outcome;
		}

		static bool revoke(const region& r, std::byte* page,
		                   [[maybe_unused]] std::span<const std::uint64_t> sealed_entries) noexcept
		{
			if (Os::protect(page, r.page_size, os::access::read_write).ok())
			{
				fill_traps(r, page);
				return true;
			}
			if (r.kind->decommit(page, r.page_size).ok())
				return false;
			fail_fast("a freed page of prebuilt thunks could not be revoked: the OS refused both to make it writable "
			          "(to empty its slots) and to decommit it, so its thunks would stay callable");
		}
	};

	/// Regions of their own: a reservation with the stubs' code mapped or copied at its start.
	template<os::backend Os>
	struct mapped_stub_regions : prebuilt_pages<Os>
	{
		static os::result commit(std::byte* page, std::size_t page_size) noexcept
		{
			return Os::make_writable(page, page_size);
		}

		static os::result decommit(std::byte* page, std::size_t page_size) noexcept
		{
			return Os::decommit(page, page_size);
		}

		static os::result unreserve(const region& r) noexcept
		{
			return Os::unreserve(r.reservation, r.reservation_size);
		}

		static constexpr region_kind kind{true,
		                                  stubs::slot_size,
		                                  stubs::slots_per_chunk,
		                                  stubs::header_slots,
		                                  &commit,
		                                  &decommit,
		                                  &unreserve,
		                                  &prebuilt_pages<Os>::fill_traps,
		                                  &prebuilt_pages<Os>::seal,
		                                  &prebuilt_pages<Os>::revoke};

		/// Copies the template into [code, code + size) and seals it read-execute (the runtime_copy way); its stubs,
		/// and not the chunk headers between them, become call targets.
		[[nodiscard]] static os::result copy_template(std::byte* code, std::size_t size) noexcept
		{
			if (code == nullptr)
				return os::result::failure(std::make_error_code(std::errc::invalid_argument), "copy the stub template");
			if (auto status = Os::make_writable(code, size); !status.ok())
				return status;
			std::memcpy(code, stubs::template_tables(), size);
			if (auto status = Os::make_executable(code, size); !status.ok())
				return status;
			if (auto status = Os::flush_instruction_cache(code, size); !status.ok())
				return status;
			return Os::set_call_targets(code, size, stubs::template_stubs, stubs::slot_size, true);
		}

		/// Reserves a region and puts the stubs' code at its start by the way `way`. If that fails and the OS also
		/// refuses to give the reservation back, `r` describes it (r.unusable): the caller lists it, so that it is
		/// given back later instead of leaked.
		[[nodiscard]] static os::result reserve(region& r, stub_source way) noexcept
		{
			constexpr std::size_t table = stubs::table_size;
			void* base = nullptr;
			if (auto status = Os::reserve(3 * table, nullptr, base); !status.ok())
				return status;
			auto* const code = static_cast<std::byte*>(base);
			os::result status = os::result::success();
			switch (way)
			{
			case stub_source::image_file:
				status = Os::map_image_code(code, 2 * table, stubs::template_tables());
				break;
			case stub_source::sealed_copy:
				status = Os::map_sealed_copy(code, 2 * table, stubs::template_tables());
				break;
			default:
				status = copy_template(code, 2 * table);
				break;
			}
			if (!status.ok())
			{
				if (!Os::unreserve(base, 3 * table).ok())
				{
					describe(r, code);
					r.unusable = true;
				}
				return status;
			}
			describe(r, code);
			return os::result::success();
		}

	private:
		static void describe(region& r, std::byte* code) noexcept
		{
			constexpr std::size_t table = stubs::table_size;
			r.base = code + 2 * table;
			r.page_size = Os::page_size();
			r.page_count = table / r.page_size;
			r.reservation = code;
			r.reservation_size = 3 * table;
			r.thunk_stubs = -static_cast<std::ptrdiff_t>(2 * table);
			r.closure_stubs = -static_cast<std::ptrdiff_t>(table);
			r.kind = &kind;
		}
	};

	/// Which pages of the image pool are taken, for the whole process.
	struct image_pool_state
	{
		std::mutex lock;
		std::bitset<stubs::pool_size / 4096> taken;

		static image_pool_state& instance() noexcept
		{
			static image_pool_state the; // trivially destructible but for the mutex, which outlives every heap: never
			                             // used after main() by the default heap, which is never destroyed
			return the;
		}
	};

	/// The image pool: one page of its data at a time, shared by every heap of the process.
	template<os::backend Os>
	struct image_pool_regions : prebuilt_pages<Os>
	{
		static constexpr std::size_t max_pages = stubs::pool_size / 4096;

		static os::result commit(std::byte* page, std::size_t page_size) noexcept
		{
			return Os::protect(page, page_size, os::access::read_write);
		}

		/// The pool's memory is the program's: it cannot be given back, only made inaccessible.
		static os::result decommit(std::byte* page, std::size_t page_size) noexcept
		{
			return Os::protect(page, page_size, os::access::none);
		}

		static os::result unreserve(const region& r) noexcept
		{
			const std::lock_guard guard(state().lock);
			state().taken.reset(index_of(r.base, r.page_size));
			return os::result::success();
		}

		static constexpr region_kind kind{true,
		                                  stubs::slot_size,
		                                  stubs::slots_per_chunk,
		                                  stubs::header_slots,
		                                  &commit,
		                                  &decommit,
		                                  &unreserve,
		                                  &prebuilt_pages<Os>::fill_traps,
		                                  &prebuilt_pages<Os>::seal,
		                                  &prebuilt_pages<Os>::revoke};

		/// Takes a free page of the pool as a region of one page; false when the pool is exhausted.
		[[nodiscard]] static bool reserve(region& r) noexcept
		{
			const std::size_t page_size = Os::page_size();
			const std::size_t pages = stubs::pool_size / page_size;
			const std::lock_guard guard(state().lock);
			for (std::size_t i = 0; i < pages; ++i)
			{
				if (state().taken.test(i))
					continue;
				state().taken.set(i);
				r.base = stubs::pool_data() + i * page_size;
				r.page_size = page_size;
				r.page_count = 1;
				r.reservation = r.base;
				r.reservation_size = page_size;
				r.thunk_stubs = stubs::pool_tables() - stubs::pool_data();
				r.closure_stubs = r.thunk_stubs + static_cast<std::ptrdiff_t>(stubs::pool_size);
				r.kind = &kind;
				return true;
			}
			return false;
		}

		/// Pool pages in use (for statistics and tests).
		[[nodiscard]] static std::size_t pages_taken() noexcept
		{
			const std::lock_guard guard(state().lock);
			return state().taken.count();
		}

	private:
		/// One for the process, not one per OS back end: every heap takes pages of the same pool.
		static image_pool_state& state() noexcept { return image_pool_state::instance(); }

		[[nodiscard]] static std::size_t index_of(const std::byte* page, std::size_t page_size) noexcept
		{
			return static_cast<std::size_t>(page - stubs::pool_data()) / page_size;
		}
	};

	/// Reserves a region of prebuilt stubs by the first way that works (see the top of this file). `runtime_allowed`:
	/// whether the runtime_copy way may be tried. `keep(const region&)` is given every reservation of a failed way
	/// that the OS refused to give back, to list as unusable (and give back later). Throws os_error if the OS lacks
	/// memory, image_pool_exhausted if every way is closed and the pool has no page left.
	template<os::backend Os, class Keep>
	void reserve_prebuilt_region(region& r, bool runtime_allowed, Keep keep)
	{
		const int forced = stub_sources::forced.load();
		std::string refusals;
		const auto note_refusal = [&refusals](const char* call, const char* reason) {
			if (call == nullptr)
				return;
			refusals += refusals.empty() ? "" : "; ";
			refusals += call;
			if (reason != nullptr)
			{
				refusals += ": ";
				refusals += reason;
			}
		};
		const int start = forced >= 0 ? forced : stub_sources::first.load();
		// The ways closed before, by this call or an earlier one: image_pool_exhausted says why.
		for (int way = 0; way < start && forced < 0; ++way)
			note_refusal(stub_sources::refused_call[static_cast<std::size_t>(way)].load(),
			             stub_sources::refused_reason[static_cast<std::size_t>(way)].load());
		for (int way = start; way <= static_cast<int>(stub_source::image_pool); ++way)
		{
			const auto source = static_cast<stub_source>(way);
			if (source == stub_source::image_pool)
			{
				if (image_pool_regions<Os>::reserve(r))
					return;
				throw image_pool_exhausted(refusals);
			}
			if (source == stub_source::runtime_copy && !runtime_allowed && forced < 0)
				continue;
			const os::result status = mapped_stub_regions<Os>::reserve(r, source);
			if (status.ok())
				return;
			if (r.unusable)
			{
				keep(static_cast<const region&>(r));
				r.unusable = false;
			}
			// A lack of memory says nothing about the way: report it. Anything else closes the way for good.
			if (status.error() == std::errc::not_enough_memory)
				throw_os_error("reserve a region of prebuilt thunks", status);
			note_refusal(status.call(), status.reason());
			if (forced >= 0)
				throw_os_error("map prebuilt thunks the way a test forced", status);
			stub_sources::refused_call[static_cast<std::size_t>(way)].store(status.call());
			stub_sources::refused_reason[static_cast<std::size_t>(way)].store(status.reason());
			int expected = way;
			stub_sources::first.compare_exchange_strong(expected, way + 1);
		}
		throw image_pool_exhausted(refusals);
	}
} // namespace member_thunk::detail
