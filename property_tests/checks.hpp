// Property tests: what must hold of a live page, a freed page, a live or destroyed unique thunk and a heap's
// statistics, and what making a thunk or closure on a page must do, as failures described in words (nullopt when it
// holds). The threads of the concurrent property cannot use RapidCheck's assertions, so every property states its
// checks this way and fails the case with the description.
#pragma once

#include "family.hpp"
#include "model.hpp"
#include "unique.hpp"

#include "support/maps.hpp"
#include "support/revoked.hpp"

#include <member_thunk/detail/arch/encoder.hpp>
#include <member_thunk/detail/arch/stub_tables.hpp>
#include <member_thunk/detail/config.hpp>
#include <member_thunk/detail/os/native.hpp>
#include <member_thunk/detail/prebuilt_regions.hpp>
#include <member_thunk/detail/slot_queue.hpp>
#include <member_thunk/heap_statistics.hpp>
#include <member_thunk/page.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

namespace prop
{
	using failure = std::optional<std::string>;

	/// A broken clause of a heap's invariants, or nothing.
	[[nodiscard]] inline failure violation(const member_thunk::detail::invariant_violation& v)
	{
		if (!v)
			return std::nullopt;
		return std::string("the heap's invariants do not hold: ") + v.clause + " (" + v.file + ":" +
		       std::to_string(v.line) + ")";
	}

	/// The protection the first page of a live page has: read-write until sealed; then read-execute (run-time code)
	/// or read-only (prebuilt stubs' data).
	[[nodiscard]] inline const char* protection_of(const page_model& m) noexcept
	{
		if (!m.executable)
			return "rw-";
		return m.kind == page_kind::prebuilt ? "r--" : "r-x";
	}

	/// Whether the free slots of a page, at positions [first, end), hold no thunk: traps (run-time code, one
	/// comparison for the whole run), or data slots whose target is the trap (prebuilt stubs).
	[[nodiscard]] inline std::optional<std::size_t> first_untrapped(const std::byte* page, const page_layout& layout,
	                                                                page_kind kind, std::size_t first, std::size_t end)
	{
		if (kind == page_kind::prebuilt)
		{
			const std::uintptr_t trap = member_thunk::detail::arch::stubs::trap_target();
			for (std::size_t position = first; position < end; ++position)
				if (test::slot_target(page + layout.slot_of(position) * layout.slot_size) != trap)
					return position;
			return std::nullopt;
		}
		using encoder = member_thunk::detail::arch::native_encoder;
		static const std::vector<std::byte> traps = [] {
			std::vector<std::byte> bytes(page_size());
			encoder::fill_traps(bytes);
			return bytes;
		}();
		const std::size_t offset = first * layout.slot_size;
		if (end > first && std::memcmp(page + offset, traps.data() + offset, (end - first) * layout.slot_size) != 0)
			return first;
		return std::nullopt;
	}

	/// A live page: its observers agree with the model, its thunks and closures are where the model puts them, its
	/// free positions hold traps, and it has the protection of its state (in the snapshot `maps`).
	[[nodiscard]] inline failure check_page(const std::vector<test::mapping>& maps, const member_thunk::page& p,
	                                        const page_model& m, const std::vector<std::uintptr_t>& thunks)
	{
		const page_layout layout = layout_of(m.kind);
		const auto kind = p.prebuilt() ? page_kind::prebuilt : page_kind::runtime_code;
		if (kind != m.kind)
			return std::string("a page of ") + name(kind) + " where the model has one of " + name(m.kind);
		if (p.slot_size() != layout.slot_size || p.capacity() != layout.capacity)
			return "a page of " + std::to_string(p.capacity()) + " slots of " + std::to_string(p.slot_size()) +
			       " bytes, the model says " + std::to_string(layout.capacity) + " of " +
			       std::to_string(layout.slot_size);
		if (thunks.size() != m.thunks.size())
			return "a page has " + std::to_string(thunks.size()) + " thunks and closures, the model " +
			       std::to_string(m.thunks.size());
		// size() counts the positions taken from the start, the slots of the entries: a closure whose code takes two
		// slots counts twice (page.hpp's size() says "the number of thunks", which holds while no closure takes two).
		if (p.size() != m.front)
			return "a page's size() is " + std::to_string(p.size()) + ", the model has " + std::to_string(m.front) +
			       " positions taken from the start by " + std::to_string(m.thunks.size()) + " thunks and closures";
		if (p.free_slots() != layout.capacity - m.used() || p.full() != (m.used() == layout.capacity))
			return "a page has " + std::to_string(p.free_slots()) + " free slots, the model says " +
			       std::to_string(layout.capacity - m.used());
		if (p.executable() != m.executable)
			return std::string("a page is ") + (p.executable() ? "" : "not ") + "executable, the model says otherwise";

		const std::byte* const page = member_thunk::detail::page_access::address_of(p);
		const auto address = reinterpret_cast<std::uintptr_t>(page);
		if (address % page_size() != 0)
			return std::string("a page that does not start a page");
		if (const auto protection = test::protection_in(maps, page); protection != protection_of(m))
			return "a page is " + protection + " where the model says " + protection_of(m);
		const member_thunk::detail::region* const region = member_thunk::detail::page_access::region_of(p);
		for (std::size_t k = 0; k < thunks.size(); ++k)
		{
			const thunk_model& t = m.thunks[k];
			const auto which = [&] { return std::string(kind_name(t.signature)) + " " + std::to_string(k); };
			// Prebuilt stubs: a thunk's entry is its data slot's thunk stub, a closure's its closure stub.
			const std::ptrdiff_t stubs = m.kind == page_kind::runtime_code ? 0
			                             : is_closure(t.signature)         ? region->closure_stubs
			                                                               : region->thunk_stubs;
			const std::size_t offset = layout.slot_of(t.position) * layout.slot_size;
			if (thunks[k] != address + offset + static_cast<std::uintptr_t>(stubs))
				return which() + " of a page is not at its slot (position " + std::to_string(t.position) + ")";
			if (m.kind == page_kind::prebuilt &&
			    test::slot_target(page + offset) == member_thunk::detail::arch::stubs::trap_target())
				return which() + " of a page of prebuilt stubs points at the trap";
		}
		if (!thunks.empty() && m.kind == page_kind::prebuilt)
			if (const auto protection = test::protection_in(maps, reinterpret_cast<const void*>(thunks.front()));
			    protection != "r-x")
				return "the stubs of a page of prebuilt stubs are " + protection;
		if (const auto position = first_untrapped(page, layout, m.kind, m.front, layout.capacity - m.back))
			return "the free position " + std::to_string(*position) + " of a page (or one after it) holds no trap";
		return std::nullopt;
	}

	/// What one attempt to make a thunk or closure on a page did.
	struct attempt
	{
		failure problem;                       // what the page did that the model does not allow
		std::optional<std::uintptr_t> address; // the entry, if it was made
		std::size_t code = 0;                  // if it was made: the positions its code took, as the page reported
	};

	/// Makes a thunk or closure of `signature` and form `how` on `p` (bound to a new object `id` kept in `objects`) and
	/// checks what happened against the model `m`: made, page_full or page_executable where the model says. If it was
	/// made, `m` records it with the positions its code took as the page reports them (free_slots() before and after,
	/// less the block the model places): one, or for a closure of run-time code one or two, as the library decides;
	/// at the boundary where only one would fit (made_or_page_full), one or page_full.
	[[nodiscard]] inline attempt make_on_page(member_thunk::page& p, page_model& m, std::size_t signature, form how,
	                                          long id, object_store& objects)
	{
		const outcome expected = predict(m, signature, how);
		const std::size_t position = m.front;
		const auto what = [&] {
			return std::string(kind_name(signature)) + " " + signature_names.at(signature) + " " + name(how) +
			       " at position " + std::to_string(position);
		};
		attempt result;
		try
		{
			const std::uintptr_t address = make_thunk(p, signature, how, id, objects);
			result.address = address;
			if (expected != outcome::made && expected != outcome::made_or_page_full)
			{
				result.problem = "a " + what() + " was made where the model expected " + name(expected);
				return result;
			}
			const std::size_t capacity = layout_of(m.kind).capacity;
			const std::size_t after = p.free_slots();
			const code_positions allowed = code_of(m.kind, signature);
			for (std::size_t code = allowed.least; code <= allowed.most; ++code)
				if (const auto back = back_after(m, how, code); back && capacity - (m.front + code) - *back == after)
				{
					add_thunk(m, signature, how, id, code);
					result.code = code;
					// Its code ends within the slots the page counts: the next free position still holds a trap.
					if (m.used() < capacity && first_untrapped(member_thunk::detail::page_access::address_of(p),
					                                           layout_of(m.kind), m.kind, m.front, m.front + 1))
						result.problem = "the code of a " + what() + " runs past the " + std::to_string(code) +
						                 " slots the page counts for it";
					return result;
				}
			result.problem = "a " + what() + " took " + std::to_string(capacity - m.used() - after) +
			                 " slots (free_slots() " + std::to_string(after) + ", was " +
			                 std::to_string(capacity - m.used()) + "): the model allows code of " +
			                 std::to_string(allowed.least) + " to " + std::to_string(allowed.most) +
			                 " slots and its block";
		}
		catch (const member_thunk::page_full&)
		{
			if (expected != outcome::page_full && expected != outcome::made_or_page_full)
				result.problem = "a " + what() + " threw page_full where the model expected " + name(expected);
		}
		catch (const member_thunk::page_executable&)
		{
			if (expected != outcome::page_executable)
				result.problem = "a " + what() + " threw page_executable where the model expected " + name(expected);
		}
		return result;
	}

	/// How a freed page of kind `kind` whose first byte was `page` was revoked in the snapshot `maps`: "decommitted",
	/// "cached", or why it is not revoked.
	[[nodiscard]] inline std::string revocation_in(const std::vector<test::mapping>& maps, page_kind kind,
	                                               const std::byte* page)
	{
		return kind == page_kind::prebuilt ? test::prebuilt_revocation_in(maps, page, page_size())
		                                   : test::revocation_in(maps, page);
	}

	/// A page freed just now is revoked: no thunk on it can run.
	[[nodiscard]] inline failure check_revoked(const std::vector<test::mapping>& maps, page_kind kind,
	                                           const std::byte* page)
	{
		const std::string how = revocation_in(maps, kind, page);
		if (how == "decommitted" || how == "cached")
			return std::nullopt;
		return std::string("a destroyed page of ") + name(kind) + " is " + how;
	}

	/// A live unique thunk or closure: where it was made (the thunk stub or the closure stub of its data slot), its
	/// stub read-execute, its data slot writable and pointing at its target, not the trap.
	[[nodiscard]] inline failure check_unique(const std::vector<test::mapping>& maps, const any_unique& u,
	                                          std::uintptr_t address, const std::byte* slot)
	{
		if (!holds_thunk(u) || address_of(u) != address || slot_of(u) != slot)
			return std::string("a unique thunk is empty or moved");
		const member_thunk::detail::region& region = member_thunk::detail::region_of_slot(slot);
		const auto stubs = is_closure(u) ? region.closure_stubs : region.thunk_stubs;
		if (address != reinterpret_cast<std::uintptr_t>(slot + stubs))
			return std::string("a unique ") + kind_name(u.index()) + "'s entry is not its data slot's " +
			       kind_name(u.index()) + " stub";
		if (const auto protection = test::protection_in(maps, reinterpret_cast<const void*>(address));
		    protection != "r-x")
			return "a unique thunk's stub is " + protection;
		if (const auto protection = test::protection_in(maps, slot); protection != "rw-")
			return "a unique thunk's data slot is " + protection;
		if (test::slot_target(slot) == member_thunk::detail::arch::stubs::trap_target())
			return std::string("a live unique thunk's data slot points at the trap");
		return std::nullopt;
	}

	/// The data slot of a unique thunk destroyed just now: it points at the trap, or its page is decommitted, or (if
	/// `may_unreserve`: the orphanage gives a region back with its last page or unique thunk) unmapped.
	[[nodiscard]] inline failure check_revoked_slot(const std::vector<test::mapping>& maps, const std::byte* slot,
	                                                bool may_unreserve = false)
	{
		const std::string how = test::slot_revocation_in(maps, slot);
		if (how == "trap" || how == "decommitted" || (how == "unmapped" && may_unreserve))
			return std::nullopt;
		return "a destroyed unique thunk's data slot is " + how;
	}

	/// A heap's statistics agree with what is alive.
	[[nodiscard]] inline failure check_counts(const member_thunk::heap_statistics& s, std::size_t live_pages,
	                                          std::size_t live_uniques)
	{
		if (s.live_pages != live_pages)
			return "the heap counts " + std::to_string(s.live_pages) + " live pages, the model " +
			       std::to_string(live_pages);
		if (s.live_unique_thunks != live_uniques)
			return "the heap counts " + std::to_string(s.live_unique_thunks) + " live unique thunks, the model " +
			       std::to_string(live_uniques);
		return std::nullopt;
	}

	/// A heap's reservations and memory agree with its regions: a region of run-time code is one OS region, a region
	/// of prebuilt stubs three stub tables (its code, then its data) or one page of the image pool; what is committed
	/// is at least the live pages and the slab, and fits in what is reserved.
	template<class Os>
	[[nodiscard]] failure check_memory(const member_thunk::heap_statistics& s)
	{
		namespace detail = member_thunk::detail;
		const std::size_t page_size = Os::page_size();
		const std::size_t pool_pages = detail::image_pool_regions<Os>::pages_taken();
		if (s.prebuilt_regions > s.regions || pool_pages > s.prebuilt_regions)
			return std::string("more prebuilt regions than regions");
		const std::size_t reserved = (s.regions - s.prebuilt_regions) * Os::region_size() +
		                             (s.prebuilt_regions - pool_pages) * 3 * detail::arch::stubs::table_size +
		                             pool_pages * page_size;
		if (s.reserved_bytes != reserved)
			return "the heap reserved " + std::to_string(s.reserved_bytes) + " bytes, its regions make " +
			       std::to_string(reserved);
		if (s.committed_bytes < (s.live_pages + s.slab_pages) * page_size || s.committed_bytes > s.reserved_bytes)
			return "the heap committed " + std::to_string(s.committed_bytes) + " bytes for " +
			       std::to_string(s.live_pages) + " live and " + std::to_string(s.slab_pages) + " slab pages";
		return std::nullopt;
	}

	/// No mapping of the process is writable and executable.
	[[nodiscard]] inline failure check_wx(const std::vector<test::mapping>& maps)
	{
		if (const auto wx = test::writable_executable_in(maps); !wx.empty())
			return "a mapping is writable and executable: " + test::describe(wx.front());
		return std::nullopt;
	}
} // namespace prop
