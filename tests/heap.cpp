// Tests of user heaps (built without the default heap): regions come and go as /proc/self/maps shows, pages are
// reused, invariants hold, statistics add up, and a locked heap serves several threads. Built twice: with run-time
// code and with prebuilt stubs (MEMBER_THUNK_NO_RUNTIME_CODE); placement near the code and the jump forms it leads to
// are run-time code only.
#include <member_thunk/member_thunk.hpp>

#include "support/backend.hpp"
#include "support/far_os.hpp"
#include "support/maps.hpp"
#include "support/revoked.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>
#include <vector>

namespace
{
	using callback = long (*)(void*, long);

	struct counter
	{
		long id;
		long value(long x) { return id * 10 + x; }
	};
} // namespace

TEMPLATE_TEST_CASE("heap::allocates, seals and frees with any lock", "[heap]", member_thunk::null_lock,
                   member_thunk::slim_lock, std::mutex, std::recursive_mutex)
{
	member_thunk::heap<TestType> h;
	CHECK(h.is_valid());
	counter c{4};
	{
		member_thunk::page p = h.allocate_page();
		const auto t = p.template make_thunk<callback, &counter::value>(&c);
		p.mark_executable();
		CHECK(t(nullptr, 2) == 42);
		CHECK(h.is_valid());
		CHECK(h.statistics().live_pages == 1);
	}
	CHECK(h.statistics().live_pages == 0);
	CHECK(h.is_valid());
}

TEST_CASE("heap::the default Lock is null_lock when the default heap is disabled", "[heap]")
{
	STATIC_REQUIRE(std::is_same_v<member_thunk::heap<>, member_thunk::heap<member_thunk::null_lock>>);
}

TEST_CASE("heap::compact releases the regions that hold no live page", "[heap][maps]")
{
	member_thunk::heap<> h;
	counter c{1};
	std::vector<member_thunk::page> pages;
	std::vector<callback> thunks;
	std::vector<const void*> slots; // where each thunk's page is: its code, or its data slot (prebuilt)
	// Enough pages for several regions.
	for (int i = 0; i < 40; ++i)
	{
		pages.push_back(h.allocate_page());
		thunks.push_back(pages.back().make_thunk<callback, &counter::value>(&c));
		slots.push_back(test::slot_of(pages.back(), thunks.back()));
		pages.back().mark_executable();
	}
	const auto stats = h.statistics();
	CHECK(stats.live_pages == 40);
	CHECK(stats.regions >= 2);
	CHECK(stats.runtime_code == !test::prebuilt_build);
	CHECK(stats.prebuilt_regions == (test::prebuilt_build ? stats.regions : 0));
	CHECK(stats.committed_bytes == 40 * test::system_page_size());
	CHECK(h.is_valid());
	for (const auto t : thunks)
		REQUIRE(t(nullptr, 1) == 11);

	pages.clear(); // frees the pages in the order they were made
	// Freed pages stay reserved until compact(): the last MEMBER_THUNK_PAGE_CACHE freed are kept read-write and
	// trap-filled in the reuse queue, the older ones were decommitted as newer ones came in.
	const std::size_t page_size = test::system_page_size();
	CHECK(h.statistics().live_pages == 0);
	CHECK(h.statistics().cached_pages == MEMBER_THUNK_PAGE_CACHE);
	CHECK(h.statistics().committed_bytes == MEMBER_THUNK_PAGE_CACHE * page_size);
	const auto freed = test::read_maps();
	for (std::size_t i = 0; i < slots.size(); ++i)
		CHECK(test::revocation_in(freed, slots[i]) ==
		      (i >= slots.size() - MEMBER_THUNK_PAGE_CACHE ? "cached" : "decommitted"));
	h.compact();
	const auto maps = test::read_maps();
	CHECK(h.statistics().regions == 0);
	CHECK(h.statistics().reserved_bytes == 0);
	for (std::size_t i = 0; i < slots.size(); ++i)
	{
		// The image pool (Windows without run-time code) is the program's own memory: its pages stay, emptied.
		if (test::prebuilt_build && member_thunk::detail::stubs::pool_data() <= slots[i] &&
		    slots[i] < member_thunk::detail::stubs::pool_data() + member_thunk::detail::stubs::pool_size)
			REQUIRE(test::is_revoked(slots[i])); // emptied, or inaccessible
		else
		{
			REQUIRE_FALSE(test::is_mapped(maps, slots[i]));
			REQUIRE_FALSE(test::is_mapped(maps, reinterpret_cast<const void*>(thunks[i])));
		}
	}
	CHECK(h.is_valid());
}

TEST_CASE("heap::compact keeps regions that still hold a live page", "[heap][maps]")
{
	member_thunk::heap<> h;
	counter c{2};
	std::optional<member_thunk::page> keep(h.allocate_page());
	const auto t = keep->make_thunk<callback, &counter::value>(&c);
	keep->mark_executable();
	{
		std::vector<member_thunk::page> more;
		for (int i = 0; i < 20; ++i)
			more.push_back(h.allocate_page());
	}
	const auto before = h.statistics().regions;
	h.compact();
	CHECK(h.statistics().regions == 1);
	CHECK(before >= 2);
	CHECK(t(nullptr, 3) == 23);
	CHECK(test::protection_of(test::slot_of(*keep, t)) == test::sealed_protection(keep->prebuilt()));
	CHECK(test::protection_of(reinterpret_cast<const void*>(t)) == "r-x");
	keep.reset();
	h.compact();
	CHECK(h.statistics().regions == 0);
}

TEST_CASE("heap::a freed page is handed out again only after MEMBER_THUNK_PAGE_CACHE - 1 others were freed after it",
          "[heap][cache]")
{
	static_assert(MEMBER_THUNK_PAGE_CACHE >= 2, "the test needs a queue");
	member_thunk::heap<> h;
	counter a{1};
	counter b{2};
	std::uintptr_t first_address = 0;
	const void* first_slot = nullptr;
	{
		member_thunk::page p = h.allocate_page();
		const auto first = p.make_thunk<callback, &counter::value>(&a);
		first_address = reinterpret_cast<std::uintptr_t>(first);
		first_slot = test::slot_of(p, first);
		p.mark_executable();
	}
	// A dangling pointer to the freed page's thunk must keep faulting while other pages come and go: the page is not
	// handed out while it is one of the MEMBER_THUNK_PAGE_CACHE most recently freed (first in, first out).
	std::vector<std::uintptr_t> seen;
	for (std::size_t i = 0; i + 1 < MEMBER_THUNK_PAGE_CACHE; ++i)
	{
		member_thunk::page other = h.allocate_page();
		seen.push_back(reinterpret_cast<std::uintptr_t>(other.make_thunk<callback, &counter::value>(&b)));
		CHECK(test::revocation_of(first_slot) == "cached");
	}
	CHECK(std::find(seen.begin(), seen.end(), first_address) == seen.end());
	CHECK(h.statistics().cached_pages == MEMBER_THUNK_PAGE_CACHE);
	// Now the queue is full and the first page is its oldest: it is the next one handed out.
	member_thunk::page q = h.allocate_page();
	const auto t = q.make_thunk<callback, &counter::value>(&b);
	CHECK(reinterpret_cast<std::uintptr_t>(t) == first_address);
	// The reused page is fresh: read-write, trap-filled past the new thunk, and runs the new target.
	const auto* const slot = static_cast<const std::byte*>(test::slot_of(q, t));
	CHECK(test::protection_of(slot) == "rw-");
	if (q.prebuilt())
		CHECK(test::slot_traps(slot + q.slot_size()));
	else
	{
		std::array<std::byte, member_thunk::detail::arch::native_encoder::slot_size> traps{};
		member_thunk::detail::arch::native_encoder::fill_traps(traps);
		CHECK(std::memcmp(slot + traps.size(), traps.data(), traps.size()) == 0);
	}
	q.mark_executable();
	CHECK(t(nullptr, 5) == 25);
	CHECK(h.is_valid());
}

TEST_CASE("heap::no mapping is ever writable and executable", "[heap][wx]")
{
	member_thunk::heap<> h;
	counter c{3};
	std::vector<member_thunk::page> pages;
	for (int i = 0; i < 20; ++i)
	{
		pages.push_back(h.allocate_page());
		static_cast<void>(pages.back().make_thunk<callback, &counter::value>(&c));
		if (i % 2 == 0)
			pages.back().mark_executable();
		REQUIRE(test::writable_executable_mappings().empty());
	}
	pages.erase(pages.begin(), pages.begin() + 7);
	CHECK(test::writable_executable_mappings().empty());
	pages.clear();
	h.compact();
	CHECK(test::writable_executable_mappings().empty());
}

TEST_CASE("heap::a locked heap serves several threads, and thunks run on any thread",
          "[heap][threads][slow_under_emulation]")
{
	member_thunk::heap<member_thunk::slim_lock> h;
	constexpr int threads = 4;
	constexpr int rounds = 300;
	std::atomic<int> failures{0};
	// One shared executable page whose thunks every thread calls while the heap churns.
	counter shared{9};
	member_thunk::page shared_page = h.allocate_page();
	const auto shared_thunk = shared_page.make_thunk<callback, &counter::value>(&shared);
	shared_page.mark_executable();

	std::vector<std::thread> workers;
	for (int t = 0; t < threads; ++t)
		workers.emplace_back([&, t] {
			counter mine{t};
			std::vector<member_thunk::page> held;
			for (int i = 0; i < rounds; ++i)
			{
				held.push_back(h.allocate_page());
				const auto thunk = held.back().make_thunk<callback, &counter::value>(&mine);
				held.back().mark_executable();
				if (thunk(nullptr, i) != t * 10 + i || shared_thunk(nullptr, i) != 90 + i)
					++failures;
				// At most 48 held per thread: without run-time code on Windows every page comes from the image pool.
				if (i % 3 == 0 || held.size() > 48)
					held.erase(held.begin());
				if (i % 50 == 0)
					h.compact();
			}
		});
	for (auto& w : workers)
		w.join();
	CHECK(failures == 0);
	CHECK(h.is_valid());
	CHECK(h.statistics().live_pages == 1);
}

// Placement near the code and the jump forms it leads to: run-time code only (prebuilt regions are placed anywhere,
// and their stubs always jump indirectly).
#if !defined(MEMBER_THUNK_NO_RUNTIME_CODE)
using test::far_os;

namespace
{
	/// Makes a compile-time and a run-time member thunk on a page of a fresh heap over far_os, seals it, lets
	/// `check` inspect the heap and the thunks' code, then checks that both run and that nothing stays reserved.
	template<class Check>
	void check_thunks_over_far_os(Check check)
	{
		far_os::reset();
		{
			member_thunk::heap<member_thunk::null_lock, far_os> h;
			counter c{5};
			member_thunk::page p = h.allocate_page();
			const auto compile_time = p.make_thunk<callback, &counter::value>(&c);
			const auto run_time = p.make_thunk<callback>(&c, &counter::value);
			p.mark_executable();
			check(h.statistics(), std::array{compile_time, run_time});
			CHECK(compile_time(nullptr, 1) == 51);
			CHECK(run_time(nullptr, 2) == 52);
		}
		CHECK(far_os::released == far_os::reserved); // the heap's destructor released the region it kept
	}
} // namespace

#if defined(MEMBER_THUNK_ARCH_X86_32)
TEST_CASE("heap::on i386 every region is within reach: no placement hint, and every thunk jumps directly",
          "[heap][direct]")
{
	check_thunks_over_far_os([](const member_thunk::heap_statistics& statistics, const auto& thunks) {
		// A jmp rel32 wraps around the 32-bit address space: the heap lets the OS place the region.
		CHECK(far_os::wishes == std::vector<std::uintptr_t>{0});
		CHECK(far_os::reserved == 1);
		CHECK(far_os::released == 0);
		CHECK(statistics.regions == 1);
		for (const auto thunk : thunks)
			CHECK(reinterpret_cast<const std::byte*>(thunk)[12] == std::byte{0xE9});
	});
}
#else
TEST_CASE("heap::a region out of reach of the code gets absolute jumps, and nothing is leaked looking for a near one",
          "[heap][direct]")
{
	check_thunks_over_far_os([](const member_thunk::heap_statistics& statistics, const auto& thunks) {
		// Every hint aimed below the code, each reservation was too far, and all but the last were given back.
		REQUIRE(far_os::wishes.size() >= 2);
		for (const auto wish : far_os::wishes)
			CHECK(wish != 0);
		CHECK(far_os::reserved == far_os::wishes.size());
		CHECK(far_os::released == far_os::reserved - 1);
		CHECK(statistics.regions == 1);
		for (const auto thunk : thunks)
		{
			const auto* const code = reinterpret_cast<const std::byte*>(thunk);
#if defined(MEMBER_THUNK_ARCH_X86_64)
			CHECK(code[14] == std::byte{0x49}); // movabs r11, target; jmp r11
			CHECK(code[24] == std::byte{0x41});
#elif defined(MEMBER_THUNK_ARCH_AARCH64)
			CHECK(code[8] == std::byte{0x90}); // ldr x16, literal; br x16
#endif
		}
	});
}
#endif
#endif
