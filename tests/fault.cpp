// Every OS failure, injected through a failing back end: the documented exception (naming the failed call and
// carrying its error code), no leak, invariants intact, no thunk callable with a wrong target, and destructors that
// never throw and never leave an executable page behind. Built twice: with run-time code and with prebuilt stubs
// (MEMBER_THUNK_NO_RUNTIME_CODE), where sealing a page is protect(read) and revoking it protect(read_write) instead
// of make_executable and make_writable; flushing and call-target registration are steps of written code only.
#include <member_thunk/member_thunk.hpp>

#include "support/backend.hpp"
#include "support/child.hpp"
#include "support/failing_os.hpp"
#include "support/far_os.hpp"
#include "support/maps.hpp"
#include "support/revoked.hpp"

#include <catch2/catch.hpp>

#include <cerrno>
#include <csignal>
#include <cstddef>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace
{
	using callback = long (*)(void*, long);
	using test::os_call;
	using test::os_faults;
	using faulty_heap = member_thunk::heap<member_thunk::null_lock, test::failing_os>;

	struct value
	{
		long v;
		long get(long x) { return v + x; }
	};

	/// Resets the injected faults around each test, and the process's choice of a way to map prebuilt stubs (a
	/// failure injected there may close a way).
	struct fault_scope
	{
		fault_scope() { os_faults::reset(); }
		fault_scope(const fault_scope&) = delete;
		fault_scope& operator=(const fault_scope&) = delete;
		fault_scope(fault_scope&&) = delete;
		fault_scope& operator=(fault_scope&&) = delete;
		~fault_scope() { os_faults::reset(); }

		test::stub_sources_scope sources;
	};

	/// The OS call that seals a page, and the one that makes a freed page writable again, on this build's back end.
	constexpr os_call seal_call = test::prebuilt_build ? os_call::protect : os_call::make_executable;
	constexpr os_call unseal_call = test::prebuilt_build ? os_call::protect : os_call::make_writable;
	constexpr const char* seal_doing = test::prebuilt_build ? "could not make a page of prebuilt thunks read-only"
	                                                        : "could not make a page executable";

	template<class F>
	std::optional<member_thunk::os_error> os_error_from(F&& f)
	{
		try
		{
			f();
		}
		catch (const member_thunk::os_error& e)
		{
			return e;
		}
		return std::nullopt;
	}
} // namespace

TEST_CASE("fault::reserve fails: os_error naming the call, heap unchanged", "[fault]")
{
	const fault_scope scope;
	faulty_heap h;
	os_faults::fail_next(os_call::reserve);
	const auto error = os_error_from([&] { static_cast<void>(h.allocate_page()); });
	REQUIRE(error);
	CHECK(error->code().value() == ENOMEM);
	CHECK_THAT(error->what(), Catch::Contains(test::prebuilt_build ? "could not reserve a region of prebuilt thunks"
	                                                               : "could not reserve address space") &&
	                              Catch::Contains("injected reserve failed"));
	CHECK(h.is_valid());
	CHECK(h.statistics().regions == 0);
	CHECK(os_faults::reservations.empty());
	// The next attempt works.
	member_thunk::page p = h.allocate_page();
	CHECK(h.statistics().live_pages == 1);
}

TEST_CASE("fault::commit fails: os_error, no page, compact releases everything", "[fault]")
{
	const fault_scope scope;
	faulty_heap h;
	os_faults::fail_next(os_call::make_writable);
	const auto error = os_error_from([&] { static_cast<void>(h.allocate_page()); });
	REQUIRE(error);
	CHECK_THAT(error->what(), Catch::Contains("could not commit a page"));
	CHECK(h.is_valid());
	CHECK(h.statistics().live_pages == 0);
	CHECK(h.statistics().committed_bytes == 0);
	h.compact();
	CHECK(h.statistics().regions == 0);
	CHECK(os_faults::reservations.empty());
}

TEST_CASE("fault::sealing fails: the page stays writable and can be sealed later", "[fault]")
{
	const fault_scope scope;
	faulty_heap h;
	value v{40};
	member_thunk::page p = h.allocate_page();
	REQUIRE(p.prebuilt() == test::prebuilt_build);
	const auto t = p.make_thunk<callback, &value::get>(&v);
	os_faults::error = EACCES;
	os_faults::fail_next(seal_call);
	const auto error = os_error_from([&] { p.mark_executable(); });
	REQUIRE(error);
	CHECK(error->code().value() == EACCES);
	CHECK_THAT(error->what(), Catch::Contains(seal_doing));
	CHECK_FALSE(p.executable());
	CHECK(test::protection_of(test::slot_of(p, t)) == "rw-");
	// Still usable: another thunk, then a successful seal.
	const auto t2 = p.make_thunk<callback>(&v, &value::get);
	p.mark_executable();
	CHECK(t(nullptr, 2) == 42);
	CHECK(t2(nullptr, 3) == 43);
}

// Flushing the instruction cache and registering call targets are steps of written code: run-time code only.
#if !defined(MEMBER_THUNK_NO_RUNTIME_CODE)
TEST_CASE("fault::call-target registration or cache flush fails: the page goes back to read-write", "[fault]")
{
	const fault_scope scope;
	faulty_heap h;
	value v{1};
	const auto which = GENERATE(os_call::set_call_targets, os_call::flush_instruction_cache);
	member_thunk::page p = h.allocate_page();
	const auto t = p.make_thunk<callback, &value::get>(&v);
	os_faults::fail_next(which);
	const auto error = os_error_from([&] { p.mark_executable(); });
	REQUIRE(error);
	CHECK_FALSE(p.executable());
	CHECK(test::protection_of(reinterpret_cast<const void*>(t)) == "rw-");
	p.mark_executable();
	CHECK(t(nullptr, 1) == 2);
}

TEST_CASE("fault::registration fails and restoring read-write fails too: the page reports itself sealed", "[fault]")
{
	const fault_scope scope;
	faulty_heap h;
	value v{1};
	member_thunk::page p = h.allocate_page();
	const auto t = p.make_thunk<callback, &value::get>(&v);
	os_faults::fail_next(os_call::set_call_targets);
	os_faults::fail_next(os_call::make_writable);
	CHECK_THROWS_AS(p.mark_executable(), member_thunk::os_error);
	CHECK(p.executable());
	CHECK(test::protection_of(reinterpret_cast<const void*>(t)) == "r-x");
	CHECK_THROWS_AS((p.make_thunk<callback, &value::get>(&v)), member_thunk::page_executable);
}
#endif

namespace
{
	/// Frees `count` sealed pages of `h` so that its page cache holds them; returns the heap's cached page count.
	std::size_t fill_cache(faulty_heap& h, std::size_t count)
	{
		value v{0};
		std::vector<member_thunk::page> pages;
		for (std::size_t i = 0; i < count; ++i)
		{
			pages.push_back(h.allocate_page());
			static_cast<void>(pages.back().make_thunk<callback, &value::get>(&v));
			pages.back().mark_executable();
		}
		pages.clear();
		return h.statistics().cached_pages;
	}

	const std::size_t page_size = test::system_page_size();
} // namespace

TEST_CASE("fault::the cache is full and decommit fails in a destructor: no throw, the page is kept as read-write traps",
          "[fault][cache]")
{
	const fault_scope scope;
	faulty_heap h;
	value v{1};
	callback t = nullptr;
	member_thunk::page p = h.allocate_page();
	t = p.make_thunk<callback, &value::get>(&v);
	const void* const slot = test::slot_of(p, t);
	p.mark_executable();
	REQUIRE(fill_cache(h, MEMBER_THUNK_PAGE_CACHE) == MEMBER_THUNK_PAGE_CACHE);
	os_faults::fail_next(os_call::decommit);
	{
		const member_thunk::page gone = std::move(p); // must not throw
	}
	CHECK(os_faults::fail_in[static_cast<std::size_t>(os_call::decommit)] == 0); // the decommit was tried
	CHECK(test::revocation_of(slot) == "cached");
	CHECK(h.is_valid());
	const auto stats = h.statistics();
	CHECK(stats.live_pages == 0);
	CHECK(stats.cached_pages == MEMBER_THUNK_PAGE_CACHE + 1);
	CHECK(stats.committed_bytes == (MEMBER_THUNK_PAGE_CACHE + 1) * page_size);
	h.compact();
	CHECK(h.statistics().regions == 0);
	CHECK(h.statistics().cached_pages == 0);
	CHECK(os_faults::reservations.empty());
}

TEST_CASE("fault::the cache has room and making a freed page read-write fails: it is decommitted instead",
          "[fault][cache]")
{
	const fault_scope scope;
	faulty_heap h;
	value v{1};
	const void* slot = nullptr;
	{
		member_thunk::page p = h.allocate_page();
		slot = test::slot_of(p, p.make_thunk<callback, &value::get>(&v));
		p.mark_executable();
		os_faults::fail_next(unseal_call);
	}                                                                      // must not throw
	CHECK(os_faults::fail_in[static_cast<std::size_t>(unseal_call)] == 0); // keeping it was tried first
	CHECK(test::revocation_of(slot) == "decommitted");
	CHECK(h.is_valid());
	CHECK(h.statistics().cached_pages == 0);
	CHECK(h.statistics().committed_bytes == 0);
}

TEST_CASE("fault::a cached page is reused without a system call: a steady state costs two protection changes per page",
          "[fault][cache]")
{
	const fault_scope scope;
	faulty_heap h;
	value v{1};
	{
		// Fill the reuse queue: a freed page is handed out again only once the queue is full.
		std::vector<member_thunk::page> warm_up;
		for (std::size_t i = 0; i < MEMBER_THUNK_PAGE_CACHE; ++i)
			warm_up.push_back(h.allocate_page());
	}
	REQUIRE(h.statistics().cached_pages == MEMBER_THUNK_PAGE_CACHE);
	const auto calls = os_faults::calls;
	constexpr std::size_t cycles = 100;
	for (std::size_t i = 0; i < cycles; ++i)
	{
		member_thunk::page p = h.allocate_page();
		const auto t = p.make_thunk<callback, &value::get>(&v);
		p.mark_executable();
		REQUIRE(t(nullptr, static_cast<long>(i)) == static_cast<long>(i) + 1);
	}
	const auto count = [&](os_call c) { return os_faults::count(c) - calls.at(static_cast<std::size_t>(c)); };
	if (test::prebuilt_build)
	{
		CHECK(count(os_call::protect) == 2 * cycles); // sealing read-only, and read-write again when freed
		CHECK(count(os_call::make_executable) == 0);
		CHECK(count(os_call::make_writable) == 0);
	}
	else
	{
		CHECK(count(os_call::make_executable) == cycles); // sealing
		CHECK(count(os_call::make_writable) == cycles);   // back to read-write and traps when freed
		CHECK(count(os_call::protect) == 0);
	}
	CHECK(count(os_call::probe_executable) == 0);
	CHECK(count(os_call::map_image_code) == 0);
	CHECK(count(os_call::map_sealed_copy) == 0);
	CHECK(count(os_call::decommit) == 0);
	CHECK(count(os_call::reserve) == 0);
	CHECK(count(os_call::unreserve) == 0);
	CHECK(h.statistics().cached_pages == MEMBER_THUNK_PAGE_CACHE);
}

TEST_CASE("fault::compact decommits the cached pages of regions it keeps, and reports and retries a refused one",
          "[fault][cache]")
{
	const fault_scope scope;
	faulty_heap h;
	value v{1};
	const member_thunk::page kept = h.allocate_page(); // keeps the region
	const void* cached = nullptr;
	{
		member_thunk::page p = h.allocate_page();
		cached = test::slot_of(p, p.make_thunk<callback, &value::get>(&v));
	}
	REQUIRE(h.statistics().cached_pages == 1);
	if (test::pages_per_region(kept) == 1)
	{
		// A region of one page (prebuilt stubs with 64 KiB pages): the freed page's region holds nothing else, so
		// compact() gives the whole region back, with no decommit to refuse.
		const auto decommits = os_faults::count(os_call::decommit);
		h.compact();
		CHECK(os_faults::count(os_call::decommit) == decommits);
		CHECK(h.statistics().cached_pages == 0);
		CHECK(h.statistics().regions == 1);
		CHECK(h.is_valid());
		return;
	}
	os_faults::fail_next(os_call::decommit);
	const auto error = os_error_from([&] { h.compact(); });
	REQUIRE(error);
	CHECK_THAT(error->what(),
	           Catch::Contains("could not decommit a cached page") && Catch::Contains("injected decommit failed"));
	CHECK(error->code().value() == ENOMEM);
	CHECK(h.statistics().cached_pages == 1);
	CHECK(test::revocation_of(cached) == "cached");
	CHECK(h.is_valid());
	h.compact();
	CHECK(h.statistics().cached_pages == 0);
	CHECK(h.statistics().regions == 1);
	CHECK(h.statistics().committed_bytes == page_size);
	CHECK(test::revocation_of(cached) == "decommitted");
	CHECK(h.is_valid());
}

#if !defined(MEMBER_THUNK_NO_RUNTIME_CODE)
namespace
{
	constexpr std::size_t code_slot = member_thunk::detail::arch::native_encoder::slot_size;

	/// The offset of `entry` (a thunk or closure of run-time code) in its page.
	template<class Callback>
	[[nodiscard]] std::size_t offset_in(const member_thunk::page& p, Callback entry)
	{
		return static_cast<std::size_t>(reinterpret_cast<const std::byte*>(entry) -
		                                member_thunk::detail::page_access::address_of(p));
	}
} // namespace

TEST_CASE("fault::sealing registers the thunk entries, and freeing withdraws exactly those", "[fault]")
{
	// Only Windows CFG keeps a list of call targets, but the heap's requests to the back end can be checked anywhere.
	const fault_scope scope;
	faulty_heap h;
	value v{1};
	void* sealed_address = nullptr;
	{
		member_thunk::page sealed = h.allocate_page();
		for (int i = 0; i < 3; ++i)
			sealed_address = reinterpret_cast<void*>(sealed.make_thunk<callback, &value::get>(&v));
		static_cast<void>(sealed.make_thunk<callback>(&v, &value::get)); // data slots are not call targets
		sealed.mark_executable();
		REQUIRE(os_faults::call_target_calls.size() == 1);
		const auto registered = os_faults::call_target_calls.back();
		CHECK(registered.valid);
		CHECK(registered.offsets == std::vector<std::size_t>{0, code_slot, 2 * code_slot, 3 * code_slot});
		CHECK(static_cast<std::byte*>(registered.page) + 2 * code_slot == static_cast<std::byte*>(sealed_address));

		member_thunk::page unsealed = h.allocate_page();
		static_cast<void>(unsealed.make_thunk<callback, &value::get>(&v));
	} // the unsealed page is freed first: it registered nothing, so it withdraws nothing
	REQUIRE(os_faults::call_target_calls.size() == 2);
	const auto withdrawn = os_faults::call_target_calls.back();
	CHECK_FALSE(withdrawn.valid);
	CHECK(withdrawn.offsets == os_faults::call_target_calls.front().offsets);
	CHECK(withdrawn.page == os_faults::call_target_calls.front().page);
}

#if !defined(MEMBER_THUNK_ARCH_X86_32)
namespace
{
	/// Two parameters: a closure moves two argument places, which takes one slot in the direct form and two in the
	/// absolute (indirect) one on every ABI with closures (docs/design.md, "Closures").
	using pair_callback = long (*)(long, long);

	struct adder_pair
	{
		long v;
		long sum(long a, long b) { return v + a + b; }
	};
} // namespace

TEST_CASE("fault::a closure of two slots registers its first slot only, and freeing withdraws exactly the entries",
          "[fault][closures]")
{
	// A heap out of direct reach of the code: every closure jumps absolutely and takes two slots. Its second slot
	// starts inside its code, and must never become a call target (Windows CFG).
	const fault_scope scope;
	member_thunk::heap<member_thunk::null_lock, test::far_from_code<test::failing_os>> h;
	value v{1};
	adder_pair o{100};
	std::vector<std::size_t> entries;
	void* page_address = nullptr;
	{
		member_thunk::page other = h.allocate_page();
		{
			member_thunk::page p = h.allocate_page();
			page_address = member_thunk::detail::page_access::address_of(p);
			const callback first = p.make_thunk<callback, &value::get>(&v);
			std::size_t before = p.size();
			const pair_callback compiled = p.make_closure<pair_callback, &adder_pair::sum>(&o);
			REQUIRE(p.size() - before == 2);
			const callback middle = p.make_thunk<callback>(&v, &value::get);
			before = p.size();
			const pair_callback bound = p.make_closure<pair_callback>(&o, &adder_pair::sum); // its data at the end
			REQUIRE(p.size() - before == 2);
			const callback last = p.make_thunk<callback, &value::get>(&v);
			entries = {offset_in(p, first), offset_in(p, compiled), offset_in(p, middle), offset_in(p, bound),
			           offset_in(p, last)};
			CHECK(entries == std::vector<std::size_t>{0, code_slot, 3 * code_slot, 4 * code_slot, 6 * code_slot});

			// The page handle carries what it made through a move, and seals from there.
			member_thunk::page moved = std::move(p);
			moved.mark_executable();
			REQUIRE(os_faults::call_target_calls.size() == 1);
			const auto registered = os_faults::call_target_calls.back();
			CHECK(registered.valid);
			CHECK(registered.page == page_address);
			CHECK(registered.offsets == entries);
			CHECK(first(nullptr, 1) == 2);
			CHECK(compiled(2, 3) == 105);
			CHECK(middle(nullptr, 4) == 5);
			CHECK(bound(5, 6) == 111);
			CHECK(last(nullptr, 7) == 8);

			// And through a move assignment, which frees the page it held (never sealed: it withdraws nothing).
			other = std::move(moved);
			CHECK(os_faults::call_target_calls.size() == 1);
		}
		CHECK(os_faults::call_target_calls.size() == 1);
	} // `other` holds the sealed page now
	REQUIRE(os_faults::call_target_calls.size() == 2);
	const auto withdrawn = os_faults::call_target_calls.back();
	CHECK_FALSE(withdrawn.valid);
	CHECK(withdrawn.page == page_address);
	CHECK(withdrawn.offsets == entries);
}
#endif
#endif

TEST_CASE("fault::a copy of the stub tables registers its stubs as call targets, never the chunk headers' code",
          "[fault][prebuilt]")
{
	// The runtime_copy way writes the stubs' code into fresh pages and seals it like run-time code; each chunk's
	// first header_slots slots hold the code its stubs share, reached by their direct jumps only.
	namespace stubs = member_thunk::detail::arch::stubs;
	const fault_scope scope;
	member_thunk::detail::stub_sources::force(member_thunk::detail::stub_source::runtime_copy);
	faulty_heap h;
	value v{1};
	{
		const auto u = h.make_unique_thunk<callback, &value::get>(&v);
		CHECK(u.get()(nullptr, 1) == 2);
	}
	REQUIRE(os_faults::call_target_calls.size() == 1);
	const auto registered = os_faults::call_target_calls.front();
	CHECK(registered.valid);
	std::vector<std::size_t> expected;
	for (std::size_t offset = 0; offset < 2 * stubs::table_size; offset += stubs::slot_size)
		if (offset % stubs::chunk_size >= stubs::header_slots * stubs::slot_size)
			expected.push_back(offset);
	CHECK(expected.size() ==
	      2 * stubs::table_size / stubs::chunk_size * (stubs::slots_per_chunk - stubs::header_slots));
	CHECK(registered.offsets == expected);
}

TEST_CASE("fault::decommit and the read-write fallback both fail: the process ends rather than keep a live thunk",
          "[fault][death]")
{
	const auto result = test::run_in_child([] {
		const fault_scope scope;
		faulty_heap h;
		value v{1};
		member_thunk::page p = h.allocate_page();
		static_cast<void>(p.make_thunk<callback, &value::get>(&v));
		p.mark_executable();
		os_faults::fail_every(os_call::decommit);
		os_faults::fail_every(unseal_call);
	});
	CHECK(result.signaled);
	CHECK(result.signal == SIGABRT);
	CHECK_THAT(result.error_output,
	           Catch::Contains(test::prebuilt_build ? "a freed page of prebuilt thunks could not be revoked"
	                                                : "a freed page could not be revoked"));
}

TEST_CASE("fault::release fails in compact: os_error, the region stays, the next compact releases it", "[fault]")
{
	const fault_scope scope;
	faulty_heap h;
	{
		member_thunk::page p = h.allocate_page();
	}
	os_faults::fail_next(os_call::unreserve);
	const auto error = os_error_from([&] { h.compact(); });
	REQUIRE(error);
	CHECK_THAT(error->what(), Catch::Contains("could not release an empty region"));
	CHECK(h.statistics().regions == 1);
	CHECK(h.is_valid());
	h.compact();
	CHECK(h.statistics().regions == 0);
	CHECK(os_faults::reservations.empty());
}

TEST_CASE("fault::injected failures never leak, never break invariants, never leave a wrong thunk",
          "[fault][slow_under_emulation]")
{
	// A deterministic sweep: fail the n-th call of each kind during a fixed workload, for n = 1..12, or until the
	// workload makes fewer than n calls of that kind (the runs for larger n would be the same run, without a fault:
	// most kinds are never called by one of the two back ends). (The reliability work adds a randomised property on
	// top of this.)
	struct live_page
	{
		member_thunk::page page;
		std::vector<std::pair<callback, long>> thunks; // thunk, expected result for argument 1
	};
	for (std::size_t kind = 0; kind < static_cast<std::size_t>(os_call::count); ++kind)
	{
		bool reached = true;
		for (int nth = 1; nth <= 12 && reached; ++nth)
		{
			const fault_scope scope;
			std::vector<value> values(64);
			{
				faulty_heap h;
				std::vector<live_page> pages;
				os_faults::fail_next(static_cast<os_call>(kind), nth);
				for (std::size_t i = 0; i < values.size(); ++i)
				{
					values[i].v = static_cast<long>(i) * 3;
					try
					{
						if (i % 3 == 0 || pages.empty() || pages.back().page.executable())
							pages.push_back({h.allocate_page(), {}});
						auto& p = pages.back();
						const auto t = p.page.make_thunk<callback, &value::get>(&values[i]);
						p.thunks.emplace_back(t, values[i].v + 1);
						if (i % 2 == 1)
							p.page.mark_executable();
						if (i % 5 == 4)
							pages.erase(pages.begin());
						if (i % 11 == 10)
							h.compact();
					}
					catch (const member_thunk::os_error&)
					{
						// Carry on: the heap must stay usable after any failure.
					}
					REQUIRE(h.is_valid());
					REQUIRE(test::writable_executable_mappings().empty());
				}
				// Every thunk of a live sealed page runs the target it was made for.
				for (auto& p : pages)
				{
					if (!p.page.executable())
					{
						try
						{
							p.page.mark_executable();
						}
						catch (const member_thunk::os_error&)
						{
							continue;
						}
					}
					for (const auto& [t, expected] : p.thunks)
						REQUIRE(t(nullptr, 1) == expected);
				}
				pages.clear();
				reached = os_faults::fail_in.at(kind) == 0; // the countdown ran out: the n-th call happened
				os_faults::reset();
				h.compact();
				REQUIRE(h.statistics().regions == 0);
			}
			REQUIRE(os_faults::reservations.empty());
		}
	}
}
