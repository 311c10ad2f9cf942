// Tests of the native OS back end (POSIX here): each call leaves the protection it promises, seen in /proc/self/maps.
#include <member_thunk/detail/os/native.hpp>

#include "support/maps.hpp"

#include <catch2/catch.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include <unistd.h>

using os = member_thunk::detail::os::native;

TEST_CASE("os::page and region sizes come from the system", "[os]")
{
	CHECK(os::page_size() == static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)));
	CHECK(os::region_size() % os::page_size() == 0);
	CHECK(os::region_size() / os::page_size() >= 1);
	CHECK(os::region_size() / os::page_size() <= 64);
}

TEST_CASE("os::reserve, commit, make_executable, decommit, release", "[os]")
{
	const std::size_t page = os::page_size();
	void* base = nullptr;
	REQUIRE(os::reserve(os::region_size(), nullptr, base).ok());
	REQUIRE(base != nullptr);
	auto* const bytes = static_cast<unsigned char*>(base);
	CHECK(reinterpret_cast<std::uintptr_t>(base) % page == 0);
	CHECK(test::protection_of(bytes) == "---");

	REQUIRE(os::commit(bytes + page, page).ok());
	CHECK(test::protection_of(bytes + page) == "rw-");
	CHECK(test::protection_of(bytes) == "---"); // neighbours untouched
	std::memset(bytes + page, 0xAB, page);

	REQUIRE(os::make_executable(bytes + page, page).ok());
	CHECK(test::protection_of(bytes + page) == "r-x");
	CHECK(bytes[page] == 0xAB);
	REQUIRE(os::flush_instruction_cache(bytes + page, page).ok());
	REQUIRE(os::set_call_targets(bytes + page, page, 4, 32, true).ok());

	REQUIRE(os::decommit(bytes + page, page).ok());
	CHECK(test::protection_of(bytes + page) == "---");
	// Decommitted memory is gone: committing again gives fresh zeroed memory, not the old bytes.
	REQUIRE(os::commit(bytes + page, page).ok());
	CHECK(bytes[page] == 0);
	CHECK(bytes[2 * page - 1] == 0);

	REQUIRE(os::release(base, os::region_size()).ok());
	CHECK_FALSE(test::any_mapping_in(reinterpret_cast<std::uintptr_t>(base),
	                                 reinterpret_cast<std::uintptr_t>(base) + os::region_size()));
}

TEST_CASE("os::failures report the call and errno", "[os]")
{
	// An unaligned address makes mprotect fail with EINVAL.
	void* base = nullptr;
	REQUIRE(os::reserve(os::region_size(), nullptr, base).ok());
	const auto status = os::commit(static_cast<char*>(base) + 1, os::page_size());
	CHECK_FALSE(status.ok());
	CHECK(status.error.value() == EINVAL);
	CHECK(std::string(status.call) == "mprotect(PROT_READ|PROT_WRITE)");
	REQUIRE(os::release(base, os::region_size()).ok());
}
