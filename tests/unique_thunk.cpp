// Tests of unique_thunk: the three forms from the default heap (built once per MEMBER_THUNK_DEFAULT_HEAP_SAFETY mode)
// and from a heap<Lock>; move-only ownership; every kind of member; exceptions; contracts; what a stale call does;
// the quarantine of freed slots; no system call in steady state; statistics and compact(); thread exit.
// Unique thunks are always prebuilt stubs, whatever the back end of page handles.
#include <member_thunk/member_thunk.hpp>

#include "support/backend.hpp"
#include "support/child.hpp"
#include "support/failing_os.hpp"
#include "support/maps.hpp"
#include "support/revoked.hpp"

#include <catch2/catch.hpp>

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace
{
	using callback = long (*)(void*, long);
	constexpr std::size_t quarantine = MEMBER_THUNK_UNIQUE_QUARANTINE;

	struct tagged
	{
		long tag;
		long get(long x) { return tag * 100 + x; }
	};

	const std::byte* slot_of(const member_thunk::unique_thunk<callback>& t)
	{
		return member_thunk::detail::unique_thunk_access::slot_of(t);
	}

	/// The default heap's statistics (in mode 2: the calling thread's heap).
	member_thunk::heap_statistics default_statistics()
	{
		return member_thunk::detail::default_heap().statistics();
	}

	// Member kinds, as in members.cpp.
	struct base
	{
		base() = default;
		base(const base&) = default;
		base& operator=(const base&) = default;
		base(base&&) = default;
		base& operator=(base&&) = default;
		virtual ~base() = default;
		virtual long twice(long x) { return 2 * x; }
	};

	struct other_base
	{
		long other_id = 1000;
		other_base() = default;
		other_base(const other_base&) = default;
		other_base& operator=(const other_base&) = default;
		other_base(other_base&&) = default;
		other_base& operator=(other_base&&) = default;
		virtual ~other_base() = default;
		virtual long other(long x) { return other_id + x; }
		long other_plain(long x) { return other_id - x; }
	};

	struct derived final : base, other_base
	{
		long offset = 7;
		long twice(long x) override { return 2 * x + offset; }
		long other(long x) override { return other_id * 2 + x + offset; }
		long own(long x) const noexcept { return offset * x; }
		long by_ref(long x) & { return x - offset; }
	};

	struct virtual_root
	{
		long root_value = 5;
		virtual_root() = default;
		virtual_root(const virtual_root&) = default;
		virtual_root& operator=(const virtual_root&) = default;
		virtual_root(virtual_root&&) = default;
		virtual_root& operator=(virtual_root&&) = default;
		virtual ~virtual_root() = default;
		virtual long root(long x) { return root_value + x; }
	};
	struct left : virtual virtual_root
	{
	};
	struct right : virtual virtual_root
	{
		long root(long x) override { return root_value * 100 + x; }
	};
	struct diamond final : left, right
	{
	};
} // namespace

TEST_CASE("unique_thunk::empty by default: null get(), false, reset() does nothing", "[unique_thunk]")
{
	member_thunk::unique_thunk<callback> t;
	CHECK_FALSE(t);
	CHECK(t.get() == nullptr);
	t.reset();
	CHECK_FALSE(t);
	const member_thunk::unique_thunk<callback> moved(std::move(t));
	CHECK_FALSE(moved);
	STATIC_REQUIRE_FALSE(std::is_copy_constructible_v<member_thunk::unique_thunk<callback>>);
	STATIC_REQUIRE_FALSE(std::is_copy_assignable_v<member_thunk::unique_thunk<callback>>);
	STATIC_REQUIRE(std::is_nothrow_move_constructible_v<member_thunk::unique_thunk<callback>>);
	STATIC_REQUIRE(std::is_nothrow_move_assignable_v<member_thunk::unique_thunk<callback>>);
}

TEST_CASE("unique_thunk::the three forms from the default heap are callable at once", "[unique_thunk]")
{
	tagged t{4};
	auto lambda = [&t](long x) { return t.tag * 1000 + x; };
	const auto before = default_statistics();
	{
		auto compile_time = member_thunk::make_unique_thunk<callback, &tagged::get>(&t);
		auto run_time = member_thunk::make_unique_thunk<callback>(&t, &tagged::get);
		auto callable = member_thunk::make_unique_thunk<callback>(lambda);
		REQUIRE(compile_time);
		REQUIRE(run_time);
		REQUIRE(callable);
		// The first argument is garbage on purpose: the stub replaces it.
		const auto garbage = reinterpret_cast<void*>(std::uintptr_t{0xDEAD});
		CHECK(compile_time.get()(garbage, 1) == 401);
		CHECK(run_time.get()(garbage, 2) == 402);
		CHECK(callable.get()(garbage, 3) == 4003);
		CHECK(default_statistics().live_unique_thunks == before.live_unique_thunks + 3);
		CHECK(default_statistics().slab_pages >= 1);
		// Each is a stub (read-execute) reading a data slot that stays writable while it lives; never both.
		const auto maps = test::read_maps();
		for (const auto* u : {&compile_time, &run_time, &callable})
		{
			CHECK(test::protection_in(maps, reinterpret_cast<const void*>(u->get())) == "r-x");
			CHECK(test::protection_in(maps, slot_of(*u)) == "rw-");
		}
		CHECK(test::writable_executable_in(maps).empty());
		// Unique thunks do not change what page handles get.
		CHECK(default_statistics().runtime_code == !test::prebuilt_build);
	}
	CHECK(default_statistics().live_unique_thunks == before.live_unique_thunks);
	CHECK(member_thunk::detail::default_heap().is_valid());
}

TEMPLATE_TEST_CASE("unique_thunk::the three forms from a heap with any lock", "[unique_thunk]", member_thunk::null_lock,
                   member_thunk::slim_lock, std::mutex)
{
	member_thunk::heap<TestType> h;
	tagged t{5};
	auto lambda = [&t](long x) { return -t.tag - x; };
	{
		auto compile_time = h.template make_unique_thunk<callback, &tagged::get>(&t);
		auto run_time = h.template make_unique_thunk<callback>(&t, &tagged::get);
		auto callable = h.template make_unique_thunk<callback>(lambda);
		CHECK(compile_time.get()(nullptr, 1) == 501);
		CHECK(run_time.get()(nullptr, 2) == 502);
		CHECK(callable.get()(nullptr, 3) == -8);
		const auto s = h.statistics();
		CHECK(s.live_unique_thunks == 3);
		CHECK(s.slab_pages == 1);
		CHECK(s.live_pages == 0);
		CHECK(s.regions == 1);
		CHECK(s.prebuilt_regions == 1);
		CHECK(h.is_valid());
	}
	CHECK(h.statistics().live_unique_thunks == 0);
	CHECK(h.is_valid());
}

TEST_CASE("unique_thunk::move, move assignment (frees the old one), reset", "[unique_thunk]")
{
	member_thunk::heap<member_thunk::null_lock> h;
	tagged a{1};
	tagged b{2};
	auto first = h.make_unique_thunk<callback, &tagged::get>(&a);
	const callback address = first.get();
	const std::byte* const first_slot = slot_of(first);

	member_thunk::unique_thunk<callback> moved(std::move(first));
	CHECK_FALSE(first); // NOLINT(bugprone-use-after-move): the point of the test
	CHECK(first.get() == nullptr);
	CHECK(moved.get() == address);
	CHECK(moved.get()(nullptr, 1) == 101);
	CHECK(h.statistics().live_unique_thunks == 1);

	auto second = h.make_unique_thunk<callback>(&b, &tagged::get);
	const std::byte* const second_slot = slot_of(second);
	CHECK(second.get()(nullptr, 1) == 201);
	CHECK_FALSE(test::slot_traps(second_slot));
	second = std::move(moved); // the thunk that called b is revoked here
	CHECK(test::slot_traps(second_slot));
	CHECK(second.get() == address);
	CHECK(second.get()(nullptr, 2) == 102);
	CHECK(h.statistics().live_unique_thunks == 1);

	auto& self = second;
	second = std::move(self); // self-move keeps the thunk
	CHECK(second.get()(nullptr, 3) == 103);

	second.reset();
	CHECK_FALSE(second);
	CHECK(test::slot_traps(first_slot));
	CHECK(h.statistics().live_unique_thunks == 0);
	second.reset(); // again: nothing
	CHECK(h.is_valid());

	// A moved-from thunk may be assigned to again.
	first = h.make_unique_thunk<callback, &tagged::get>(&b); // NOLINT(bugprone-use-after-move): reviving it
	CHECK(first.get()(nullptr, 4) == 204);
}

TEST_CASE("unique_thunk::every kind of member, both member forms", "[unique_thunk][members]")
{
	member_thunk::heap<member_thunk::null_lock> h;
	derived d;
	d.other_id = 500;
	base* as_base = &d;
	const auto virtual_ct = h.make_unique_thunk<callback, &base::twice>(as_base);
	const auto virtual_rt = h.make_unique_thunk<callback>(as_base, &base::twice);
	CHECK(virtual_ct.get()(nullptr, 10) == 27);
	CHECK(virtual_rt.get()(nullptr, 10) == 27);
	d.offset = 1; // dispatch at each call
	CHECK(virtual_ct.get()(nullptr, 10) == 21);
	CHECK(virtual_rt.get()(nullptr, 10) == 21);
	d.offset = 7;

	// Second base: `this` adjusted.
	const auto second_ct = h.make_unique_thunk<callback, &other_base::other>(&d);
	const auto second_rt = h.make_unique_thunk<callback>(&d, &other_base::other);
	const auto plain_rt = h.make_unique_thunk<callback>(&d, &other_base::other_plain);
	CHECK(second_ct.get()(nullptr, 3) == 1010);
	CHECK(second_rt.get()(nullptr, 3) == 1010);
	CHECK(plain_rt.get()(nullptr, 3) == 497);

	// Virtual inheritance.
	diamond dm;
	dm.root_value = 3;
	virtual_root* as_root = &dm;
	const auto root_ct = h.make_unique_thunk<callback, &virtual_root::root>(as_root);
	const auto root_rt = h.make_unique_thunk<callback>(&dm, &virtual_root::root);
	CHECK(root_ct.get()(nullptr, 4) == 304);
	CHECK(root_rt.get()(nullptr, 4) == 304);

	// const, noexcept, lvalue-ref-qualified.
	const derived& as_const = d;
	const auto const_ct = h.make_unique_thunk<long (*)(const void*, long), &derived::own>(&as_const);
	const auto const_rt = h.make_unique_thunk<long (*)(const void*, long)>(&as_const, &derived::own);
	const auto no_throw = h.make_unique_thunk<long (*)(void*, long) noexcept, &derived::own>(&d);
	const auto ref_rt = h.make_unique_thunk<callback>(&d, &derived::by_ref);
	CHECK(const_ct.get()(nullptr, 6) == 42);
	CHECK(const_rt.get()(nullptr, 6) == 42);
	CHECK(no_throw.get()(nullptr, 6) == 42);
	CHECK(ref_rt.get()(nullptr, 10) == 3);
	CHECK(h.statistics().live_unique_thunks == 11);
}

TEST_CASE("unique_thunk::exceptions propagate from the member through the stub", "[unique_thunk]")
{
	struct thrower
	{
		long fail(long x) { throw std::runtime_error("failed with " + std::to_string(x)); }
	} t;
	auto lambda = [](long x) -> long { throw std::invalid_argument("lambda " + std::to_string(x)); };
	const auto compile_time = member_thunk::make_unique_thunk<callback, &thrower::fail>(&t);
	const auto run_time = member_thunk::make_unique_thunk<callback>(&t, &thrower::fail);
	const auto callable = member_thunk::make_unique_thunk<callback>(lambda);
	CHECK_THROWS_WITH(compile_time.get()(nullptr, 1), "failed with 1");
	CHECK_THROWS_WITH(run_time.get()(nullptr, 2), "failed with 2");
	CHECK_THROWS_AS(callable.get()(nullptr, 3), std::invalid_argument);
}

TEST_CASE("unique_thunk::null object or member pointer is a contract violation", "[unique_thunk][contracts][death]")
{
	const auto expect = [](auto body, const char* message) {
		const auto result = test::run_in_child(body);
		CHECK(result.signaled);
		CHECK(result.signal == SIGABRT);
		CHECK_THAT(result.error_output, Catch::Contains(message));
	};
	expect(
	    [] {
		    tagged* none = nullptr;
		    static_cast<void>(member_thunk::make_unique_thunk<callback, &tagged::get>(none));
	    },
	    "make_unique_thunk() was given a null object pointer");
	expect(
	    [] {
		    tagged* none = nullptr;
		    static_cast<void>(member_thunk::make_unique_thunk<callback>(none, &tagged::get));
	    },
	    "make_unique_thunk() was given a null object pointer");
	expect(
	    [] {
		    member_thunk::heap<member_thunk::null_lock> h;
		    tagged t{1};
		    long (tagged::*none)(long) = nullptr;
		    static_cast<void>(h.make_unique_thunk<callback>(&t, none));
	    },
	    "make_unique_thunk() was given a null member function pointer");
}

TEST_CASE("unique_thunk::a call after destruction traps", "[unique_thunk][death]")
{
	// The slot points at the trap (endbr64/bti c, then int3/brk): SIGTRAP on Linux, EXCEPTION_BREAKPOINT on Windows.
	const auto result = test::run_in_child([] {
		tagged t{1};
		callback stale = nullptr;
		{
			const auto u = member_thunk::make_unique_thunk<callback, &tagged::get>(&t);
			stale = u.get();
			if (stale(nullptr, 1) != 101)
				std::_Exit(3); // the thunk must work while it lives
		}
		static_cast<void>(stale(nullptr, 1));
		std::_Exit(4);
	});
	INFO("child stderr: " << result.error_output);
	CHECK(result.signaled);
	CHECK(result.signal == test::sigtrap);
}

TEST_CASE("unique_thunk::a heap destroyed while a unique thunk is alive ends the process with its message",
          "[unique_thunk][contracts][death]")
{
	const auto result = test::run_in_child([] {
		tagged t{1};
		std::optional<member_thunk::heap<member_thunk::slim_lock>> h(std::in_place);
		const auto u = h->make_unique_thunk<callback, &tagged::get>(&t);
		h.reset();
	});
	CHECK(result.signaled);
	CHECK(result.signal == SIGABRT);
	CHECK_THAT(result.error_output, Catch::Contains("destroyed while some of its pages or unique thunks were still "
	                                                "alive"));
}

namespace
{
	/// The quarantine, exactly: a destroyed thunk's slot is not handed out by the next `quarantine` makes, each
	/// followed by its destruction, and is handed out by the one after (a fresh queue: a new heap, or a new thread's
	/// cache in mode 3). `make` makes a unique thunk.
	template<class Make>
	void check_quarantine(Make make)
	{
		tagged t{1};
		auto first = make(t);
		const std::byte* const slot = slot_of(first);
		first.reset();
		for (std::size_t i = 0; i < quarantine; ++i)
		{
			auto other = make(t);
			REQUIRE(slot_of(other) != slot);
			REQUIRE(test::slot_traps(slot)); // the stale thunk still traps
			REQUIRE(other.get()(nullptr, 1) == 101);
		}
		auto reused = make(t);
		CHECK(slot_of(reused) == slot);
		CHECK(reused.get()(nullptr, 2) == 102);
	}
} // namespace

TEST_CASE("unique_thunk::quarantine: a freed slot comes back only after MEMBER_THUNK_UNIQUE_QUARANTINE others",
          "[unique_thunk][quarantine]")
{
	SECTION("heap<Lock>")
	{
		member_thunk::heap<member_thunk::slim_lock> h;
		check_quarantine([&h](tagged& t) { return h.make_unique_thunk<callback, &tagged::get>(&t); });
		CHECK(h.is_valid());
	}
	SECTION("the default heap, on a new thread (mode 3: the thread's own cache; mode 2: the thread's heap)")
	{
		// Catch's assertions are not thread-safe: the thread only records.
		bool passed = false;
		std::string failure;
		std::thread([&] {
			tagged t{1};
			auto first = member_thunk::make_unique_thunk<callback, &tagged::get>(&t);
			const std::byte* const slot = slot_of(first);
			first.reset();
			for (std::size_t i = 0; i < quarantine; ++i)
			{
				const auto other = member_thunk::make_unique_thunk<callback, &tagged::get>(&t);
				if (slot_of(other) == slot || !test::slot_traps(slot))
				{
					failure = "reused after " + std::to_string(i) + " others";
					return;
				}
			}
			const auto reused = member_thunk::make_unique_thunk<callback, &tagged::get>(&t);
			if (slot_of(reused) != slot)
			{
				failure = "not reused after the quarantine";
				return;
			}
			passed = reused.get()(nullptr, 2) == 102;
		}).join();
		INFO(failure);
		CHECK(passed);
	}
}

TEST_CASE("unique_thunk::no system call in steady state", "[unique_thunk][syscalls]")
{
	// failing_os counts every OS call. Once the quarantine queue is full, making and destroying unique thunks takes
	// and returns queued slots: two words written each way, and nothing else.
	test::os_faults::reset();
	{
		member_thunk::heap<member_thunk::null_lock, test::failing_os> h;
		tagged t{3};
		{
			std::vector<member_thunk::unique_thunk<callback>> warm_up;
			for (std::size_t i = 0; i < quarantine + 8; ++i)
				warm_up.push_back(h.make_unique_thunk<callback, &tagged::get>(&t));
		}
		const auto calls = test::os_faults::calls;
		constexpr long cycles = 2000;
		long sum = 0;
		for (long i = 0; i < cycles; ++i)
		{
			const auto compile_time = h.make_unique_thunk<callback, &tagged::get>(&t);
			const auto run_time = h.make_unique_thunk<callback>(&t, &tagged::get);
			sum += compile_time.get()(nullptr, i) + run_time.get()(nullptr, i);
		}
		CHECK(sum == cycles * 600 + cycles * (cycles - 1));
		for (std::size_t c = 0; c < calls.size(); ++c)
		{
			INFO("OS call kind " << c);
			CHECK(test::os_faults::calls.at(c) == calls.at(c));
		}
		CHECK(h.statistics().slab_pages ==
		      (quarantine + 8 + test::system_page_size() / 4096 * 252 - 1) / (test::system_page_size() / 4096 * 252));
		h.compact();
	}
	CHECK(test::os_faults::reservations.empty());
	test::os_faults::reset();
}

TEST_CASE("unique_thunk::statistics, and compact() gives back the slab pages no thunk uses", "[unique_thunk][stats]")
{
	member_thunk::heap<member_thunk::null_lock> h;
	tagged t{1};
	std::vector<member_thunk::unique_thunk<callback>> thunks;
	const std::size_t per_page = test::system_page_size() / 4096 * 252;
	for (std::size_t i = 0; i < per_page + 1; ++i)
		thunks.push_back(h.make_unique_thunk<callback, &tagged::get>(&t));
	auto s = h.statistics();
	CHECK(s.live_unique_thunks == per_page + 1);
	CHECK(s.slab_pages == 2);
	CHECK(s.live_pages == 0);
	// A page handle and unique thunks share the heap; the page is of run-time code unless that is refused.
	{
		const member_thunk::page p = h.allocate_page();
		s = h.statistics();
		CHECK(s.live_pages == 1);
		CHECK(s.prebuilt_regions == (test::prebuilt_build ? s.regions : s.regions - 1));
	}
	// The last one is alone on the second page: the first page keeps its thunks.
	const std::byte* const last = slot_of(thunks.back());
	thunks.pop_back();
	CHECK(h.statistics().live_unique_thunks == per_page);
	CHECK(h.statistics().slab_pages == 2); // its free slot is queued, the page stays in the slab
	// Its slot is among the newest MEMBER_THUNK_UNIQUE_QUARANTINE destroyed: compact() keeps its page, which would
	// otherwise be the next slab page taken and hand that slot out again at once.
	h.compact();
	CHECK(h.statistics().slab_pages == 2);
	CHECK(test::protection_in(test::read_maps(), last) == "rw-");
	CHECK(h.is_valid());
	thunks.clear();
	CHECK(h.statistics().live_unique_thunks == 0);
	CHECK(h.is_valid());
}

TEST_CASE("unique_thunk::compact() gives back the slab pages whose slots all left the quarantine",
          "[unique_thunk][stats]")
{
	member_thunk::heap<member_thunk::null_lock> h;
	tagged t{1};
	const std::size_t per_page = test::system_page_size() / 4096 * 252;
	// A full slab page of old thunks, then `quarantine` newer ones on the pages after it.
	std::vector<member_thunk::unique_thunk<callback>> old_thunks;
	std::vector<member_thunk::unique_thunk<callback>> new_thunks;
	for (std::size_t i = 0; i < per_page; ++i)
		old_thunks.push_back(h.make_unique_thunk<callback, &tagged::get>(&t));
	for (std::size_t i = 0; i < quarantine; ++i)
		new_thunks.push_back(h.make_unique_thunk<callback, &tagged::get>(&t));
	const std::byte* const old_slot = slot_of(old_thunks.front());
	std::set<const void*> new_pages;
	for (const auto& n : new_thunks)
		new_pages.insert(test::page_of(slot_of(n)));
	REQUIRE(new_pages.count(test::page_of(old_slot)) == 0);
	const std::size_t pages_before = h.statistics().slab_pages;
	CHECK(pages_before == 1 + new_pages.size());
	// The old ones are destroyed first: the newest `quarantine` destroyed are exactly the new ones.
	old_thunks.clear();
	new_thunks.clear();
	h.compact();
	const auto s = h.statistics();
	CHECK(s.live_unique_thunks == 0);
	CHECK(s.slab_pages == new_pages.size());
	// The old thunks' page left the slab and compact() decommitted it (or gave back its region, when a region is one
	// page); the pages of quarantined slots stay, read-write, every slot pointing at the trap.
	CHECK((test::revocation_of(old_slot) == "decommitted" || !test::is_mapped(test::read_maps(), old_slot)));
	for (const void* page : new_pages)
		CHECK(test::protection_in(test::read_maps(), page) == "rw-");
	CHECK(h.is_valid());
}

TEST_CASE("unique_thunk::the default heap: compact() gives back the calling thread's empty slab pages",
          "[unique_thunk][stats]")
{
	tagged t{1};
	const auto before = default_statistics();
	{
		std::vector<member_thunk::unique_thunk<callback>> thunks;
		for (int i = 0; i < 40; ++i)
			thunks.push_back(member_thunk::make_unique_thunk<callback, &tagged::get>(&t));
		CHECK(default_statistics().live_unique_thunks == before.live_unique_thunks + 40);
		CHECK(default_statistics().slab_pages >= 1);
	}
	CHECK(default_statistics().live_unique_thunks == before.live_unique_thunks);
	// Their slots are all among the newest MEMBER_THUNK_UNIQUE_QUARANTINE destroyed (in mode 3, compact() first takes
	// back the calling thread's cache): their page stays in the slab, and only it.
	member_thunk::compact();
	CHECK(default_statistics().slab_pages == 1);
	CHECK(member_thunk::detail::default_heap().is_valid());
}

#if MEMBER_THUNK_DEFAULT_HEAP_SAFETY == 3
TEST_CASE("unique_thunk::mode 3: another thread's cache keeps its slab page until that thread ends",
          "[unique_thunk][mode3]")
{
	tagged t{2};
	std::mutex lock;
	std::condition_variable changed;
	bool made = false;
	bool finish = false;
	std::optional<member_thunk::unique_thunk<callback>> kept;
	std::thread other([&] {
		{
			const auto temporary = member_thunk::make_unique_thunk<callback, &tagged::get>(&t);
			kept.emplace(member_thunk::make_unique_thunk<callback>(&t, &tagged::get));
		}
		std::unique_lock guard(lock);
		made = true;
		changed.notify_all();
		changed.wait(guard, [&] { return finish; });
	});
	{
		std::unique_lock guard(lock);
		changed.wait(guard, [&] { return made; });
	}
	// The other thread holds slots in its cache (a batch taken from the heap, one quarantined): they are not alive,
	// and compact() here cannot give back the page they are on.
	CHECK(default_statistics().live_unique_thunks == 1);
	member_thunk::compact();
	CHECK(default_statistics().slab_pages == 1);
	CHECK(kept->get()(nullptr, 1) == 201);
	{
		const std::lock_guard guard(lock);
		finish = true;
	}
	changed.notify_all();
	other.join();
	// Its cache went back to the heap when it ended; its thunk still works here.
	CHECK(kept->get()(nullptr, 2) == 202);
	CHECK(default_statistics().live_unique_thunks == 1);
	kept.reset();
	member_thunk::compact();
	CHECK(default_statistics().live_unique_thunks == 0);
	// Every slot of the page is free; the page stays for the quarantine of the slots destroyed last, and only it.
	CHECK(default_statistics().slab_pages == 1);
	CHECK(member_thunk::detail::default_heap().is_valid());
}
#endif

#if MEMBER_THUNK_DEFAULT_HEAP_SAFETY == 3
TEST_CASE("unique_thunk::mode 3: a thread that only destroys unique thunks gives their slots back when it ends",
          "[unique_thunk][mode3]")
{
	// The thread's first use of its cache is a destruction: the cache must join the heap then, or the slots it
	// quarantines would count as alive for ever and keep their slab page.
	tagged t{3};
	std::vector<member_thunk::unique_thunk<callback>> made;
	for (int i = 0; i < 3; ++i)
		made.push_back(member_thunk::make_unique_thunk<callback, &tagged::get>(&t));
	std::vector<const std::byte*> slots;
	for (const auto& u : made)
		slots.push_back(slot_of(u));
	std::size_t alive_while_running = 0;
	std::thread([&] {
		made.clear();
		alive_while_running = default_statistics().live_unique_thunks;
	}).join();
	CHECK(alive_while_running == 0);
	for (const auto* slot : slots)
		CHECK(test::slot_traps(slot));
	CHECK(default_statistics().live_unique_thunks == 0);
	member_thunk::compact();
	CHECK(default_statistics().live_unique_thunks == 0);
	CHECK(default_statistics().slab_pages == 1); // kept only for the quarantine of its slots
	CHECK(member_thunk::detail::default_heap().is_valid());
}
#endif

#if MEMBER_THUNK_DEFAULT_HEAP_SAFETY == 2
TEST_CASE("unique_thunk::mode 2: live unique thunks go to the orphanage at thread exit and keep working",
          "[unique_thunk][mode2]")
{
	using orphanage = member_thunk::detail::orphanage<member_thunk::detail::os::native>;
	tagged t{6};
	std::optional<member_thunk::unique_thunk<callback>> compile_time;
	std::optional<member_thunk::unique_thunk<callback>> run_time;
	std::thread([&] {
		std::vector<member_thunk::unique_thunk<callback>> temporary;
		for (int i = 0; i < 5; ++i)
			temporary.push_back(member_thunk::make_unique_thunk<callback, &tagged::get>(&t));
		compile_time.emplace(member_thunk::make_unique_thunk<callback, &tagged::get>(&t));
		run_time.emplace(member_thunk::make_unique_thunk<callback>(&t, &tagged::get));
	}).join();
	CHECK(orphanage::instance().statistics().live_unique_thunks == 2);
	CHECK(orphanage::instance().statistics().regions == 1);
	CHECK(compile_time->get()(nullptr, 1) == 601);
	CHECK(run_time->get()(nullptr, 2) == 602);
	const std::byte* const slot = slot_of(*run_time);
	run_time.reset(); // on another thread than the one that made it, which has ended: allowed
	CHECK(test::slot_traps(slot));
	CHECK(orphanage::instance().statistics().live_unique_thunks == 1);
	compile_time.reset();
	CHECK(orphanage::instance().statistics().live_unique_thunks == 0);
	CHECK(orphanage::instance().statistics().regions == 0); // given back with its last thunk
	CHECK(orphanage::instance().is_valid());
}

TEST_CASE("unique_thunk::mode 2: destroying one on another thread while its thread runs is a contract violation",
          "[unique_thunk][mode2][death]")
{
	const auto result = test::run_in_child([] {
		tagged t{1};
		std::optional<member_thunk::unique_thunk<callback>> u(
		    member_thunk::make_unique_thunk<callback, &tagged::get>(&t));
		std::thread([&] { u.reset(); }).join();
	});
	CHECK(result.signaled);
	CHECK(result.signal == SIGABRT);
	CHECK_THAT(result.error_output, Catch::Contains("destroyed on another thread"));
}
#endif

#if MEMBER_THUNK_DEFAULT_HEAP_SAFETY != 1
TEST_CASE("unique_thunk::several threads make, call and destroy unique thunks of the default heap",
          "[unique_thunk][threads]")
{
	constexpr int threads = 4;
	constexpr int rounds = 2000;
	std::vector<int> failures(threads, 0);
	std::vector<std::thread> workers;
	for (int w = 0; w < threads; ++w)
		workers.emplace_back([&, w] {
			tagged mine{w};
			std::vector<member_thunk::unique_thunk<callback>> held;
			for (int i = 0; i < rounds; ++i)
			{
				held.push_back(i % 2 == 0 ? member_thunk::make_unique_thunk<callback, &tagged::get>(&mine)
				                          : member_thunk::make_unique_thunk<callback>(&mine, &tagged::get));
				if (held.back().get()(nullptr, i) != w * 100 + i)
					++failures[static_cast<std::size_t>(w)];
				if (held.size() > 40)
					held.erase(held.begin(), held.begin() + 20);
			}
		});
	for (auto& w : workers)
		w.join();
	for (const int f : failures)
		CHECK(f == 0);
	CHECK(member_thunk::detail::default_heap().is_valid());
	CHECK(test::writable_executable_mappings().empty());
}
#endif
