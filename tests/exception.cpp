// Tests of the exception hierarchy: one base catches all, std::exception exactly once, OS errors as system_error.
#include <member_thunk/exception.hpp>

#include <catch2/catch.hpp>

#include <cerrno>
#include <stdexcept>
#include <string>
#include <system_error>
#include <type_traits>

using namespace member_thunk;

TEST_CASE("exception::every exception derives from member_thunk::exception and std::exception", "[exception]")
{
	STATIC_REQUIRE(std::is_base_of_v<member_thunk::exception, page_full>);
	STATIC_REQUIRE(std::is_base_of_v<member_thunk::exception, page_executable>);
	STATIC_REQUIRE(std::is_base_of_v<member_thunk::exception, os_error>);
	STATIC_REQUIRE(std::is_base_of_v<std::exception, page_full>);
	STATIC_REQUIRE(std::is_base_of_v<std::exception, page_executable>);
	STATIC_REQUIRE(std::is_base_of_v<std::system_error, os_error>);
	STATIC_REQUIRE_FALSE(std::is_base_of_v<page_full, page_executable>);
	STATIC_REQUIRE_FALSE(std::is_base_of_v<page_executable, page_full>);
}

TEST_CASE("exception::catchable as std::exception (a single, unambiguous base)", "[exception]")
{
	const auto caught_as_std = [](auto&& thrower) {
		try
		{
			thrower();
		}
		catch (const std::exception& e)
		{
			return std::string(e.what());
		}
		return std::string("not caught");
	};
	CHECK_THAT(caught_as_std([] { throw page_full(); }), Catch::Contains("page is full"));
	CHECK_THAT(caught_as_std([] { throw page_executable(); }), Catch::Contains("already executable"));
	CHECK_THAT(caught_as_std([] { throw os_error(std::error_code(ENOMEM, std::system_category()), "x: mmap failed"); }),
	           Catch::Contains("mmap failed"));
}

TEST_CASE("exception::catchable as member_thunk::exception with the same message", "[exception]")
{
	try
	{
		throw os_error(std::error_code(EACCES, std::system_category()), "member_thunk: could not do it: call failed");
	}
	catch (const member_thunk::exception& e)
	{
		const std::string what = e.what();
		CHECK_THAT(what, Catch::StartsWith("member_thunk: could not do it: call failed"));
		const auto* as_system = dynamic_cast<const std::system_error*>(&e);
		REQUIRE(as_system != nullptr);
		CHECK(as_system->code().value() == EACCES);
		CHECK(std::string(as_system->what()) == what);
	}
}
