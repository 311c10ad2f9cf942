// Test support: whether a freed page is revoked, i.e. no thunk on it can run any more.
//
// A freed page is either decommitted (inaccessible, "---") or kept for reuse by the heap's page cache: read-write
// (never executable) and filled with traps (run-time code), or with every data slot pointing at the trap (prebuilt
// stubs). Either way a stale call faults or traps. For prebuilt stubs, pass the address of a data slot
// (backend.hpp, slot_of): the stubs themselves never change. A destroyed unique thunk's data slot points at the trap
// likewise.
#pragma once

#include "backend.hpp"
#include "maps.hpp"

#include <member_thunk/detail/arch/encoder.hpp>
#include <member_thunk/detail/arch/stub_tables.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace test
{
	/// Whether the whole page at `page_address` (page-aligned, readable) holds nothing but trap instructions.
	[[nodiscard]] inline bool page_holds_traps(const void* page_address)
	{
		const auto size = test::system_page_size();
		std::vector<std::byte> traps(size);
		member_thunk::detail::arch::native_encoder::fill_traps(traps);
		const auto* const bytes = static_cast<const std::byte*>(page_address);
		for (std::size_t i = 0; i < size; ++i)
			if (bytes[i] != traps[i])
				return false;
		return true;
	}

	/// The start of the page that holds `address`.
	[[nodiscard]] inline const void* page_of(const void* address)
	{
		const auto size = static_cast<std::uintptr_t>(test::system_page_size());
		const auto a = reinterpret_cast<std::uintptr_t>(address);
		return reinterpret_cast<const void*>(a - a % size);
	}

	/// How a freed page was revoked in the snapshot `maps`: "decommitted", "cached" (read-write, all traps or all
	/// slots emptied), or a description of why it is not revoked.
	[[nodiscard]] inline std::string revocation_in(const std::vector<mapping>& maps, const void* address)
	{
		const std::string protection = protection_in(maps, address);
		if (protection == "---")
			return "decommitted";
		if (protection == "rw-")
			return page_holds_traps(page_of(address)) || page_holds_empty_slots(page_of(address))
			           ? "cached"
			           : "read-write but not all traps";
		return "still " + protection;
	}

	[[nodiscard]] inline std::string revocation_of(const void* address)
	{
		return revocation_in(read_maps(), address);
	}

	/// The target word of the data slot of prebuilt stubs at `slot` {bound, target}.
	[[nodiscard]] inline std::uintptr_t slot_target(const std::byte* slot) noexcept
	{
		return *reinterpret_cast<const volatile std::uintptr_t*>(slot + sizeof(std::uintptr_t));
	}

	/// How a freed data page of prebuilt stubs (of `page_size` bytes) was revoked in the snapshot `maps`:
	/// "decommitted", "cached" (read-write, every slot emptied: its target the trap, and no bound pointer outside the
	/// chunk headers), or a description of why it is not revoked.
	[[nodiscard]] inline std::string prebuilt_revocation_in(const std::vector<mapping>& maps, const void* data_page,
	                                                        std::size_t page_size = test::system_page_size())
	{
		namespace stubs = member_thunk::detail::arch::stubs;
		const std::string protection = protection_in(maps, data_page);
		if (protection == "---")
			return "decommitted";
		if (protection != "rw-")
			return "still " + protection;
		const auto* const page = static_cast<const std::byte*>(data_page);
		for (std::size_t at = 0; at < page_size; at += stubs::slot_size)
		{
			const std::byte* const slot = page + at;
			if (slot_target(slot) != stubs::trap_target())
				return "read-write, but the slot at +" + std::to_string(at) + " does not point at the trap";
			const bool header = at % stubs::chunk_size < stubs::header_slots * stubs::slot_size;
			if (!header && *reinterpret_cast<const volatile std::uintptr_t*>(slot) != 0)
				return "read-write, but the slot at +" + std::to_string(at) + " still holds a bound pointer";
		}
		return "cached";
	}

	/// Whether no stub of the data page of prebuilt stubs at `data_page` (of `page_size` bytes) can call anything but
	/// the trap, in the snapshot `maps`: it is inaccessible, or every slot's target is the trap (free slots of a slab
	/// page included, whose first word links the free list).
	[[nodiscard]] inline bool prebuilt_page_traps_in(const std::vector<mapping>& maps, const void* data_page,
	                                                 std::size_t page_size = test::system_page_size())
	{
		namespace stubs = member_thunk::detail::arch::stubs;
		const std::string protection = protection_in(maps, data_page);
		if (protection == "---" || protection == "unmapped")
			return true;
		const auto* const page = static_cast<const std::byte*>(data_page);
		for (std::size_t at = 0; at < page_size; at += stubs::slot_size)
			if (slot_target(page + at) != stubs::trap_target())
				return false;
		return true;
	}

	/// How a destroyed unique thunk's data slot was revoked in the snapshot `maps`: "trap" (its target is the trap),
	/// "decommitted" (its page), "unmapped" (its region given back), or a description of why it is not revoked.
	[[nodiscard]] inline std::string slot_revocation_in(const std::vector<mapping>& maps, const std::byte* slot)
	{
		const std::string protection = protection_in(maps, slot);
		if (protection == "---" || protection == "unmapped")
			return protection == "---" ? "decommitted" : "unmapped";
		if (protection != "rw-" && protection != "r--")
			return "in a page that is " + protection;
		return slot_target(slot) == member_thunk::detail::arch::stubs::trap_target() ? "trap"
		                                                                             : "not pointing at the trap";
	}

	/// Whether no thunk on the page of `address` can run: decommitted, or cached (read-write, all traps).
	[[nodiscard]] inline bool is_revoked(const void* address)
	{
		const std::string how = revocation_of(address);
		return how == "decommitted" || how == "cached";
	}
} // namespace test
