// The validity checks must reject what they are meant to reject, and say which clause failed: each broken invariant
// of a region, and of a heap whose region was corrupted.
#include <member_thunk/member_thunk.hpp>

#include <catch2/catch.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

using member_thunk::detail::region;

namespace
{
	alignas(4096) std::byte fake_memory[4096 * 4];

	void make_valid(region& r)
	{
		r.base = fake_memory;
		r.page_size = 4096;
		r.page_count = 4;
		r.used = 0b0101;
		r.committed = 0b0111;
		r.queued = 0b0010;
		r.kind = &member_thunk::detail::runtime_code_regions<member_thunk::detail::os::native>::kind;
	}

	std::string clause_of(const member_thunk::detail::invariant_violation& v)
	{
		return v ? std::string(v.clause) : std::string("(none)");
	}
} // namespace

TEST_CASE("region::is_valid accepts a consistent region", "[region]")
{
	region r;
	make_valid(r);
	CHECK(r.is_valid());
	CHECK_FALSE(r.first_violation());
	CHECK(r.live_pages() == 2);
	CHECK(r.cached_pages() == 1);
	CHECK(r.first_decommitted_page() == 3);
	CHECK(r.has_free_page());
	CHECK(r.has_decommitted_page());
	r.used = 0b1111;
	r.committed = 0b1111;
	r.queued = 0;
	CHECK(r.is_valid());
	CHECK_FALSE(r.has_free_page());
	CHECK_FALSE(r.has_decommitted_page());
}

TEST_CASE("region::first_violation names each broken clause", "[region]")
{
	region r;
	make_valid(r);
	std::string expected;
	SECTION("no base")
	{
		r.base = nullptr;
		expected = "base != nullptr && page_size != 0";
	}
	SECTION("misaligned base")
	{
		r.base = fake_memory + 8;
		expected = "reinterpret_cast<std::uintptr_t>(base) % page_size == 0";
	}
	SECTION("no pages")
	{
		r.page_count = 0;
		expected = "page_count >= 1 && page_count <= max_pages";
	}
	SECTION("too many pages")
	{
		r.page_count = 65;
		expected = "page_count >= 1 && page_count <= max_pages";
	}
	SECTION("no kind")
	{
		r.kind = nullptr;
		expected = "kind != nullptr";
	}
	SECTION("a used page beyond the region")
	{
		r.used |= 0b10000;
		expected = "(used & ~all_pages()) == 0";
	}
	SECTION("a committed page beyond the region")
	{
		r.committed |= 0b10000;
		expected = "(committed & ~all_pages()) == 0";
	}
	SECTION("a used page that is not committed")
	{
		r.committed = 0b0001;
		expected = "(used & ~committed) == 0";
	}
	SECTION("a queued page that is not cached")
	{
		r.queued = 0b0001;
		expected = "(queued & ~cached()) == 0";
	}
	const auto violation = r.first_violation();
	CHECK_FALSE(r.is_valid());
	CHECK(clause_of(violation) == expected);
	REQUIRE(violation.file != nullptr);
	CHECK_THAT(std::string(violation.file), Catch::EndsWith("region.hpp"));
	CHECK(violation.line > 0);
}

TEST_CASE("region::the heap's check sees a corrupted region and names the clause", "[region][heap]")
{
	member_thunk::heap<member_thunk::null_lock> h;
	member_thunk::page p = h.allocate_page();
	region& r = *member_thunk::detail::page_access::region_of(p);
	REQUIRE(h.is_valid());
	std::string expected;
	SECTION("a live page missing from the bitmap")
	{
		const auto used = r.used;
		r.used = 0;
		expected = "live == live_pages_";
		CHECK(clause_of(h.first_violation()) == expected);
		r.used = used;
	}
	SECTION("a page counted twice")
	{
		const auto used = r.used;
		const auto committed = r.committed;
		r.used |= 0b10;
		r.committed |= 0b10;
		expected = "live == live_pages_";
		CHECK(clause_of(h.first_violation()) == expected);
		r.used = used;
		r.committed = committed;
	}
	SECTION("a cached page the heap does not count")
	{
		const auto committed = r.committed;
		r.committed |= 0b10;
		expected = "cached == cached_pages_";
		CHECK(clause_of(h.first_violation()) == expected);
		r.committed = committed;
	}
	SECTION("a queued page missing from the queue")
	{
		const auto committed = r.committed;
		r.committed |= 0b10;
		r.queued |= 0b10;
		expected = "cached == cached_pages_";
		CHECK(clause_of(h.first_violation()) == expected);
		r.committed = committed;
		r.queued &= ~std::uint64_t{0b10};
	}
	SECTION("a region owned by someone else")
	{
		struct stranger final : member_thunk::detail::page_owner
		{
			void free_page(region&, std::byte*, std::span<const std::uint64_t>) noexcept override {}
			void free_slot(region&, std::byte*) noexcept override {}
		} other;
		const auto owner = r.owner.load();
		r.owner.store(&other);
		expected = "r->owner.load(std::memory_order_relaxed) == &owner";
		CHECK(clause_of(h.first_violation()) == expected);
		r.owner.store(owner);
	}
	SECTION("a broken link")
	{
		r.prev = &r;
		expected = "r->prev == prev";
		CHECK(clause_of(h.first_violation()) == expected);
		r.prev = nullptr;
	}
	SECTION("an invalid region")
	{
		const auto count = r.page_count;
		r.page_count = 0;
		expected = "page_count >= 1 && page_count <= max_pages";
		CHECK(clause_of(h.first_violation()) == expected);
		r.page_count = count;
	}
	CHECK_FALSE(expected.empty());
	CHECK(h.is_valid()); // restored, so the page can go back to its heap
}
