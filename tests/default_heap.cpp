// The default heap, built once per MEMBER_THUNK_DEFAULT_HEAP_SAFETY mode, each with run-time code and with prebuilt
// stubs (MEMBER_THUNK_NO_RUNTIME_CODE): this file is compiled six times.
#include <member_thunk/member_thunk.hpp>

#include "support/backend.hpp"
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
#include <string>
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
	const void* address = nullptr;
	bool pooled = false;
	{
		member_thunk::page p = member_thunk::allocate_page();
		CHECK(p.prebuilt() == test::prebuilt_build);
		const auto thunk = p.make_thunk<callback, &tagged::get>(&t);
		p.mark_executable();
		CHECK(thunk(nullptr, 7) == 307);
		address = test::slot_of(p, thunk);
		pooled = member_thunk::detail::page_access::region_of(p)->kind ==
		         &member_thunk::detail::image_pool_regions<member_thunk::detail::os::native>::kind;
		CHECK(test::protection_of(address) == test::sealed_protection(p.prebuilt()));
	}
	CHECK(test::revocation_of(address) == "cached");
	member_thunk::compact();
	// Released (a sanitizer may reuse the range); a page of the image pool (Windows without run-time code) is the
	// program's own memory and stays, emptied.
	if (pooled)
		CHECK(test::revocation_of(address) == "cached");
	else
		CHECK(test::protection_of(address) != "---");
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
				// At most 48 held per thread: without run-time code on Windows every page comes from the image pool.
				if (i % 2 == 0 || held.size() > 48)
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
	const void* address = nullptr;
	std::thread([&] {
		kept.emplace(member_thunk::allocate_page());
		thunk = kept->make_thunk<callback, &tagged::get>(&t);
		address = test::slot_of(*kept, thunk);
		kept->mark_executable();
		// Some pages die with the thread: their region must not be kept.
		std::vector<member_thunk::page> temporary;
		for (int i = 0; i < 3; ++i)
			temporary.push_back(member_thunk::allocate_page());
	}).join();
	// The thread is gone; its page still works and may be destroyed here.
	CHECK(thunk(nullptr, 2) == 402);
	CHECK(member_thunk::detail::orphanage<member_thunk::detail::os::native>::instance().is_valid());
	CHECK(test::protection_of(address) == test::sealed_protection(test::prebuilt_build));
	kept.reset();
	// The orphaned region was released with its last page (a page of the image pool stays, emptied or inaccessible).
	CHECK((test::protection_of(address) != "---" || test::is_revoked(address)));
	CHECK(member_thunk::detail::orphanage<member_thunk::detail::os::native>::instance().statistics().regions == 0);
}

TEST_CASE("default_heap::at thread exit, only regions with live pages go to the orphanage", "[default_heap][mode2]")
{
	using orphanage = member_thunk::detail::orphanage<member_thunk::detail::os::native>;
	tagged t{5};
	std::optional<member_thunk::page> kept;
	std::vector<const void*> freed;
	std::size_t per_region = 0;
	std::size_t regions = 0;
	bool pooled = false;
	std::thread([&] {
		// More pages than one region holds (16 of run-time code; 4 of prebuilt stubs with 4 KiB pages, 1 with 64 KiB
		// pages or in the image pool): the first region ends up with no live page, the second with one.
		std::vector<member_thunk::page> pages;
		pages.push_back(member_thunk::allocate_page());
		per_region = test::pages_per_region(pages.back());
		pooled = member_thunk::detail::page_access::region_of(pages.back())->kind ==
		         &member_thunk::detail::image_pool_regions<member_thunk::detail::os::native>::kind;
		const std::size_t count = per_region + (per_region >= 4 ? 4 : 1);
		while (pages.size() < count)
			pages.push_back(member_thunk::allocate_page());
		for (auto& p : pages)
			freed.push_back(test::slot_of(p, p.make_thunk<callback, &tagged::get>(&t)));
		regions = member_thunk::detail::default_heap().statistics().regions;
		kept.emplace(std::move(pages.back()));
		freed.pop_back();
		pages.clear();
	}).join();
	CHECK(regions == 2);
	CHECK(orphanage::instance().statistics().regions == 1);
	CHECK(orphanage::instance().statistics().live_pages == 1);
	const auto maps = test::read_maps();
	// The first region had no live page: released at thread exit, so it is no longer reserved (inaccessible).
	// Sanitizer runtimes may map their own memory into the range once it is free, so "not ours any more" is the
	// check, not "unmapped"; a page of the image pool is the program's and stays, emptied. The second region's other
	// pages stay reserved with the kept page.
	for (std::size_t i = 0; i < per_region; ++i)
	{
		if (pooled)
		{
			const std::string how = test::revocation_in(maps, freed[i]);
			CHECK((how == "cached" || how == "decommitted"));
		}
		else
			CHECK(test::protection_in(maps, freed[i]) != "---");
	}
	for (std::size_t i = per_region; i < freed.size(); ++i)
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

#if defined(_WIN32)
namespace
{
	using orphanage = member_thunk::detail::orphanage<member_thunk::detail::os::native>;

	/// A fiber that allocates its thread's first page, so that it is the fiber that makes the thread's heap, then
	/// hands control back for good (it is deleted while suspended).
	struct first_fiber
	{
		void* primary = nullptr;
		std::optional<member_thunk::page> page;
		const void* heap = nullptr;
	};

	void WINAPI run_first_fiber(void* parameter)
	{
		auto& self = *static_cast<first_fiber*>(parameter);
		self.page.emplace(member_thunk::allocate_page());
		self.heap = &member_thunk::detail::default_heap();
		::SwitchToFiber(self.primary);
	}
} // namespace

TEST_CASE("default_heap::the heap is the thread's: deleting the fiber that made it changes nothing",
          "[default_heap][mode2][windows]")
{
	// Seen on the thread, checked here (Catch is not used off the main thread).
	struct
	{
		bool fibers = false;
		const void* fiber_heap = nullptr;
		const void* heap = nullptr;
		bool valid = false;
		std::size_t live_pages = 0;
		member_thunk::heap_statistics orphaned{};
		long calls = 0;
	} seen;
	const auto before = orphanage::instance().statistics();
	tagged t{6};
	std::optional<member_thunk::page> kept;
	callback thunk = nullptr;
	std::thread([&] {
		first_fiber fiber;
		fiber.primary = ::ConvertThreadToFiber(nullptr);
		void* const made = fiber.primary != nullptr ? ::CreateFiber(0, &run_first_fiber, &fiber) : nullptr;
		if (made == nullptr)
			return;
		::SwitchToFiber(made);
		::DeleteFiber(made); // its page is still alive, held here
		seen.fibers = true;
		seen.fiber_heap = fiber.heap;
		// The primary fiber goes on with the thread's heap: pages allocated, sealed, called and freed.
		std::vector<member_thunk::page> pages;
		for (int i = 0; i < 20; ++i)
		{
			pages.push_back(member_thunk::allocate_page());
			const auto f = pages.back().make_thunk<callback, &tagged::get>(&t);
			pages.back().mark_executable();
			seen.calls += f(nullptr, i) == 600 + i ? 1 : 0;
			if (i % 3 == 0)
				pages.erase(pages.begin());
		}
		pages.clear();
		seen.heap = &member_thunk::detail::default_heap();
		seen.valid = member_thunk::detail::default_heap().is_valid();
		seen.live_pages = member_thunk::detail::default_heap().statistics().live_pages;
		// Nothing may have gone to the orphanage while the thread runs.
		seen.orphaned = orphanage::instance().statistics();
		fiber.page.reset();
		kept.emplace(member_thunk::allocate_page());
		thunk = kept->make_thunk<callback, &tagged::get>(&t);
		kept->mark_executable();
		::ConvertFiberToThread();
	}).join();
	REQUIRE(seen.fibers);
	CHECK(seen.heap == seen.fiber_heap);
	CHECK(seen.calls == 20);
	CHECK(seen.valid);
	CHECK(seen.live_pages == 1); // the deleted fiber's page
	CHECK(seen.orphaned.regions == before.regions);
	CHECK(seen.orphaned.live_pages == before.live_pages);
	// The thread has ended: its live page was adopted, and still works.
	CHECK(orphanage::instance().statistics().live_pages == before.live_pages + 1);
	CHECK(thunk(nullptr, 1) == 601);
	kept.reset();
	CHECK(orphanage::instance().statistics().regions == before.regions);
	CHECK(orphanage::instance().is_valid());
}

namespace
{
	struct exit_allocation
	{
		long result = 0;
		const void* address = nullptr; // the page of the thunk made at exit (its code, or its data slot)
		const void* held = nullptr;
	};

	/// Where the thread of the next test records what it saw.
	exit_allocation* exit_target = nullptr;

	/// A thread_local object whose destructor allocates, seals, calls and frees a page: thread-exit code that must
	/// still find a working heap. It keeps nothing in itself: MinGW's emulated TLS may free a thread_local object's
	/// storage before its destructor runs, and an allocation meanwhile (a region of prebuilt stubs) reuses it.
	struct allocates_at_exit
	{
		allocates_at_exit() = default;
		allocates_at_exit(const allocates_at_exit&) = delete;
		allocates_at_exit& operator=(const allocates_at_exit&) = delete;
		allocates_at_exit(allocates_at_exit&&) = delete;
		allocates_at_exit& operator=(allocates_at_exit&&) = delete;

		~allocates_at_exit()
		{
			exit_allocation& out = *exit_target;
			tagged t{8};
			member_thunk::page p = member_thunk::allocate_page();
			const auto thunk = p.make_thunk<callback, &tagged::get>(&t);
			p.mark_executable();
			out.address = test::slot_of(p, thunk);
			out.result = thunk(nullptr, 1);
		}
	};

	// Started with CreateThread, not std::thread: the C++ thread_local destructors of such a thread run in a PE TLS
	// callback at its exit (winpthreads'), not before the thread function returns.
	DWORD WINAPI allocate_in_thread_local_destructor(void* parameter)
	{
		auto& out = *static_cast<exit_allocation*>(parameter);
		thread_local allocates_at_exit late;
		static_cast<void>(late);
		thread_local std::optional<member_thunk::page> held;
		thread_local tagged t{9};
		held.emplace(member_thunk::allocate_page());
		out.held = test::slot_of(*held, held->make_thunk<callback, &tagged::get>(&t));
		return 0;
	}
} // namespace

TEST_CASE("default_heap::thread_local objects may allocate and free pages at the exit of a Win32 thread",
          "[default_heap][mode2][windows]")
{
	using pool = member_thunk::detail::image_pool_regions<member_thunk::detail::os::native>;
	const auto before = orphanage::instance().statistics();
	const std::size_t pool_pages = pool::pages_taken();
	exit_allocation out;
	exit_target = &out;
	HANDLE thread = ::CreateThread(nullptr, 0, &allocate_in_thread_local_destructor, &out, 0, nullptr);
	REQUIRE(thread != nullptr);
	REQUIRE(::WaitForSingleObject(thread, INFINITE) == WAIT_OBJECT_0);
	::CloseHandle(thread);
	exit_target = nullptr;
	CHECK(out.result == 801);
	// Both pages were freed at the thread's exit into its heap, which then gave their region back: a heap made anew
	// after the thread's own was destroyed would still hold them cached (read-write, trap-filled). Without run-time
	// code every page is of the image pool here: given back to the pool, emptied (the pool's memory stays).
	REQUIRE(out.address != nullptr);
	if (test::prebuilt_build)
	{
		CHECK(pool::pages_taken() == pool_pages);
		CHECK(test::is_revoked(out.address));
		CHECK(test::is_revoked(out.held));
	}
	else
	{
		CHECK(test::protection_of(out.address) != "rw-");
		CHECK(test::protection_of(out.held) != "rw-");
	}
	CHECK(orphanage::instance().statistics().regions == before.regions);
	CHECK(orphanage::instance().statistics().live_pages == before.live_pages);
	CHECK(orphanage::instance().is_valid());
}

namespace
{
	/// What a PE TLS callback of this test saw when it allocated a page late in the exit of the thread it is armed
	/// for, after member_thunk's own thread-exit callback.
	struct late_exit
	{
		static inline std::atomic<DWORD> thread{0};
		static inline bool ran = false;
		static inline bool threw = false;
		static inline long result = 0;
		static inline member_thunk::heap_statistics before{};
		static inline member_thunk::heap_statistics during{};
		static inline member_thunk::heap_statistics after{};
		static inline bool valid = false;

		static void arm(DWORD id) noexcept
		{
			ran = false;
			threw = false;
			result = 0;
			thread = id;
		}
	};

	void NTAPI allocate_late_in_thread_exit([[maybe_unused]] void* module, DWORD reason,
	                                        [[maybe_unused]] void* reserved) noexcept
	{
		if (reason != DLL_THREAD_DETACH || late_exit::thread.load() != ::GetCurrentThreadId())
			return;
		late_exit::ran = true;
		try
		{
			tagged t{7};
			late_exit::before = orphanage::instance().statistics();
			{
				member_thunk::page p = member_thunk::allocate_page();
				const auto thunk = p.make_thunk<callback, &tagged::get>(&t);
				p.mark_executable();
				late_exit::result = thunk(nullptr, 8);
				late_exit::during = orphanage::instance().statistics();
			}
			late_exit::after = orphanage::instance().statistics();
			late_exit::valid = orphanage::instance().is_valid();
		}
		catch (...)
		{
			late_exit::threw = true;
		}
	}
} // namespace

// This test's own PE TLS callback, in a section that sorts after member_thunk's (".CRT$XLY_member_thunk"): the
// linker orders a PE image's TLS callbacks by section name, so this runs later in each thread's exit.
extern "C"
{
	inline const PIMAGE_TLS_CALLBACK member_thunk_test_late_exit_callback
	    __attribute__((section(".CRT$XLY_test"), used)) = &allocate_late_in_thread_exit;
}

TEST_CASE("default_heap::late in a thread's exit, after its heap went to the orphanage, pages come from the orphanage",
          "[default_heap][mode2][windows]")
{
	const auto check = [](const char* thread) {
		INFO(thread);
		REQUIRE(late_exit::ran);
		CHECK_FALSE(late_exit::threw);
		CHECK(late_exit::result == 708);
		// Served by the orphanage (locked, never destroyed), not by a heap made anew that nobody would destroy.
		CHECK(late_exit::during.live_pages == late_exit::before.live_pages + 1);
		// Freed there, and its region released with it.
		CHECK(late_exit::after.live_pages == late_exit::before.live_pages);
		CHECK(late_exit::after.regions == late_exit::before.regions);
		CHECK(late_exit::valid);
	};
	std::thread([] {
		late_exit::arm(::GetCurrentThreadId());
		const member_thunk::page first = member_thunk::allocate_page(); // the thread has a heap
	}).join();
	check("a thread that used its heap");
	std::thread([] { late_exit::arm(::GetCurrentThreadId()); }).join();
	check("a thread that never used its heap");
	late_exit::thread = 0;
}
#endif
#endif
