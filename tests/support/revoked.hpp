// Test support: whether a freed page is revoked, i.e. no thunk on it can run any more.
//
// A freed page is either decommitted (inaccessible, "---") or kept for reuse by the heap's page cache: read-write
// (never executable) and filled with traps (run-time code), or with every data slot pointing at the trap (prebuilt
// stubs). Either way a stale call faults or traps. For prebuilt stubs, pass the address of a data slot
// (backend.hpp, slot_of): the stubs themselves never change.
#pragma once

#include "backend.hpp"
#include "maps.hpp"

#include <member_thunk/detail/arch/encoder.hpp>

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

	/// Whether no thunk on the page of `address` can run: decommitted, or cached (read-write, all traps).
	[[nodiscard]] inline bool is_revoked(const void* address)
	{
		const std::string how = revocation_of(address);
		return how == "decommitted" || how == "cached";
	}
} // namespace test
