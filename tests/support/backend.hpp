// Test support: what differs between the two back ends of a page (run-time code, prebuilt stubs), so that one suite
// asserts the right thing on each. A suite built twice (member_thunk_add_test(... PREBUILT)) is prebuilt in its
// `_prebuilt` executable, where MEMBER_THUNK_NO_RUNTIME_CODE is defined.
//
// Where a thunk's behaviour lives: on a page of run-time code, in its own code (the thunk's address is in the page);
// on a page of prebuilt stubs, in its data slot {bound, target} (the thunk's address is a stub in a read-execute table
// that never changes; the slot is at `thunk - region.thunk_stubs`). Protection and revocation are checked there.
#pragma once

#include "child.hpp"
#include "maps.hpp"

#include <member_thunk/member_thunk.hpp>

#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

namespace test
{
#if defined(MEMBER_THUNK_NO_RUNTIME_CODE)
	inline constexpr bool prebuilt_build = true;
#else
	inline constexpr bool prebuilt_build = false;
#endif

	/// The signal a call through a thunk of a destroyed page ends with: a page of run-time code is read-write and
	/// trap-filled (not executable: SIGSEGV); a page of prebuilt stubs has every slot pointing at the trap (int3, brk:
	/// SIGTRAP, or Windows' EXCEPTION_BREAKPOINT, see child.hpp).
	[[nodiscard]] constexpr int stale_call_signal(bool prebuilt) noexcept
	{
		return prebuilt ? sigtrap : SIGSEGV;
	}

	/// The protection of a sealed page: read-execute code, or read-only data slots.
	[[nodiscard]] inline std::string sealed_protection(bool prebuilt)
	{
		return prebuilt ? "r--" : "r-x";
	}

	/// The address of what decides where `thunk` goes: the thunk itself (run-time code) or its data slot (prebuilt).
	template<class Callback>
	[[nodiscard]] const void* slot_of(const member_thunk::page& p, Callback thunk)
	{
		const auto address = reinterpret_cast<std::uintptr_t>(thunk);
		if (!p.prebuilt())
			return reinterpret_cast<const void*>(address);
		const member_thunk::detail::region& r = *member_thunk::detail::page_access::region_of(p);
		return reinterpret_cast<const void*>(address - static_cast<std::uintptr_t>(r.thunk_stubs));
	}

	/// The data slot of a unique thunk.
	template<class Callback>
	[[nodiscard]] const std::byte* slot_of(const member_thunk::unique_thunk<Callback>& t)
	{
		return member_thunk::detail::unique_thunk_access::slot_of(t);
	}

	/// The words of a data slot, as its stub reads them.
	[[nodiscard]] inline member_thunk::detail::stub_slot read_slot(const void* slot)
	{
		return *static_cast<const member_thunk::detail::stub_slot*>(slot);
	}

	/// Whether a data slot is empty: its stub jumps to the trap.
	[[nodiscard]] inline bool slot_traps(const void* slot)
	{
		return read_slot(slot).target == member_thunk::detail::stubs::trap_target();
	}

	/// Whether the page of prebuilt data slots at `page_address` (page-aligned, readable) is emptied: every slot
	/// points at the trap with a null bound, but the first slot of each 4 KiB chunk, whose first word names the region.
	[[nodiscard]] inline bool page_holds_empty_slots(const void* page_address)
	{
		namespace stubs = member_thunk::detail::stubs;
		const auto* const bytes = static_cast<const std::byte*>(page_address);
		for (std::size_t at = 0; at < system_page_size(); at += stubs::slot_size)
		{
			const auto slot = read_slot(bytes + at);
			if (slot.target != stubs::trap_target() || (at % stubs::chunk_size != 0 && slot.bound != 0))
				return false;
		}
		return true;
	}

	/// Whether writing to `address` faults (the memory is read-only or inaccessible), tried in a child process.
	[[nodiscard]] inline bool write_faults(const void* address)
	{
		const auto result = run_in_child([address] {
			*static_cast<volatile unsigned char*>(const_cast<void*>(address)) = 0;
			std::_Exit(0);
		});
		return result.signaled && result.signal == SIGSEGV;
	}

	/// Pages per region of the heap that holds `p`.
	[[nodiscard]] inline std::size_t pages_per_region(const member_thunk::page& p)
	{
		return member_thunk::detail::page_access::region_of(p)->page_count;
	}

	/// Resets the process-wide choice of the way prebuilt stubs are mapped, at the start and the end of a scope.
	struct stub_sources_scope
	{
		stub_sources_scope() { member_thunk::detail::stub_sources::reset(); }
		stub_sources_scope(const stub_sources_scope&) = delete;
		stub_sources_scope& operator=(const stub_sources_scope&) = delete;
		stub_sources_scope(stub_sources_scope&&) = delete;
		stub_sources_scope& operator=(stub_sources_scope&&) = delete;
		~stub_sources_scope() { member_thunk::detail::stub_sources::reset(); }
	};
} // namespace test
