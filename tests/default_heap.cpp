// The default heap, built once per MEMBER_THUNK_DEFAULT_HEAP_SAFETY mode (this file is compiled three times).
#include <member_thunk/member_thunk.hpp>

#include "support/child.hpp"
#include "support/maps.hpp"
#include "support/revoked.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <optional>
#include <thread>
#include <type_traits>
#include <vector>

namespace
{
	using callback = long (*)(void*, long);

	struct tagged
	{
		long tag;
		long get(long x) { return tag * 100 + x; }
	};

	constexpr int mode = MEMBER_THUNK_DEFAULT_HEAP_SAFETY;
} // namespace

TEST_CASE("default_heap::the default lock follows the safety mode", "[default_heap]")
{
	using expected = std::conditional_t<mode == 3, member_thunk::slim_lock, member_thunk::null_lock>;
	STATIC_REQUIRE(std::is_same_v<member_thunk::default_lock, expected>);
	STATIC_REQUIRE(std::is_same_v<member_thunk::heap<>, member_thunk::heap<expected>>);
}

TEST_CASE("default_heap::allocate_page and compact", "[default_heap]")
{
	tagged t{3};
	std::uintptr_t address = 0;
	{
		member_thunk::page p = member_thunk::allocate_page();
		const auto thunk = p.make_thunk<callback, &tagged::get>(&t);
		p.mark_executable();
		CHECK(thunk(nullptr, 7) == 307);
		address = reinterpret_cast<std::uintptr_t>(thunk);
		CHECK(test::protection_of(reinterpret_cast<const void*>(address)) == "r-x");
	}
	CHECK(test::revocation_of(reinterpret_cast<const void*>(address)) == "cached");
	member_thunk::compact();
	CHECK(test::protection_of(reinterpret_cast<const void*>(address)) !=
	      "---"); // released (a sanitizer may reuse the range)
	CHECK(member_thunk::detail::default_heap().is_valid());
}

namespace
{
	// Constructed (empty) before the default heap exists, so destroyed after it would be if the default heap were an
	// ordinary static: only a heap that is never destroyed survives this page's destruction at exit.
	std::optional<member_thunk::page> static_page; // NOLINT(cert-err58-cpp)
	tagged static_tagged{1};
} // namespace

TEST_CASE("default_heap::pages may outlive static destruction", "[default_heap][death]")
{
	const auto result = test::run_in_child([] {
		static_page.emplace(member_thunk::allocate_page());
		const auto thunk = static_page->make_thunk<callback, &tagged::get>(&static_tagged);
		static_page->mark_executable();
		std::exit(thunk(nullptr, 1) == 101 ? 0 : 5); // runs static destructors: static_page's last
	});
	CHECK(result.exited);
	CHECK(result.exit_code == 0);
	CHECK(result.error_output.empty());
}

#if MEMBER_THUNK_DEFAULT_HEAP_SAFETY != 1
TEST_CASE("default_heap::concurrent allocate, seal, call and free from several threads",
          "[default_heap][threads][slow_under_emulation]")
{
	constexpr int threads = 4;
	constexpr int rounds = 400;
	std::atomic<int> failures{0};
	std::vector<std::thread> workers;
	for (int w = 0; w < threads; ++w)
		workers.emplace_back([&, w] {
			tagged mine{w};
			std::vector<member_thunk::page> held;
			for (int i = 0; i < rounds; ++i)
			{
				held.push_back(member_thunk::allocate_page());
				const auto thunk = held.back().make_thunk<callback, &tagged::get>(&mine);
				held.back().mark_executable();
				if (thunk(nullptr, i) != w * 100 + i)
					++failures;
				if (i % 2 == 0)
					held.erase(held.begin());
				if (i % 64 == 0)
					member_thunk::compact();
			}
			held.clear();
			member_thunk::compact();
		});
	for (auto& w : workers)
		w.join();
	CHECK(failures == 0);
	CHECK(member_thunk::detail::default_heap().is_valid());
	CHECK(test::writable_executable_mappings().empty());
}
#endif

#if MEMBER_THUNK_DEFAULT_HEAP_SAFETY == 2
TEST_CASE("default_heap::each thread has its own heap", "[default_heap][mode2]")
{
	const auto* const main_heap = &member_thunk::detail::default_heap();
	const void* other_heap = nullptr;
	std::thread([&] { other_heap = &member_thunk::detail::default_heap(); }).join();
	CHECK(other_heap != main_heap);
}

TEST_CASE("default_heap::many short-lived threads: each heap is destroyed at its thread's exit, memory intact",
          "[default_heap][mode2][threads][slow_under_emulation]")
{
	// With MinGW, a thread_local heap's destructor could run after emulated TLS had freed its storage, and write into
	// the freed block while other threads allocated (a crash in one run of the concurrent test in about seven): the
	// heap must not depend on thread_local destructors there. Blocks of the heap's own size are allocated meanwhile,
	// so that a freed heap is reused at once.
	constexpr int rounds = 100;
	constexpr int threads = 4;
	std::atomic<int> failures{0};
	for (int round = 0; round < rounds; ++round)
	{
		std::vector<std::thread> workers;
		for (int w = 0; w < threads; ++w)
			workers.emplace_back([&, w] {
				tagged t{w};
				std::vector<std::unique_ptr<std::byte[]>> blocks;
				for (int i = 0; i < 8; ++i)
					blocks.push_back(std::make_unique<std::byte[]>(sizeof(member_thunk::detail::default_heap_type)));
				member_thunk::page p = member_thunk::allocate_page();
				const auto thunk = p.make_thunk<callback, &tagged::get>(&t);
				p.mark_executable();
				if (thunk(nullptr, round) != w * 100 + round)
					++failures;
			});
		for (auto& worker : workers)
			worker.join();
	}
	CHECK(failures == 0);
	CHECK(member_thunk::detail::orphanage<member_thunk::detail::os::native>::instance().statistics().regions == 0);
}

TEST_CASE("default_heap::pages outlive their thread, and their region goes with the last page", "[default_heap][mode2]")
{
	tagged t{4};
	std::optional<member_thunk::page> kept;
	callback thunk = nullptr;
	std::thread([&] {
		kept.emplace(member_thunk::allocate_page());
		thunk = kept->make_thunk<callback, &tagged::get>(&t);
		kept->mark_executable();
		// Some pages die with the thread: their region must not be kept.
		std::vector<member_thunk::page> temporary;
		for (int i = 0; i < 3; ++i)
			temporary.push_back(member_thunk::allocate_page());
	}).join();
	// The thread is gone; its page still works and may be destroyed here.
	CHECK(thunk(nullptr, 2) == 402);
	CHECK(member_thunk::detail::orphanage<member_thunk::detail::os::native>::instance().is_valid());
	const auto address = reinterpret_cast<const void*>(thunk);
	CHECK(test::protection_of(address) == "r-x");
	kept.reset();
	CHECK(test::protection_of(address) != "---"); // the orphaned region was released with its last page
	CHECK(member_thunk::detail::orphanage<member_thunk::detail::os::native>::instance().statistics().regions == 0);
}

TEST_CASE("default_heap::at thread exit, only regions with live pages go to the orphanage", "[default_heap][mode2]")
{
	using orphanage = member_thunk::detail::orphanage<member_thunk::detail::os::native>;
	tagged t{5};
	std::optional<member_thunk::page> kept;
	std::vector<const void*> freed;
	std::thread([&] {
		// More pages than one region holds: the first region ends up with no live page, the second with one.
		std::vector<member_thunk::page> pages;
		for (int i = 0; i < 20; ++i)
		{
			pages.push_back(member_thunk::allocate_page());
			freed.push_back(reinterpret_cast<const void*>(pages.back().make_thunk<callback, &tagged::get>(&t)));
		}
		REQUIRE(member_thunk::detail::default_heap().statistics().regions == 2);
		kept.emplace(std::move(pages.back()));
		freed.pop_back();
		pages.clear();
	}).join();
	CHECK(orphanage::instance().statistics().regions == 1);
	CHECK(orphanage::instance().statistics().live_pages == 1);
	const auto maps = test::read_maps();
	// The first region (pages 0..15) had no live page: released at thread exit, so it is no longer reserved
	// (inaccessible). Sanitizer runtimes may map their own memory into the range once it is free, so "not ours any
	// more" is the check, not "unmapped". The second region's other pages stay reserved with the kept page.
	REQUIRE(freed.size() == 19);
	for (std::size_t i = 0; i < 16; ++i)
		CHECK(test::protection_in(maps, freed[i]) != "---");
	for (std::size_t i = 16; i < freed.size(); ++i)
		CHECK(test::protection_in(maps, freed[i]) == "---");
	kept->mark_executable();
	CHECK(kept->size() == 1);
	kept.reset();
	CHECK(orphanage::instance().statistics().regions == 0);
}

TEST_CASE("default_heap::destroying a page on another thread while its thread runs is a contract violation",
          "[default_heap][mode2][death]")
{
	const auto result = test::run_in_child([] {
		std::optional<member_thunk::page> p(member_thunk::allocate_page());
		std::thread([&] { p.reset(); }).join();
	});
	CHECK(result.signaled);
	CHECK(result.signal == SIGABRT);
	CHECK_THAT(result.error_output, Catch::Contains("destroyed on another thread"));
}
#endif
