// Real kernel hardening, not simulated. Under memory-deny-write-execute (prctl PR_SET_MDWE) and under a seccomp filter
// equal to systemd's MemoryDenyWriteExecute, each in a forked child: a page of run-time code allocated before the
// policy fails to seal with a clear os_error, the heap then switches to prebuilt stubs by itself, and every form of
// thunk and unique thunk works without an exception, with no mapping ever writable and executable and no writable
// mapping of any code's file. On AArch64 with BTI, thunk pages and stub pages are guarded: an indirect branch anywhere
// but an entry faults.
#include <member_thunk/member_thunk.hpp>

#include "support/backend.hpp"
#include "support/bti.hpp"
#include "support/child.hpp"
#include "support/maps.hpp"
#include "support/stub_maps.hpp"

#include <catch2/catch.hpp>

#include <cerrno>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#if defined(__linux__)
#include <sys/mman.h>
#include <sys/prctl.h>
#endif

#if defined(MEMBER_THUNK_TEST_SECCOMP)
#include <seccomp.h>
#include <sys/shm.h>
#endif

namespace
{
	using callback = long (*)(void*, long);
	using member_thunk::detail::stub_source;
	using member_thunk::detail::stub_sources;

	struct adder
	{
		long base;
		long add(long x) { return base + x; }
	};
} // namespace

#if defined(__linux__)
namespace
{
	// From linux/prctl.h (Linux 6.3); older headers lack them.
	constexpr int pr_set_mdwe = 65;
	constexpr unsigned long pr_mdwe_refuse_exec_gain = 1;

	enum child_exit : int
	{
		passed = 0,
		policy_unavailable = 10,
		no_exception = 11,
		wrong_error = 12,
		not_writable_after = 13,
		cleanup_failed = 14,
		not_prebuilt = 15,
		wrong_result = 16,
		unsafe_mapping = 17,
		unexpected_exception = 18,
		wrong_origin = 19,
	};

	/// Ends the child with `code` after saying why on stderr (the parent shows it).
	[[noreturn]] void child_fails(child_exit code, const std::string& why)
	{
		std::fprintf(stderr, "child: %s\n", why.c_str());
		std::fflush(stderr);
		std::_Exit(code);
	}

	void require_safe_mappings(const char* step)
	{
		const std::string problem = test::code_mapping_problem();
		if (!problem.empty())
			child_fails(unsafe_mapping, std::string(step) + ": " + problem);
	}

	/// Every form of thunk and unique thunk from `h`, which must be prebuilt, from the expected way; the mappings are
	/// checked after each step.
	template<class Heap>
	void check_every_form(Heap& h, const std::string& origin, const char* heap_name)
	{
		adder a{40};
		auto lambda = [&a](long x) { return a.base * 2 + x; };
		const std::string where = heap_name;
		{
			member_thunk::page p = h.allocate_page();
			if (!p.prebuilt())
				child_fails(not_prebuilt, where + ": a page of run-time code under a W^X policy");
			const auto compile_time = p.template make_thunk<callback, &adder::add>(&a);
			const auto run_time = p.template make_thunk<callback>(&a, &adder::add);
			const auto callable = p.template make_thunk<callback>(lambda);
			require_safe_mappings("page written");
			p.mark_executable();
			require_safe_mappings("page sealed");
			if (compile_time(nullptr, 1) != 41 || run_time(nullptr, 2) != 42 || callable(nullptr, 3) != 83)
				child_fails(wrong_result, where + ": a page's thunk returned a wrong result");
			const std::string got = test::stub_origin(reinterpret_cast<const void*>(compile_time));
			if (got != origin)
				child_fails(wrong_origin, where + ": a page's stubs come from " + got + ", not " + origin);
		}
		const auto compile_time = h.template make_unique_thunk<callback, &adder::add>(&a);
		const auto run_time = h.template make_unique_thunk<callback>(&a, &adder::add);
		const auto callable = h.template make_unique_thunk<callback>(lambda);
		require_safe_mappings("unique thunks made");
		if (compile_time.get()(nullptr, 4) != 44 || run_time.get()(nullptr, 5) != 45 ||
		    callable.get()(nullptr, 6) != 86)
			child_fails(wrong_result, where + ": a unique thunk returned a wrong result");
		const std::string got = test::stub_origin(reinterpret_cast<const void*>(run_time.get()));
		if (got != origin)
			child_fails(wrong_origin, where + ": a unique thunk's stubs come from " + got + ", not " + origin);
	}

	/// The free functions, as a heap (see check_every_form).
	struct default_heap_ref
	{
		[[nodiscard]] static member_thunk::page allocate_page() { return member_thunk::allocate_page(); }
		template<class Callback, auto Member, class Class>
		[[nodiscard]] static member_thunk::unique_thunk<Callback> make_unique_thunk(Class* that)
		{
			return member_thunk::make_unique_thunk<Callback, Member>(that);
		}
		template<class Callback, class Class, class Member>
		[[nodiscard]] static member_thunk::unique_thunk<Callback> make_unique_thunk(Class* that, Member member)
		{
			return member_thunk::make_unique_thunk<Callback>(that, member);
		}
		template<class Callback, class Callable>
		[[nodiscard]] static member_thunk::unique_thunk<Callback> make_unique_thunk(Callable& callable)
		{
			return member_thunk::make_unique_thunk<Callback>(callable);
		}
	};

	/// Under a W^X policy put in force by `enforce` (which returns false if this kernel lacks it): a page of run-time
	/// code made before fails to seal with a clear os_error and stays writable; the heap switches to prebuilt stubs
	/// with no exception; every form works from the default heap and from a new heap, by every way that needs no
	/// run-time code; the runtime_copy way, forced, is refused with a clear os_error; cleanup works.
	template<class Enforce>
	void run_under_policy(Enforce enforce)
	{
		adder a{40};
		// Before the policy: a heap whose region of run-time code was probed already, and a page of it.
		member_thunk::heap<member_thunk::slim_lock> before_heap;
		member_thunk::page before = before_heap.allocate_page();
		if (before.prebuilt())
			child_fails(not_prebuilt, "the heap made prebuilt pages before any policy");
		const auto refused = before.make_thunk<callback, &adder::add>(&a);
		if (!enforce())
			std::_Exit(policy_unavailable);
		try
		{
			before.mark_executable();
			child_fails(no_exception, "mark_executable() under the policy did not throw");
		}
		catch (const member_thunk::os_error& e)
		{
			std::fprintf(stderr, "%s\n", e.what());
			const std::string what = e.what();
			if (e.code().value() != EACCES && e.code().value() != EPERM)
				child_fails(wrong_error, "error code " + std::to_string(e.code().value()));
			if (what.find("could not make a page executable") == std::string::npos ||
			    what.find("forbids making memory executable") == std::string::npos)
				child_fails(wrong_error, "message: " + what);
		}
		if (before.executable() || test::protection_of(reinterpret_cast<const void*>(refused)) != "rw-")
			child_fails(not_writable_after, "the refused page is not writable any more");
		// The next page of that heap is prebuilt, and works.
		check_every_form(before_heap, "image_file", "the heap whose seal was refused");
		if (before_heap.statistics().runtime_code)
			child_fails(not_prebuilt, "the heap still reports run-time code");
		// A new heap and the default heap find out by probing, with no exception.
		{
			member_thunk::heap<member_thunk::slim_lock> fresh;
			check_every_form(fresh, "image_file", "a new heap");
		}
		default_heap_ref the_default;
		check_every_form(the_default, "image_file", "the default heap");
		member_thunk::compact();
		// Every way that needs no run-time code works under the policy.
		for (const auto way : {stub_source::sealed_copy, stub_source::image_pool})
		{
			stub_sources::force(way);
			member_thunk::heap<member_thunk::slim_lock> h;
			check_every_form(h, test::way_name(way), "a heap with a forced way");
		}
		// runtime_copy cannot work: forced, it is refused with the policy's reason.
		stub_sources::force(stub_source::runtime_copy);
		try
		{
			member_thunk::heap<member_thunk::slim_lock> h;
			static_cast<void>(h.make_unique_thunk<callback, &adder::add>(&a));
			child_fails(no_exception, "the forced runtime_copy way worked under the policy");
		}
		catch (const member_thunk::os_error& e)
		{
			const std::string what = e.what();
			if (what.find("could not map prebuilt thunks the way a test forced") == std::string::npos ||
			    what.find("forbids making memory executable") == std::string::npos)
				child_fails(wrong_error, "forced runtime_copy: " + what);
		}
		stub_sources::reset();
		// The heap stays usable: more thunks can be written, pages destroyed, regions released.
		static_cast<void>(before.make_thunk<callback>(&a, &adder::add));
		{
			const member_thunk::page gone = std::move(before);
		}
		before_heap.compact();
		member_thunk::compact();
		// What stays is what holds the quarantine of the unique thunks destroyed last: slab pages, no live thunk.
		const auto left = before_heap.statistics();
		if (!before_heap.is_valid() || !member_thunk::detail::default_heap().is_valid() || left.live_pages != 0 ||
		    left.live_unique_thunks != 0 || left.cached_pages != 0 || left.regions > left.slab_pages ||
		    left.committed_bytes != left.slab_pages * test::system_page_size())
			child_fails(cleanup_failed, "cleanup");
		require_safe_mappings("after cleanup");
		std::_Exit(passed);
	}

	/// The parent's side: the child passed, or the policy is unavailable (false is returned, and the caller says
	/// so).
	[[nodiscard]] bool check_child(const test::child_result& result, const char* policy)
	{
		if (result.exited && result.exit_code == policy_unavailable)
			return false;
		INFO("policy: " << policy << "\nchild stderr: " << result.error_output);
		REQUIRE(result.exited);
		CHECK(result.exit_code == passed);
		return true;
	}

	/// Whether the policy is really in force: a fresh read-write page may not become executable. (qemu-user passes
	/// PR_SET_MDWE to the host kernel but never gives guest pages the host's PROT_EXEC, so there it is not.)
	bool exec_gain_refused()
	{
		void* const page = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (page == MAP_FAILED)
			child_fails(wrong_error, "mmap for the policy check");
		const bool refused = ::mprotect(page, 4096, PROT_READ | PROT_EXEC) != 0;
		::munmap(page, 4096);
		return refused;
	}

	bool enforce_mdwe()
	{
		if (::prctl(pr_set_mdwe, pr_mdwe_refuse_exec_gain, 0UL, 0UL, 0UL) != 0)
			return false;
		if (!exec_gain_refused())
		{
			std::fprintf(stderr, "PR_SET_MDWE was accepted but is not enforced here (an emulator?)\n");
			return false;
		}
		return true;
	}
} // namespace

TEST_CASE("hardened::under PR_SET_MDWE, sealing run-time code fails clearly and the heap switches to prebuilt stubs",
          "[hardened][mdwe]")
{
	const auto result = test::run_in_child([] { run_under_policy(&enforce_mdwe); });
	if (!check_child(result, "PR_SET_MDWE"))
	{
		// Not a silent skip: the seccomp test below proves the same on such a kernel, and must run (it is built
		// wherever the kernel runs the tests itself).
		WARN("PR_SET_MDWE: not in force here (Linux 6.3 or later needed; qemu-user does not enforce it): "
		     << result.error_output << "the seccomp test stands in where the kernel runs the tests");
		return;
	}
	WARN("PR_SET_MDWE: ran");
	CHECK_THAT(result.error_output, Catch::Contains("mprotect(PROT_READ|PROT_EXEC) failed because the system forbids "
	                                                "making memory executable"));
}

#if defined(MEMBER_THUNK_TEST_SECCOMP)
namespace
{
	/// The seccomp filter of systemd's MemoryDenyWriteExecute (before systemd 253 used PR_SET_MDWE): EPERM for
	/// mmap/mmap2 with PROT_WRITE and PROT_EXEC both set, mprotect/pkey_mprotect with PROT_EXEC, shmat with SHM_EXEC.
	bool enforce_seccomp_mdwe()
	{
		scmp_filter_ctx filter = ::seccomp_init(SCMP_ACT_ALLOW);
		if (filter == nullptr)
			return false;
		constexpr auto write_exec = static_cast<scmp_datum_t>(PROT_WRITE | PROT_EXEC);
		constexpr auto exec = static_cast<scmp_datum_t>(PROT_EXEC);
		const auto deny = SCMP_ACT_ERRNO(EPERM);
		// The third argument (prot, shmflg) has all of `mask` set. (Not SCMP_A2: a compound literal, which C++ lacks.)
		const auto third_has = [](scmp_datum_t mask) { return scmp_arg_cmp{2, SCMP_CMP_MASKED_EQ, mask, mask}; };
		bool ok = true;
		// mmap2 and pkey_mprotect may not exist on this architecture (libseccomp then adds nothing).
		for (const int call : {SCMP_SYS(mmap), SCMP_SYS(mmap2)})
		{
			const int rc = ::seccomp_rule_add(filter, deny, call, 1, third_has(write_exec));
			ok = ok && (rc == 0 || call != SCMP_SYS(mmap));
		}
		for (const int call : {SCMP_SYS(mprotect), SCMP_SYS(pkey_mprotect)})
		{
			const int rc = ::seccomp_rule_add(filter, deny, call, 1, third_has(exec));
			ok = ok && (rc == 0 || call != SCMP_SYS(mprotect));
		}
		ok = ok &&
		     ::seccomp_rule_add(filter, deny, SCMP_SYS(shmat), 1, third_has(static_cast<scmp_datum_t>(SHM_EXEC))) == 0;
		ok = ok && ::seccomp_load(filter) == 0;
		::seccomp_release(filter);
		if (!ok)
			child_fails(wrong_error, "could not install the seccomp filter");
		if (!exec_gain_refused())
			child_fails(wrong_error, "the seccomp filter does not refuse mprotect(PROT_EXEC)");
		return true;
	}
} // namespace

TEST_CASE("hardened::under systemd's seccomp MemoryDenyWriteExecute, the heap switches to prebuilt stubs",
          "[hardened][seccomp]")
{
	const auto result = test::run_in_child([] { run_under_policy(&enforce_seccomp_mdwe); });
	REQUIRE(check_child(result, "seccomp")); // the stand-in for kernels without PR_SET_MDWE never skips
	WARN("seccomp MemoryDenyWriteExecute: ran");
	CHECK_THAT(result.error_output, Catch::Contains("mprotect(PROT_READ|PROT_EXEC) failed because the system forbids "
	                                                "making memory executable"));
}
#endif
#endif

#if defined(MEMBER_THUNK_ARCH_AARCH64) && defined(__linux__)
TEST_CASE("hardened::with BTI, thunk pages are guarded: the entry works, a branch into the middle faults",
          "[hardened][bti]")
{
	if (!test::cpu_has_bti())
		return;
	adder a{40};
	member_thunk::page p = member_thunk::allocate_page();
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

TEST_CASE("hardened::with BTI, every stub starts with bti c and mapped stubs are guarded", "[hardened][bti]")
{
	if (!test::cpu_has_bti())
		return;
	const test::stub_sources_scope sources;
	const auto way =
	    GENERATE(stub_source::image_file, stub_source::sealed_copy, stub_source::runtime_copy, stub_source::image_pool);
	INFO("forced way: " << test::way_name(way));
	stub_sources::force(way);
	member_thunk::heap<member_thunk::null_lock> h;
	adder a{40};
	const auto u = h.make_unique_thunk<callback, &adder::add>(&a);
	CHECK(test::stub_origin(reinterpret_cast<const void*>(u.get())) == test::way_name(way));
	std::uint32_t first = 0;
	std::memcpy(&first, reinterpret_cast<const void*>(u.get()), sizeof first);
	CHECK(first == 0xd503245fU); // bti c
	CHECK(u.get()(nullptr, 2) == 42);
	// The image pool is the program's own code: guarded only if the program is marked for BTI, which Debian's start
	// files prevent here. The mapped ways are guarded by the library (PROT_BTI), whatever the program.
	if (way == stub_source::image_pool)
		return;
	const auto middle = reinterpret_cast<callback>(reinterpret_cast<std::uintptr_t>(u.get()) + 4);
	const auto result = test::run_in_child([middle] {
		static_cast<void>(middle(nullptr, 2));
		std::_Exit(0); // reached only if the branch was not checked
	});
	CHECK(result.signaled);
	CHECK(result.signal == SIGILL);
	// The closure stubs of the same tables: the same landing pad and the same guard.
	using closure_callback = long (*)(long);
	const auto c = h.make_unique_closure<closure_callback, &adder::add>(&a);
	std::memcpy(&first, reinterpret_cast<const void*>(c.get()), sizeof first);
	CHECK(first == 0xd503245fU); // bti c
	CHECK(c.get()(3) == 43);
	const auto closure_middle = reinterpret_cast<closure_callback>(reinterpret_cast<std::uintptr_t>(c.get()) + 4);
	const auto closure_result = test::run_in_child([closure_middle] {
		static_cast<void>(closure_middle(3));
		std::_Exit(0); // reached only if the branch was not checked
	});
	CHECK(closure_result.signaled);
	CHECK(closure_result.signal == SIGILL);
}
#endif
