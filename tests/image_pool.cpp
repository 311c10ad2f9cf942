// The image pool, at its smallest (MEMBER_THUNK_IMAGE_POOL_TABLES=1: this executable's own): what serves when the OS
// refuses both run-time code and every mapping of stubs, shared by every heap of the process, and a clear exception
// once it is exhausted. The pool is process-wide, so this suite is an executable of its own (and ctest runs each test
// case in a process of its own).
#include <member_thunk/member_thunk.hpp>

#include "support/backend.hpp"
#include "support/failing_os.hpp"
#include "support/maps.hpp"
#include "support/stub_maps.hpp"

#include <catch2/catch.hpp>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

static_assert(MEMBER_THUNK_IMAGE_POOL_TABLES == 1, "this suite tests the smallest pool");

namespace
{
	using callback = long (*)(void*, long);
	using test::os_call;
	using test::os_faults;
	namespace stubs = member_thunk::detail::stubs;

	struct tagged
	{
		long tag;
		long get(long x) { return tag * 100 + x; }
	};

	/// An OS that refuses everything a W^X policy and a system without mappable files refuse: run-time code, the
	/// program's file, a sealed memfd. Only the image pool is left.
	struct refuse_everything
	{
		refuse_everything()
		{
			os_faults::reset();
			os_faults::error = EPERM;
			os_faults::refuse_execution = true;
			os_faults::fail_every(os_call::map_image_code);
			os_faults::fail_every(os_call::map_sealed_copy);
		}
		refuse_everything(const refuse_everything&) = delete;
		refuse_everything& operator=(const refuse_everything&) = delete;
		refuse_everything(refuse_everything&&) = delete;
		refuse_everything& operator=(refuse_everything&&) = delete;
		~refuse_everything() { os_faults::reset(); }

		test::stub_sources_scope sources;
	};

	using refused_heap = member_thunk::heap<member_thunk::slim_lock, test::failing_os>;

	[[nodiscard]] std::size_t pool_pages()
	{
		return stubs::pool_size / test::system_page_size();
	}
} // namespace

TEST_CASE("image_pool::pages come from the pool until it is exhausted, then image_pool_exhausted names the macro",
          "[image_pool]")
{
	const refuse_everything policy;
	refused_heap h;
	tagged t{1};
	std::vector<member_thunk::page> pages;
	std::vector<callback> thunks;
	std::optional<member_thunk::image_pool_exhausted> exhausted;
	while (pages.size() <= pool_pages())
	{
		try
		{
			pages.push_back(h.allocate_page());
		}
		catch (const member_thunk::image_pool_exhausted& e)
		{
			exhausted = e;
			break;
		}
		thunks.push_back(pages.back().make_thunk<callback, &tagged::get>(&t));
		pages.back().mark_executable();
	}
	REQUIRE(exhausted);
	CHECK(pages.size() == pool_pages());
	const std::string what = exhausted->what();
	INFO(what);
	CHECK_THAT(what, Catch::Contains("image pool") && Catch::Contains("MEMBER_THUNK_IMAGE_POOL_TABLES"));
	// It says why the other ways were closed.
#if !defined(_WIN32)
	CHECK_THAT(what, Catch::Contains("injected map_image_code") && Catch::Contains("injected map_sealed_copy"));
#endif
	// Catchable as the library's base and as a std::exception.
	const member_thunk::exception& as_base = *exhausted;
	CHECK(std::string(as_base.what()) == what);
	for (std::size_t i = 0; i < thunks.size(); ++i)
	{
		CHECK(test::in_image_pool(reinterpret_cast<const void*>(thunks[i])));
		CHECK(thunks[i](nullptr, static_cast<long>(i)) == 100 + static_cast<long>(i));
	}
	// A unique thunk needs a slab page: none is left either.
	CHECK_THROWS_AS((h.make_unique_thunk<callback, &tagged::get>(&t)), member_thunk::image_pool_exhausted);
	CHECK(h.is_valid());
	// A page given back (and its region released) serves again.
	pages.pop_back();
	h.compact();
	const auto u = h.make_unique_thunk<callback, &tagged::get>(&t);
	CHECK(u.get()(nullptr, 5) == 105);
	CHECK(test::in_image_pool(reinterpret_cast<const void*>(u.get())));
	CHECK(test::writable_executable_mappings().empty());
}

TEST_CASE("image_pool::unique thunks exhaust the pool slot by slot", "[image_pool]")
{
	const refuse_everything policy;
	refused_heap h;
	tagged t{2};
	const std::size_t capacity = pool_pages() * (test::system_page_size() / stubs::chunk_size) * 252;
	std::vector<member_thunk::unique_thunk<callback>> thunks;
	for (std::size_t i = 0; i < capacity; ++i)
		thunks.push_back(h.make_unique_thunk<callback, &tagged::get>(&t));
	CHECK(h.statistics().slab_pages == pool_pages());
	CHECK_THROWS_AS((h.make_unique_thunk<callback, &tagged::get>(&t)), member_thunk::image_pool_exhausted);
	long sum = 0;
	for (const auto& u : thunks)
		sum += u.get()(nullptr, 1);
	CHECK(sum == static_cast<long>(capacity) * 201);
	CHECK(h.is_valid());
}

TEST_CASE("image_pool::the pool is shared by every heap of the process, whatever its OS back end", "[image_pool]")
{
	// One heap over the native back end with the pool forced, one over the failing back end that refuses everything:
	// the same pool, so no page may be handed to both.
	const refuse_everything policy;
	member_thunk::detail::stub_sources::force(member_thunk::detail::stub_source::image_pool);
	member_thunk::heap<member_thunk::slim_lock> native;
	refused_heap refused;
	std::vector<member_thunk::page> pages;
	std::set<const void*> seen;
	std::size_t served = 0;
	for (std::size_t i = 0; i < pool_pages() + 1; ++i)
	{
		try
		{
			pages.push_back(i % 2 == 0 ? native.allocate_page() : refused.allocate_page());
		}
		catch (const member_thunk::image_pool_exhausted&)
		{
			continue;
		}
		++served;
		CHECK(pages.back().prebuilt());
		seen.insert(member_thunk::detail::page_access::address_of(pages.back()));
	}
	CHECK(served == pool_pages());
	CHECK(seen.size() == served);
	pages.clear();
	native.compact();
	refused.compact();
}
