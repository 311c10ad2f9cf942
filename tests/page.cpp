// Tests of page: capacity and errors, W^X at each step of its life (seen in /proc/self/maps), traps in unused
// slots, moves, and that a thunk of a destroyed page can no longer run. Built twice: with run-time code and with
// prebuilt stubs (MEMBER_THUNK_NO_RUNTIME_CODE); the tests of written code's jumps run with run-time code only.
#include <member_thunk/member_thunk.hpp>

#include "support/backend.hpp"
#include "support/child.hpp"
#include "support/maps.hpp"
#include "support/revoked.hpp"

#include <catch2/catch.hpp>

#include <array>

#include <csignal>
#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

namespace
{
	using callback = int (*)(void*, int);

	struct adder
	{
		int base;
		int add(int x) { return base + x; }
	};

	const std::byte* code_of(callback cb)
	{
		return reinterpret_cast<const std::byte*>(cb);
	}
} // namespace

TEST_CASE("page::capacity is the page size over the slot size", "[page]")
{
	member_thunk::page p = member_thunk::allocate_page();
	CHECK(p.prebuilt() == test::prebuilt_build);
	if (p.prebuilt())
	{
		// 16-byte data slots; each 4 KiB chunk starts with 4 header slots that hold no thunk.
		CHECK(p.slot_size() == 16);
		CHECK(p.capacity() == test::system_page_size() / 4096 * 252);
	}
	else
	{
		CHECK(p.slot_size() == 32);
		CHECK(member_thunk::detail::arch::native_encoder::slot_size == 32);
		CHECK(p.capacity() == test::system_page_size() / member_thunk::detail::arch::native_encoder::slot_size);
	}
	CHECK(p.free_slots() == p.capacity());
	CHECK(p.size() == 0);
	CHECK_FALSE(p.full());
	CHECK_FALSE(p.executable());
}

TEST_CASE("page::fills up, then throws page_full", "[page]")
{
	member_thunk::page p = member_thunk::allocate_page();
	std::vector<adder> adders(p.capacity()); // 128 with 4 KiB pages, 2048 with 64 KiB pages
	std::vector<callback> thunks;
	for (std::size_t i = 0; i < p.capacity(); ++i)
	{
		REQUIRE_FALSE(p.full());
		adders.at(i).base = static_cast<int>(i) * 10;
		thunks.push_back(p.make_thunk<callback, &adder::add>(&adders.at(i)));
	}
	CHECK(p.full());
	CHECK(p.size() == p.capacity());
	CHECK_THROWS_AS((p.make_thunk<callback, &adder::add>(&adders[0])), member_thunk::page_full);
	CHECK_THROWS_AS((p.make_thunk<callback>(&adders[0], &adder::add)), member_thunk::page_full);
	CHECK(p.size() == p.capacity()); // a failed make_thunk changes nothing
	p.mark_executable();
	for (std::size_t i = 0; i < thunks.size(); ++i)
		REQUIRE(thunks[i](nullptr, 1) == static_cast<int>(i) * 10 + 1);
}

TEST_CASE("page::throws page_executable after mark_executable, which is idempotent", "[page]")
{
	adder a{1};
	member_thunk::page p = member_thunk::allocate_page();
	const auto t = p.make_thunk<callback, &adder::add>(&a);
	p.mark_executable();
	CHECK(p.executable());
	CHECK_THROWS_AS((p.make_thunk<callback, &adder::add>(&a)), member_thunk::page_executable);
	CHECK_THROWS_AS((p.make_thunk<callback>(&a, &adder::add)), member_thunk::page_executable);
	auto lambda = [](int x) { return x; };
	CHECK_THROWS_AS((p.make_thunk<callback>(lambda)), member_thunk::page_executable);
	// The error is catchable as the library's base too, with a clear message.
	try
	{
		static_cast<void>(p.make_thunk<callback, &adder::add>(&a));
		FAIL("no exception");
	}
	catch (const member_thunk::exception& e)
	{
		CHECK_THAT(e.what(), Catch::Contains("already executable"));
	}
	CHECK(p.size() == 1);
	p.mark_executable(); // again: no effect, no error
	CHECK(p.executable());
	CHECK(t(nullptr, 2) == 3);
}

TEST_CASE("page::W^X at every step: rw- while writing, sealed once marked, revoked once freed", "[page][wx]")
{
	// Run-time code: the page is rw- while written, r-x once sealed. Prebuilt stubs: the data page is rw- then r--,
	// the stubs r-x throughout. Never a mapping both writable and executable.
	REQUIRE(test::writable_executable_mappings().empty());
	callback t = nullptr;
	const void* slot = nullptr;
	{
		member_thunk::page p = member_thunk::allocate_page();
		auto lambda = [](int x) { return x; };
		t = p.make_thunk<callback>(lambda);
		slot = test::slot_of(p, t);
		CHECK(test::protection_of(slot) == "rw-");
		CHECK(test::protection_of(code_of(t)) == (p.prebuilt() ? "r-x" : "rw-"));
		CHECK(test::writable_executable_mappings().empty());
		p.mark_executable();
		CHECK(test::protection_of(slot) == test::sealed_protection(p.prebuilt()));
		CHECK(test::protection_of(code_of(t)) == "r-x");
		CHECK(test::writable_executable_mappings().empty());
		CHECK(t(nullptr, 5) == 5);
	}
	// Freed: never executable again, kept read-write and trap-filled (or with emptied slots) for reuse.
	CHECK(test::revocation_of(slot) == "cached");
	if (test::prebuilt_build)
		CHECK(test::slot_traps(slot));
	CHECK(test::writable_executable_mappings().empty());
}

TEST_CASE("page::a new page is all traps, and unused slots stay traps", "[page]")
{
	adder a{1};
	member_thunk::page p = member_thunk::allocate_page();
	const auto t = p.make_thunk<callback, &adder::add>(&a);
	p.mark_executable();
	const std::byte* const code = code_of(t);
	// The thunk starts with its landing pad (endbr64, endbr32, bti c) and ends with traps; every later slot is all
	// traps.
	std::array<std::byte, member_thunk::detail::arch::native_encoder::slot_size> traps{};
	member_thunk::detail::arch::native_encoder::fill_traps(traps);
#if defined(MEMBER_THUNK_ARCH_X86_64) || defined(MEMBER_THUNK_ARCH_X86_32)
	CHECK(code[0] == std::byte{0xF3});
#elif defined(MEMBER_THUNK_ARCH_AARCH64)
	CHECK(code[3] == std::byte{0xD5}); // bti c = d503245f, little-endian
#endif
	if (p.prebuilt())
	{
		// The stub's data slot holds the object and the trampoline; every other slot of the page points at the trap.
		const auto* const data = static_cast<const std::byte*>(test::slot_of(p, t));
		CHECK(test::read_slot(data).bound == reinterpret_cast<std::uintptr_t>(&a));
		CHECK_FALSE(test::slot_traps(data));
		const auto* const page_start = static_cast<const std::byte*>(test::page_of(data));
		std::size_t empty = 0;
		for (std::size_t at = 0; at < test::system_page_size(); at += p.slot_size())
			empty += page_start + at != data && test::slot_traps(page_start + at) ? 1U : 0U;
		CHECK(empty == test::system_page_size() / p.slot_size() - 1);
		return;
	}
	CHECK(code[member_thunk::detail::arch::native_encoder::slot_size - 1] == traps.back());
	bool all_traps = true;
	for (std::size_t i = member_thunk::detail::arch::native_encoder::slot_size;
	     i < p.capacity() * member_thunk::detail::arch::native_encoder::slot_size; ++i)
		all_traps = all_traps && code[i] == traps[i % traps.size()];
	CHECK(all_traps);
}

TEST_CASE("page::thunks are aligned to their slots and consecutive", "[page]")
{
	adder a{1};
	member_thunk::page p = member_thunk::allocate_page();
	const auto first = p.make_thunk<callback, &adder::add>(&a);
	const auto second = p.make_thunk<callback, &adder::add>(&a);
	const std::size_t slot = p.slot_size();
	CHECK(reinterpret_cast<std::uintptr_t>(first) % slot == 0);
	CHECK(reinterpret_cast<std::uintptr_t>(first) % member_thunk::detail::arch::native_encoder::slot_alignment == 0);
	CHECK(reinterpret_cast<std::uintptr_t>(second) - reinterpret_cast<std::uintptr_t>(first) == slot);
}

TEST_CASE("page::moving keeps the thunks, and move assignment frees the old page", "[page]")
{
	adder a{10};
	adder b{20};
	member_thunk::page p = member_thunk::allocate_page();
	const auto ta = p.make_thunk<callback, &adder::add>(&a);
	member_thunk::page moved(std::move(p));
	CHECK(moved.size() == 1);
	moved.mark_executable();
	CHECK(ta(nullptr, 1) == 11);

	member_thunk::page other = member_thunk::allocate_page();
	const auto tb = other.make_thunk<callback, &adder::add>(&b);
	const void* const tb_slot = test::slot_of(other, tb);
	other.mark_executable();
	CHECK(tb(nullptr, 1) == 21);
	other = std::move(moved); // the page holding tb is freed here
	CHECK(test::is_revoked(tb_slot));
	CHECK(other.executable());
	CHECK(ta(nullptr, 2) == 12);

	member_thunk::page& self = other;
	other = std::move(self); // self-move keeps the page
	CHECK(ta(nullptr, 3) == 13);
}

TEST_CASE("page::a call through a thunk of a destroyed page dies at once", "[page][death]")
{
	// Run-time code: the page is read-write traps, not executable (SIGSEGV). Prebuilt stubs: the stub still runs, but
	// its slot now points at the trap (SIGTRAP; EXCEPTION_BREAKPOINT on Windows).
	const auto result = test::run_in_child([] {
		adder a{1};
		callback t = nullptr;
		{
			member_thunk::page p = member_thunk::allocate_page();
			t = p.make_thunk<callback, &adder::add>(&a);
			p.mark_executable();
			if (t(nullptr, 1) != 2)
				std::_Exit(3); // the thunk must work while the page lives
		}
		static_cast<void>(t(nullptr, 1)); // must fault: the page is gone
		std::_Exit(4);
	});
	CHECK(result.signaled);
	CHECK(result.signal == test::stale_call_signal(test::prebuilt_build));
}

// Run-time code only: a prebuilt stub is executable from the start and its slot is written by make_thunk, so a call
// before mark_executable() runs (the contract still forbids it: the slot is writable until then).
#if !defined(MEMBER_THUNK_NO_RUNTIME_CODE)
TEST_CASE("page::a call before mark_executable faults (the page is not executable)", "[page][death]")
{
	const auto result = test::run_in_child([] {
		adder a{1};
		member_thunk::page p = member_thunk::allocate_page();
		const auto t = p.make_thunk<callback, &adder::add>(&a);
		static_cast<void>(t(nullptr, 1));
		std::_Exit(4);
	});
	CHECK(result.signaled);
	CHECK(result.signal == SIGSEGV);
}

// Direct jumps and trampolines skipped are about written code: run-time code only (a prebuilt stub always jumps
// indirectly to the trampoline itself).
TEST_CASE("page::thunks jump directly to their targets: the heap reserves its regions near the code", "[page][direct]")
{
	adder a{1};
	member_thunk::page p = member_thunk::allocate_page();
	const auto compile_time = p.make_thunk<callback, &adder::add>(&a);
	const auto run_time = p.make_thunk<callback>(&a, &adder::add);
	auto lambda = [](int x) { return x; };
	const auto callable = p.make_thunk<callback>(lambda);
	p.mark_executable();
	for (const auto thunk : {compile_time, run_time, callable})
	{
		const std::byte* const code = code_of(thunk);
#if defined(MEMBER_THUNK_ARCH_X86_64)
		CHECK(code[14] == std::byte{0xE9}); // jmp rel32, not movabs r11 + jmp r11
#elif defined(MEMBER_THUNK_ARCH_X86_32)
		CHECK(code[12] == std::byte{0xE9}); // the only form there is
#elif defined(MEMBER_THUNK_ARCH_AARCH64)
		CHECK((code[11] & std::byte{0xFC}) == std::byte{0x14}); // b imm26, not ldr x16 + br x16
#endif
	}
	CHECK(compile_time(nullptr, 2) == 3);
	CHECK(run_time(nullptr, 2) == 3);
	CHECK(callable(nullptr, 2) == 2);
}

// A member the compiler keeps out of line with its ordinary calling convention (external linkage; no inlining and, for
// GCC, no interprocedural changes to its parameters), so that its optimised trampoline is exactly `jmp member`.
namespace page_test
{
	struct out_of_line_adder
	{
		int base;
#if defined(__GNUC__) && !defined(__clang__)
		[[gnu::noipa]]
#endif
		[[gnu::noinline]] int
		add(int x);
	};

	int out_of_line_adder::add(int x)
	{
		return base + x;
	}
} // namespace page_test

TEST_CASE("page::a compile-time member thunk skips a trampoline that is one tail jump", "[page][direct]")
{
	// In an optimised build the compile-time trampoline of a member that is not inlined into it is `jmp member`
	// (see docs/performance.md), and the thunk jumps to the member itself. Whatever the build, the thunk aims where
	// the trampoline's leading jumps lead.
	using encoder = member_thunk::detail::arch::native_encoder;
	page_test::out_of_line_adder a{1};
	member_thunk::page p = member_thunk::allocate_page();
	const auto t = p.make_thunk<callback, &page_test::out_of_line_adder::add>(&a);
	p.mark_executable();
	const auto trampoline = reinterpret_cast<std::uintptr_t>(
	    &member_thunk::detail::trampolines<int, false, member_thunk::detail::type_list<int>>::member<
	        page_test::out_of_line_adder, &page_test::out_of_line_adder::add>::call);
	const auto read = [](std::uint64_t address) { return *reinterpret_cast<const std::byte*>(address); };
	const std::uint64_t expected = member_thunk::detail::arch::follow_jumps<encoder>(trampoline, read);
	// The thunk's own first jump (after its argument set-up) goes exactly there.
	const auto thunk = reinterpret_cast<std::uintptr_t>(t);
	std::uint64_t aimed = 0;
#if defined(MEMBER_THUNK_ARCH_X86_64)
	REQUIRE(read(thunk + 14) == std::byte{0xE9});
	aimed = encoder::jump_destination(thunk + 14, read);
#elif defined(MEMBER_THUNK_ARCH_X86_32)
	REQUIRE(read(thunk + 12) == std::byte{0xE9});
	aimed = encoder::jump_destination(thunk + 12, read);
#elif defined(MEMBER_THUNK_ARCH_AARCH64)
	aimed = encoder::jump_destination(thunk + 8, read);
#endif
	CHECK(aimed == expected);
#if defined(NDEBUG) && (defined(__GNUC__) || defined(__clang__))
	CHECK(expected != trampoline); // optimised: the trampoline was a tail jump, and it was skipped
#endif
	CHECK(t(nullptr, 4) == 5);
}
#else
TEST_CASE("page::a prebuilt stub jumps to the trampoline itself, whatever the member", "[page]")
{
	// The stub's data slot holds the compiled trampoline (which has its landing pad), never what it jumps to.
	adder a{1};
	member_thunk::page p = member_thunk::allocate_page();
	const auto t = p.make_thunk<callback, &adder::add>(&a);
	p.mark_executable();
	const auto trampoline = reinterpret_cast<std::uintptr_t>(
	    &member_thunk::detail::trampolines<int, false,
	                                       member_thunk::detail::type_list<int>>::member<adder, &adder::add>::call);
	CHECK(test::read_slot(test::slot_of(p, t)).target == trampoline);
	CHECK(test::read_slot(test::slot_of(p, t)).bound == reinterpret_cast<std::uintptr_t>(&a));
	CHECK(t(nullptr, 4) == 5);
}
#endif

TEST_CASE("page::sealing is a step of the page's kind: it never goes through the heap that owns the page", "[page]")
{
	// A thread-local heap may be mid-destruction on its exiting thread while another thread seals one of its pages:
	// mark_executable() must not touch the page's owner. Here the owner is replaced by one that dies if it is used.
	struct untouchable final : member_thunk::detail::page_owner
	{
		void free_page(member_thunk::detail::region&, std::byte*, std::span<const std::uint64_t>) noexcept override
		{
			member_thunk::detail::fail_fast("the page's owner was used");
		}
		void free_slot(member_thunk::detail::region&, std::byte*) noexcept override
		{
			member_thunk::detail::fail_fast("the page's owner was used");
		}
	} stranger;
	adder a{40};
	member_thunk::page p = member_thunk::allocate_page();
	const auto t = p.make_thunk<callback, &adder::add>(&a);
	member_thunk::detail::region& r = *member_thunk::detail::page_access::region_of(p);
	member_thunk::detail::page_owner* const owner = r.owner.exchange(&stranger);
	p.mark_executable();
	r.owner.store(owner);
	CHECK(p.executable());
	CHECK(t(nullptr, 2) == 42);
}
