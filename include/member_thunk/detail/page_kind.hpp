// member_thunk: how the pages of a region hold thunks, and the protection steps of their life: fill with traps, seal,
// revoke. A region records its kind as a pointer to a table of static functions, so that a page handle seals and
// revokes its page without its heap (which may be another thread's, or the orphanage by then) and without knowing the
// OS back end's type.
//
// The kind here is run-time code: a page is a page of machine code, written read-write and sealed read-execute.
#pragma once

#include "arch/encoder.hpp"
#include "config.hpp"
#include "os/result.hpp"

#include <cstddef>
#include <span>

namespace member_thunk::detail
{
	/// What sealing a page did. `sealed`: the page ended in its sealed state (its thunks may be called). On failure,
	/// `failure` is the OS call that failed and `doing` what the library was doing; the page was put back to its
	/// writable state if the OS allowed it (then `sealed` is false).
	struct [[nodiscard]] seal_outcome
	{
		bool sealed = false;
		os::result failure = os::result::success();
		const char* doing = nullptr;

		[[nodiscard]] bool ok() const noexcept { return failure.ok(); }
	};

	/// The protection steps of one kind of page, as static functions (one table per kind and OS back end).
	struct page_kind
	{
		/// Bytes per slot: the place of one thunk's code (run-time code) in a page.
		std::size_t slot_size;
		/// Fills a writable page with traps, so that nothing in it can run.
		void (*fill_traps)(std::byte* page, std::size_t page_size) noexcept;
		/// Makes a page's first `thunks` slots callable, the rest of it traps.
		seal_outcome (*seal)(std::byte* page, std::size_t page_size, std::size_t thunks) noexcept;
		/// Revokes a page whose first `sealed_thunks` slots were callable (0 if it was never sealed): nothing in it is
		/// callable afterwards. Returns whether the page is still committed (read-write, trap-filled) or was
		/// decommitted instead; if neither could be done, ends the process.
		bool (*revoke)(std::byte* page, std::size_t page_size, std::size_t sealed_thunks) noexcept;
	};

	/// Pages of run-time code: thunks are machine code written into the page by the native encoder.
	template<os::backend Os>
	struct runtime_code_pages
	{
		using encoder = arch::native_encoder;

		static void fill_traps(std::byte* page, std::size_t page_size) noexcept
		{
			encoder::fill_traps(std::span<std::byte>(page, page_size));
		}

		/// Read-execute, instruction cache flushed, thunk entries registered as call targets. No thunk may be called
		/// before this returns, so on a failure after the page became executable it can go back to read-write.
		static seal_outcome seal(std::byte* page, std::size_t page_size, std::size_t thunks) noexcept
		{
			seal_outcome outcome;
			outcome.failure = Os::make_executable(page, page_size);
			if (!outcome.ok())
			{
				outcome.doing = "make a page executable";
				return outcome;
			}
			outcome.sealed = true;
			outcome.failure = Os::flush_instruction_cache(page, page_size);
			outcome.doing = "flush the instruction cache for a page";
			if (outcome.ok())
			{
				outcome.failure = Os::set_call_targets(page, page_size, thunks, encoder::slot_size, true);
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

		/// Call targets withdrawn, then read-write and trap-filled (a stale call faults at once); if the OS refuses
		/// that, decommitted; if it refuses both, nothing safe remains and the process ends.
		static bool revoke(std::byte* page, std::size_t page_size, std::size_t sealed_thunks) noexcept
		{
			// A failure to withdraw CFG targets leaves them valid on an address that is no longer executable:
			// weaker, not unsafe, and a destructor has nobody to tell.
			if (sealed_thunks != 0)
				static_cast<void>(Os::set_call_targets(page, page_size, sealed_thunks, encoder::slot_size, false));
			if (Os::make_writable(page, page_size).ok())
			{
				fill_traps(page, page_size);
				return true;
			}
			if (Os::decommit(page, page_size).ok())
				return false;
			fail_fast("a freed page could not be revoked: the OS refused both to make it non-executable and to "
			          "decommit it, so its thunks would stay callable");
		}

		static constexpr page_kind kind{encoder::slot_size, &fill_traps, &seal, &revoke};
	};
} // namespace member_thunk::detail
