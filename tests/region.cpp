// The validity checks must reject what they are meant to reject: each broken invariant of a region, and of a heap
// whose region was corrupted.
#include <member_thunk/member_thunk.hpp>

#include <catch2/catch.hpp>

#include <cstddef>
#include <cstdint>

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
	}
} // namespace

TEST_CASE("region::is_valid accepts a consistent region", "[region]")
{
	region r;
	make_valid(r);
	CHECK(r.is_valid());
	CHECK(r.live_pages() == 2);
	CHECK(r.first_free_page() == 1);
	CHECK(r.has_free_page());
	r.used = 0b1111;
	r.committed = 0b1111;
	CHECK(r.is_valid());
	CHECK_FALSE(r.has_free_page());
}

TEST_CASE("region::is_valid rejects each broken invariant", "[region]")
{
	region r;
	make_valid(r);
	SECTION("no base")
	{
		r.base = nullptr;
	}
	SECTION("misaligned base")
	{
		r.base = fake_memory + 8;
	}
	SECTION("no pages")
	{
		r.page_count = 0;
	}
	SECTION("too many pages")
	{
		r.page_count = 65;
	}
	SECTION("a used page beyond the region")
	{
		r.used |= 0b10000;
	}
	SECTION("a committed page beyond the region")
	{
		r.committed |= 0b10000;
	}
	SECTION("a used page that is not committed")
	{
		r.committed = 0b0001;
	}
	CHECK_FALSE(r.is_valid());
}

TEST_CASE("region::the heap's check sees a corrupted region", "[region][heap]")
{
	member_thunk::heap<member_thunk::null_lock> h;
	member_thunk::page p = h.allocate_page();
	region& r = *member_thunk::detail::page_access::region_of(p);
	REQUIRE(h.is_valid());
	SECTION("a live page missing from the bitmap")
	{
		const auto used = r.used;
		r.used = 0;
		CHECK_FALSE(h.is_valid());
		r.used = used;
	}
	SECTION("a page counted twice")
	{
		const auto used = r.used;
		const auto committed = r.committed;
		r.used |= 0b10;
		r.committed |= 0b10;
		CHECK_FALSE(h.is_valid());
		r.used = used;
		r.committed = committed;
	}
	SECTION("a region owned by someone else")
	{
		struct stranger final : member_thunk::detail::page_owner
		{
			void seal_page(std::byte*, std::size_t, bool&) override {}
			void release_page(region&, std::byte*, std::size_t) noexcept override {}
		} other;
		const auto owner = r.owner.load();
		r.owner.store(&other);
		CHECK_FALSE(h.is_valid());
		r.owner.store(owner);
	}
	SECTION("a broken link")
	{
		r.prev = &r;
		CHECK_FALSE(h.is_valid());
		r.prev = nullptr;
	}
	SECTION("an invalid region")
	{
		const auto count = r.page_count;
		r.page_count = 0;
		CHECK_FALSE(h.is_valid());
		r.page_count = count;
	}
	CHECK(h.is_valid()); // restored, so the page can go back to its heap
}
