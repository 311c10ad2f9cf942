// Death tests for the public preconditions: each runs in a forked child, which must end with SIGABRT and say which
// contract it broke. Built twice: with
// run-time code and with prebuilt stubs (MEMBER_THUNK_NO_RUNTIME_CODE).
#include <member_thunk/member_thunk.hpp>

#include "support/child.hpp"

#include <catch2/catch.hpp>

#include <csignal>
#include <optional>
#include <string>
#include <utility>

namespace
{
	using callback = int (*)(void*, int);

	struct adder
	{
		int base;
		int add(int x) { return base + x; }
	};

	template<class Body>
	void expect_contract_violation(Body&& body, const std::string& message)
	{
		const auto result = test::run_in_child(std::forward<Body>(body));
		CHECK(result.signaled);
		CHECK(result.signal == SIGABRT);
		CHECK_THAT(result.error_output, Catch::Contains(message));
	}
} // namespace

TEST_CASE("contracts::using a moved-from page", "[contracts][death]")
{
	const auto moved_from = [] {
		member_thunk::page p = member_thunk::allocate_page();
		member_thunk::page q(std::move(p));
		return p; // NOLINT(bugprone-use-after-move): the point of the test
	};
	expect_contract_violation([&] { static_cast<void>(moved_from().size()); }, "a moved-from member_thunk::page");
	expect_contract_violation([&] { static_cast<void>(moved_from().full()); }, "a moved-from member_thunk::page");
	expect_contract_violation([&] { moved_from().mark_executable(); }, "a moved-from member_thunk::page");
	expect_contract_violation(
	    [&] {
		    adder a{1};
		    static_cast<void>(moved_from().make_thunk<callback, &adder::add>(&a));
	    },
	    "a moved-from member_thunk::page");
}

TEST_CASE("contracts::a moved-from page may be destroyed or assigned to", "[contracts]")
{
	adder a{1};
	member_thunk::page p = member_thunk::allocate_page();
	member_thunk::page q(std::move(p));
	p = member_thunk::allocate_page(); // NOLINT(bugprone-use-after-move): assigning revives it
	const auto t = p.make_thunk<callback, &adder::add>(&a);
	p.mark_executable();
	CHECK(t(nullptr, 1) == 2);
}

TEST_CASE("contracts::a null object pointer", "[contracts][death]")
{
	expect_contract_violation(
	    [] {
		    member_thunk::page p = member_thunk::allocate_page();
		    adder* none = nullptr;
		    static_cast<void>(p.make_thunk<callback, &adder::add>(none));
	    },
	    "null object pointer");
	expect_contract_violation(
	    [] {
		    member_thunk::page p = member_thunk::allocate_page();
		    adder* none = nullptr;
		    static_cast<void>(p.make_thunk<callback>(none, &adder::add));
	    },
	    "null object pointer");
}

TEST_CASE("contracts::a null member pointer", "[contracts][death]")
{
	expect_contract_violation(
	    [] {
		    member_thunk::page p = member_thunk::allocate_page();
		    adder a{1};
		    int (adder::*none)(int) = nullptr;
		    static_cast<void>(p.make_thunk<callback>(&a, none));
	    },
	    "null member function pointer");
}

TEST_CASE("contracts::a heap destroyed while one of its pages is alive", "[contracts][death]")
{
	expect_contract_violation(
	    [] {
		    std::optional<member_thunk::heap<member_thunk::slim_lock>> h(std::in_place);
		    member_thunk::page p = h->allocate_page();
		    h.reset();
	    },
	    "destroyed while some of its pages or unique thunks were still alive");
}
