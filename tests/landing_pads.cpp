// An indirect branch must land on a landing pad (endbr64/endbr32 under CET IBT, bti under Arm BTI). A thunk out of
// direct reach of its target jumps indirectly, so it must aim at the trampoline, whose address the program takes and
// which the compiler therefore gave a landing pad; only a direct jump may skip the trampoline and go to the member,
// which the compiler may have emitted without one. This file is always compiled optimised (the trampoline is then a
// tail jump, the case where skipping it is possible) and with landing pads (tests/CMakeLists.txt); the member below is
// compiled without one on purpose.
#include <member_thunk/member_thunk.hpp>

#include "support/bti.hpp"
#include "support/child.hpp"
#include "support/far_os.hpp"

#include <catch2/catch.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#if defined(__linux__) && defined(__aarch64__)
#include <sys/mman.h>
#include <unistd.h>
#endif

// Built for x86-64 and AArch64 only (tests/CMakeLists.txt): an i386 thunk always jumps directly (jmp rel32 reaches
// the whole 32-bit address space), so it has no indirect form.
#if defined(MEMBER_THUNK_ARCH_X86_64) || defined(MEMBER_THUNK_ARCH_AARCH64)
// The member, defined in landing_pads_member.cpp, which is compiled without landing pads.
namespace landing_pads_test
{
	struct adder
	{
		long base;
		long add(long x);
	};
} // namespace landing_pads_test

namespace
{
	using callback = long (*)(void*, long);
	using encoder = member_thunk::detail::arch::native_encoder;
	using landing_pads_test::adder;

	const auto read_code = [](std::uint64_t address) { return *reinterpret_cast<const std::byte*>(address); };

	std::uint64_t word_at(std::uint64_t address, std::size_t size)
	{
		std::uint64_t value = 0;
		for (std::size_t i = 0; i < size; ++i)
			value |= static_cast<std::uint64_t>(read_code(address + i)) << (8 * i);
		return value;
	}

	bool starts_with_landing_pad(std::uint64_t address)
	{
#if defined(MEMBER_THUNK_ARCH_X86_64)
		return word_at(address, 4) == 0xFA1E0FF3U; // endbr64
#else
		const auto insn = word_at(address, 4);
		return insn == 0xD503245FU || insn == 0xD50324DFU || insn == 0xD503233FU; // bti c, bti jc, paciasp
#endif
	}

	/// The address an absolute-form thunk jumps to (its literal), or 0 if the thunk uses the direct form.
	std::uint64_t absolute_target(callback thunk)
	{
		const auto at = reinterpret_cast<std::uintptr_t>(thunk);
#if defined(MEMBER_THUNK_ARCH_X86_64)
		return read_code(at + 14) == std::byte{0x49} ? word_at(at + 16, 8) : 0; // movabs r11, target
#else
		return word_at(at + 8, 4) == encoder::ldr_x16_literal_24 ? word_at(at + 24, 8) : 0;
#endif
	}

	/// Where a direct-form thunk jumps, or 0 if it uses the absolute form.
	std::uint64_t direct_target(callback thunk)
	{
		const auto at = reinterpret_cast<std::uintptr_t>(thunk);
#if defined(MEMBER_THUNK_ARCH_X86_64)
		return read_code(at + 14) == std::byte{0xE9} ? encoder::jump_destination(at + 14, read_code) : 0;
#else
		const auto jump = encoder::jump_destination(at + 8, read_code);
		return jump != at + 8 ? jump : 0;
#endif
	}

	const std::uint64_t trampoline = reinterpret_cast<std::uintptr_t>(
	    &member_thunk::detail::trampolines<long, false,
	                                       member_thunk::detail::type_list<long>>::member<adder, &adder::add>::call);
} // namespace

TEST_CASE("landing_pads::the test's premises: an optimised trampoline is a tail jump to a member without a landing pad",
          "[landing_pads]")
{
	const std::uint64_t member = member_thunk::detail::arch::follow_jumps<encoder>(trampoline, read_code);
	CHECK(member != trampoline);
	CHECK(starts_with_landing_pad(trampoline));
	CHECK_FALSE(starts_with_landing_pad(member));
}

TEST_CASE("landing_pads::a thunk out of direct reach jumps indirectly to the trampoline, never past it",
          "[landing_pads][direct]")
{
	test::far_os::reset();
	adder a{40};
	member_thunk::heap<member_thunk::null_lock, test::far_os> far_heap;
	member_thunk::page p = far_heap.allocate_page();
	const auto t = p.make_thunk<callback, &adder::add>(&a);
	p.mark_executable();
	const std::uint64_t target = absolute_target(t);
	REQUIRE(target != 0); // the region is out of reach: the absolute form
	CHECK(target == trampoline);
	CHECK(starts_with_landing_pad(target));
	CHECK(t(nullptr, 2) == 42);
}

TEST_CASE("landing_pads::a thunk in direct reach still skips the trampoline and jumps straight to the member",
          "[landing_pads][direct]")
{
	adder a{40};
	member_thunk::heap<> near_heap;
	member_thunk::page p = near_heap.allocate_page();
	const auto t = p.make_thunk<callback, &adder::add>(&a);
	p.mark_executable();
	const std::uint64_t target = direct_target(t);
	REQUIRE(target != 0); // the heap reserved its region near the code
	CHECK(target == member_thunk::detail::arch::follow_jumps<encoder>(trampoline, read_code));
	CHECK(target != trampoline);
	CHECK(t(nullptr, 2) == 42);
}

#if defined(__linux__) && defined(__aarch64__)
TEST_CASE("landing_pads::with the code pages guarded by BTI, both forms of thunk still run", "[landing_pads][bti]")
{
	if (!test::cpu_has_bti())
		return;
	adder a{40};
	test::far_os::reset();
	member_thunk::heap<member_thunk::null_lock, test::far_os> far_heap;
	member_thunk::heap<> near_heap;
	member_thunk::page far_page = far_heap.allocate_page();
	member_thunk::page near_page = near_heap.allocate_page();
	const auto far_thunk = far_page.make_thunk<callback, &adder::add>(&a);
	const auto near_thunk = near_page.make_thunk<callback, &adder::add>(&a);
	far_page.mark_executable();
	near_page.mark_executable();
	REQUIRE(absolute_target(far_thunk) != 0);
	REQUIRE(direct_target(near_thunk) != 0);
	const auto result = test::run_in_child([&] {
		// Guard the pages of the member and of the trampoline, as the loader does for a BTI-marked program: an
		// indirect branch into them must now land on a `bti`.
		const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
		const std::uint64_t member = member_thunk::detail::arch::follow_jumps<encoder>(trampoline, read_code);
		for (const std::uint64_t code : {member, trampoline})
		{
			const std::uintptr_t start = static_cast<std::uintptr_t>(code) & ~(page - 1);
			constexpr int prot_bti = 0x10;
			if (::mprotect(reinterpret_cast<void*>(start), page, PROT_READ | PROT_EXEC | prot_bti) != 0)
				std::_Exit(3);
		}
		if (near_thunk(nullptr, 1) != 41) // direct `b` to the member: no landing pad needed
			std::_Exit(4);
		if (far_thunk(nullptr, 2) != 42) // `br x16` to the trampoline's `bti c`, then `b` to the member
			std::_Exit(5);
		std::_Exit(0);
	});
	INFO("child stderr: " << result.error_output);
	CHECK(result.exited);
	CHECK(result.exit_code == 0);
}
#endif

#endif
