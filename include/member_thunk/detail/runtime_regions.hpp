// member_thunk: regions of run-time code. A page is machine code written by the native encoder into a read-write
// page, then sealed read-execute for good; freed, it is made read-write and trap-filled again (or decommitted). The
// reservation is an OS reservation placed near the code (placement.hpp).
#pragma once

#include "arch/encoder.hpp"
#include "config.hpp"
#include "os/result.hpp"
#include "region.hpp"
#include "region_kind.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>

namespace member_thunk::detail
{
	template<os::backend Os>
	struct runtime_code_regions
	{
		using encoder = arch::native_encoder;

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

		static void fill_traps(const region& r, std::byte* page) noexcept
		{
			encoder::fill_traps(std::span<std::byte>(page, r.page_size));
		}

		/// Read-execute, instruction cache flushed, the `entries` of its thunks and closures (an entry_mask's words)
		/// registered as call targets, and nothing else in it. No thunk may be called before this returns, so on a
		/// failure after the page became executable it can go back to read-write. A W^X policy's refusal is recorded
		/// in the region, so that its heap stops making run-time code.
		static seal_outcome seal(region& r, std::byte* page, std::span<const std::uint64_t> entries) noexcept
		{
			const std::size_t page_size = r.page_size;
			seal_outcome outcome;
			outcome.failure = Os::make_executable(page, page_size);
			if (!outcome.ok())
			{
				if (outcome.failure.is_policy_refusal())
					r.execution_refused.store(true, std::memory_order_relaxed);
				outcome.doing = "make a page executable";
				return outcome;
			}
			outcome.sealed = true;
			outcome.failure = Os::flush_instruction_cache(page, page_size);
			outcome.doing = "flush the instruction cache for a page";
			if (outcome.ok())
			{
				outcome.failure = Os::set_call_targets(page, page_size, entries, encoder::slot_size, true);
				outcome.doing = "register a page's thunks as call targets";
			}
			if (outcome.ok())
			{
				outcome.doing = nullptr;
				return outcome;
			}
			if (Os::make_writable(page, page_size).ok())
				outcome.sealed = false;
			return outcome;
		}

		/// The call targets registered by seal() (`sealed_entries`) withdrawn, then read-write and trap-filled (a
		/// stale call faults at once); if the OS refuses that, decommitted; if it refuses both, nothing safe remains
		/// and the process ends.
		static bool revoke(const region& r, std::byte* page, std::span<const std::uint64_t> sealed_entries) noexcept
		{
			const std::size_t page_size = r.page_size;
			// A failure to withdraw CFG targets leaves them valid on an address that is no longer executable:
			// weaker, not unsafe, and a destructor has nobody to tell.
			if (std::ranges::any_of(sealed_entries, [](std::uint64_t word) { return word != 0; }))
				static_cast<void>(Os::set_call_targets(page, page_size, sealed_entries, encoder::slot_size, false));
			if (Os::make_writable(page, page_size).ok())
			{
				fill_traps(r, page);
				return true;
			}
			if (Os::decommit(page, page_size).ok())
				return false;
			fail_fast("a freed page could not be revoked: the OS refused both to make it non-executable and to "
			          "decommit it, so its thunks would stay callable");
		}

		static constexpr region_kind kind{false,     encoder::slot_size, 1,           0,     &commit,
		                                  &decommit, &unreserve,         &fill_traps, &seal, &revoke};
	};
} // namespace member_thunk::detail
