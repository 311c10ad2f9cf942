// Real kernel hardening, not simulated: under memory-deny-write-execute (prctl PR_SET_MDWE), making a page
// executable must fail with a clear exception, and the heap must stay usable for cleanup; on AArch64 with BTI, thunk
// pages are guarded, so an indirect branch anywhere but a thunk's entry faults.
#include <member_thunk/member_thunk.hpp>

#include "support/bti.hpp"
#include "support/child.hpp"
#include "support/maps.hpp"

#include <catch2/catch.hpp>

#include <cerrno>
#include <cstdio>
#include <string>
#include <utility>

#include <csignal>
#include <cstdint>
#include <cstdlib>

#if defined(__linux__)
#include <sys/prctl.h>
#endif

#if defined(__linux__)
namespace
{
	// From linux/prctl.h (Linux 6.3); older headers lack them.
	constexpr int pr_set_mdwe = 65;
	constexpr unsigned long pr_mdwe_refuse_exec_gain = 1;

	struct adder
	{
		long base;
		long add(long x) { return base + x; }
	};

	enum child_exit : int
	{
		passed = 0,
		kernel_lacks_mdwe = 10,
		no_exception = 11,
		wrong_error = 12,
		not_writable_after = 13,
		cleanup_failed = 14,
	};
} // namespace

TEST_CASE("hardened::under PR_SET_MDWE, mark_executable throws a clear os_error and cleanup works", "[hardened][mdwe]")
{
	const auto result = test::run_in_child([] {
		// Allocate before MDWE too, so that a page made earlier can also be cleaned up afterwards.
		member_thunk::page before = member_thunk::allocate_page();
		if (::prctl(pr_set_mdwe, pr_mdwe_refuse_exec_gain, 0UL, 0UL, 0UL) != 0)
			std::_Exit(errno == EINVAL ? kernel_lacks_mdwe : cleanup_failed);
		adder a{40};
		member_thunk::page p = member_thunk::allocate_page();
		const auto thunk = p.make_thunk<long (*)(void*, long), &adder::add>(&a);
		try
		{
			p.mark_executable();
			std::_Exit(no_exception);
		}
		catch (const member_thunk::os_error& e)
		{
			std::fprintf(stderr, "%s\n", e.what());
			const std::string what = e.what();
			if (e.code().value() != EACCES || what.find("could not make a page executable") == std::string::npos ||
			    what.find("forbids making memory executable") == std::string::npos)
				std::_Exit(wrong_error);
		}
		if (p.executable() || test::protection_of(reinterpret_cast<const void*>(thunk)) != "rw-")
			std::_Exit(not_writable_after);
		// The heap stays usable: more thunks can be written, pages destroyed, regions released.
		static_cast<void>(p.make_thunk<long (*)(void*, long)>(&a, &adder::add));
		const auto address = reinterpret_cast<const void*>(thunk);
		{
			const member_thunk::page gone = std::move(p);
		}
		{
			const member_thunk::page gone = std::move(before);
		}
		member_thunk::compact();
		if (test::protection_of(address) == "---" || !member_thunk::detail::default_heap().is_valid())
			std::_Exit(cleanup_failed);
		std::_Exit(passed);
	});
	if (result.exited && result.exit_code == kernel_lacks_mdwe)
	{
		WARN("skipped: this kernel does not support prctl(PR_SET_MDWE) (Linux 6.3 or later needed)");
		return;
	}
	INFO("child stderr: " << result.error_output);
	REQUIRE(result.exited);
	CHECK(result.exit_code == passed);
	CHECK_THAT(result.error_output, Catch::Contains("mprotect(PROT_READ|PROT_EXEC) failed because the system forbids "
	                                                "making memory executable"));
}

#endif

#if defined(MEMBER_THUNK_ARCH_AARCH64) && defined(__linux__)
TEST_CASE("hardened::with BTI, thunk pages are guarded: the entry works, a branch into the middle faults",
          "[hardened][bti]")
{
	if (!test::cpu_has_bti())
		return;
	adder a{40};
	member_thunk::page p = member_thunk::allocate_page();
	using callback = long (*)(void*, long);
	const auto thunk = p.make_thunk<callback, &adder::add>(&a);
	p.mark_executable();
	CHECK(thunk(nullptr, 2) == 42); // `bti c` at the entry accepts the indirect call

	// The second instruction of the thunk is not a landing pad: an indirect call to it must raise a BTI exception.
	const auto middle = reinterpret_cast<callback>(reinterpret_cast<std::uintptr_t>(thunk) + 4);
	const auto result = test::run_in_child([middle] {
		static_cast<void>(middle(nullptr, 2));
		std::_Exit(0); // reached only if the branch was not checked
	});
	CHECK(result.signaled);
	CHECK(result.signal == SIGILL);
}
#endif
