// Golden-byte tests of the x86-64 encoders. They run on any host: the encoders are pure byte emitters.
#include <member_thunk/detail/arch/encoder.hpp>
#include <member_thunk/detail/arch/x86_64.hpp>

#include <catch2/catch.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>

namespace
{
	using member_thunk::detail::arch::x86_64_sysv_encoder;
	using member_thunk::detail::arch::x86_64_win64_encoder;

	std::array<std::byte, 32> bytes(std::initializer_list<int> values)
	{
		std::array<std::byte, 32> out{};
		std::size_t i = 0;
		for (const int v : values)
			out.at(i++) = static_cast<std::byte>(v);
		return out;
	}

	std::array<std::byte, 16> bytes16(std::initializer_list<int> values)
	{
		std::array<std::byte, 16> out{};
		std::size_t i = 0;
		for (const int v : values)
			out.at(i++) = static_cast<std::byte>(v);
		return out;
	}

	template<class Encoder>
	constexpr std::array<std::byte, 32> encode(std::uint64_t bound, std::uint64_t target)
	{
		std::array<std::byte, 32> slot{};
		Encoder::encode(slot, bound, target, 0x7000'0000'0000);
		return slot;
	}
} // namespace

TEST_CASE("encoder_x86_64::sysv thunk bytes", "[encoder][x86_64]")
{
	const auto slot = encode<x86_64_sysv_encoder>(0x1122334455667788, 0x99AABBCCDDEEFF00);
	const auto expected = bytes({
	    0xF3, 0x0F, 0x1E, 0xFA,                                     // endbr64
	    0x48, 0xBF, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, // movabs rdi, 0x1122334455667788
	    0x49, 0xBB, 0x00, 0xFF, 0xEE, 0xDD, 0xCC, 0xBB, 0xAA, 0x99, // movabs r11, 0x99AABBCCDDEEFF00
	    0x41, 0xFF, 0xE3,                                           // jmp r11
	    0xCC, 0xCC, 0xCC, 0xCC, 0xCC,                               // int3 padding
	});
	CHECK(slot == expected);
}

TEST_CASE("encoder_x86_64::win64 thunk replaces rcx", "[encoder][x86_64]")
{
	const auto slot = encode<x86_64_win64_encoder>(0x0000'7FFF'1234'5678, 0x0000'7FFE'0000'1000);
	const auto expected = bytes({
	    0xF3, 0x0F, 0x1E, 0xFA,                                     // endbr64
	    0x48, 0xB9, 0x78, 0x56, 0x34, 0x12, 0xFF, 0x7F, 0x00, 0x00, // movabs rcx, 0x00007FFF12345678
	    0x49, 0xBB, 0x00, 0x10, 0x00, 0x00, 0xFE, 0x7F, 0x00, 0x00, // movabs r11, 0x00007FFE00001000
	    0x41, 0xFF, 0xE3,                                           // jmp r11
	    0xCC, 0xCC, 0xCC, 0xCC, 0xCC,                               // int3 padding
	});
	CHECK(slot == expected);
}

TEST_CASE("encoder_x86_64::the encoders are usable at compile time", "[encoder][x86_64]")
{
	constexpr auto slot = encode<x86_64_sysv_encoder>(1, 2);
	STATIC_REQUIRE(slot[0] == std::byte{0xF3});
	STATIC_REQUIRE(slot[6] == std::byte{0x01});
	STATIC_REQUIRE(slot[16] == std::byte{0x02});
	STATIC_REQUIRE(slot[31] == std::byte{0xCC});
}

TEST_CASE("encoder_x86_64::fill_traps writes int3 everywhere", "[encoder][x86_64]")
{
	std::array<std::byte, 37> code{};
	x86_64_sysv_encoder::fill_traps(code);
	for (const auto b : code)
		CHECK(b == std::byte{0xCC});
}

TEST_CASE("encoder_x86_64::never uses rax, r10 or the stack", "[encoder][x86_64]")
{
	// REX.B 0x49 + B8..BF would target r8..r15; 0x48 B8 would be movabs rax, 0x49 BA r10. Check the exact opcodes
	// used so a change of register cannot slip in: only rdi/rcx (first argument) and r11 (scratch) are written.
	const auto slot = encode<x86_64_sysv_encoder>(0, 0);
	CHECK(slot[4] == std::byte{0x48});
	CHECK(slot[5] == std::byte{0xBF});
	CHECK(slot[14] == std::byte{0x49});
	CHECK(slot[15] == std::byte{0xBB});
	CHECK(slot[24] == std::byte{0x41}); // jmp r11: a jump, so no return address is pushed
	CHECK(slot[25] == std::byte{0xFF});
	CHECK(slot[26] == std::byte{0xE3});
}

namespace
{
	template<class Encoder>
	constexpr std::array<std::byte, 32> encode_at(std::uint64_t slot_address, std::uint64_t bound, std::uint64_t target)
	{
		std::array<std::byte, 32> slot{};
		Encoder::encode(slot, bound, target, slot_address);
		return slot;
	}

	constexpr std::uint64_t slot_at = 0x5555'5555'0000;
	constexpr std::uint64_t jump_end = slot_at + 19; // the displacement counts from the end of the jmp
} // namespace

TEST_CASE("encoder_x86_64::a target within reach gets a direct jmp rel32", "[encoder][x86_64][direct]")
{
	const auto slot = encode_at<x86_64_sysv_encoder>(slot_at, 0x1122334455667788, slot_at + 0x1000);
	const auto expected = bytes({
	    0xF3, 0x0F, 0x1E, 0xFA,                                     // endbr64
	    0x48, 0xBF, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, // movabs rdi, 0x1122334455667788
	    0xE9, 0xED, 0x0F, 0x00, 0x00,                               // jmp rel32 +0xFED (0x1000 - 19)
	    0xCC, 0xCC, 0xCC, 0xCC, 0xCC, 0xCC, 0xCC, 0xCC,             // int3 padding
	    0xCC, 0xCC, 0xCC, 0xCC, 0xCC,                               //
	});
	CHECK(slot == expected);
}

TEST_CASE("encoder_x86_64::a direct jump backwards, and the win64 form", "[encoder][x86_64][direct]")
{
	const auto slot = encode_at<x86_64_win64_encoder>(slot_at, 0x0000'7FFF'1234'5678, slot_at - 0x100);
	const auto expected = bytes({
	    0xF3, 0x0F, 0x1E, 0xFA,                                     // endbr64
	    0x48, 0xB9, 0x78, 0x56, 0x34, 0x12, 0xFF, 0x7F, 0x00, 0x00, // movabs rcx, 0x00007FFF12345678
	    0xE9, 0xED, 0xFE, 0xFF, 0xFF,                               // jmp rel32 -0x113 (-0x100 - 19)
	    0xCC, 0xCC, 0xCC, 0xCC, 0xCC, 0xCC, 0xCC, 0xCC,             // int3 padding
	    0xCC, 0xCC, 0xCC, 0xCC, 0xCC,                               //
	});
	CHECK(slot == expected);
}

TEST_CASE("encoder_x86_64::the direct jump is used exactly up to the limits of rel32", "[encoder][x86_64][direct]")
{
	constexpr std::uint64_t max_forward = jump_end + 0x7FFF'FFFF;
	constexpr std::uint64_t max_backward = jump_end - 0x8000'0000;
	STATIC_REQUIRE(x86_64_sysv_encoder::reaches_directly(slot_at, max_forward));
	STATIC_REQUIRE_FALSE(x86_64_sysv_encoder::reaches_directly(slot_at, max_forward + 1));
	STATIC_REQUIRE(x86_64_sysv_encoder::reaches_directly(slot_at, max_backward));
	STATIC_REQUIRE_FALSE(x86_64_sysv_encoder::reaches_directly(slot_at, max_backward - 1));

	const auto forward = encode_at<x86_64_sysv_encoder>(slot_at, 0, max_forward);
	CHECK(forward[14] == std::byte{0xE9});
	CHECK(forward[15] == std::byte{0xFF});
	CHECK(forward[18] == std::byte{0x7F});
	const auto backward = encode_at<x86_64_sysv_encoder>(slot_at, 0, max_backward);
	CHECK(backward[14] == std::byte{0xE9});
	CHECK(backward[15] == std::byte{0x00});
	CHECK(backward[18] == std::byte{0x80});
	// One byte further either way: the absolute form, with the full target.
	const auto too_far = encode_at<x86_64_sysv_encoder>(slot_at, 0, max_forward + 1);
	CHECK(too_far[14] == std::byte{0x49});
	CHECK(too_far[15] == std::byte{0xBB});
	CHECK(too_far[16] == std::byte{0x13}); // low byte of the target, 0x5555'D555'0012 + 1
	CHECK(too_far[24] == std::byte{0x41});
	const auto too_far_back = encode_at<x86_64_sysv_encoder>(slot_at, 0, max_backward - 1);
	CHECK(too_far_back[14] == std::byte{0x49});
}

TEST_CASE("encoder_x86_64::direct_reach leaves every slot of a region within rel32", "[encoder][x86_64][direct]")
{
	// The heap treats a region as near when both of its ends lie within direct_reach of the code; then every slot
	// in it reaches any target within a 16 MiB margin of that code point.
	constexpr std::uint64_t code = 0x5555'0000'0000;
	constexpr std::uint64_t reach = x86_64_sysv_encoder::direct_reach;
	constexpr std::uint64_t margin = std::uint64_t{1} << 24;
	for (const std::uint64_t slot : {code - reach, code + reach - 32})
		for (const std::uint64_t target : {code - margin + 64, code + margin - 64})
			CHECK(x86_64_sysv_encoder::reaches_directly(slot, target));
}

namespace
{
	/// Code bytes at a fake address, for jump_destination.
	struct code_at
	{
		std::uint64_t base;
		std::array<std::byte, 16> bytes{};

		constexpr std::byte operator()(std::uint64_t address) const
		{
			return bytes.at(static_cast<std::size_t>(address - base));
		}
	};
} // namespace

TEST_CASE("encoder_x86_64::jump_destination follows jmp rel32 and jmp rel8, after an optional endbr64",
          "[encoder][x86_64][direct]")
{
	constexpr std::uint64_t at = 0x4000'1000;
	code_at plain{at};
	plain.bytes = bytes16({0xE9, 0xFB, 0x00, 0x00, 0x00}); // jmp +0xFB: lands at at + 5 + 0xFB
	CHECK(x86_64_sysv_encoder::jump_destination(at, plain) == at + 0x100);
	code_at backwards{at};
	backwards.bytes = bytes16({0xF3, 0x0F, 0x1E, 0xFA, 0xE9, 0xF7, 0xFF, 0xFF, 0xFF}); // endbr64; jmp -9
	CHECK(x86_64_sysv_encoder::jump_destination(at, backwards) == at);
	code_at short_jump{at};
	short_jump.bytes = bytes16({0xEB, 0xFE}); // jmp -2: itself
	CHECK(x86_64_sysv_encoder::jump_destination(at, short_jump) == at);
	code_at short_forward{at};
	short_forward.bytes = bytes16({0xF3, 0x0F, 0x1E, 0xFA, 0xEB, 0x10}); // endbr64; jmp +0x10
	CHECK(x86_64_sysv_encoder::jump_destination(at, short_forward) == at + 4 + 2 + 0x10);
}

TEST_CASE("encoder_x86_64::jump_destination leaves anything else alone", "[encoder][x86_64][direct]")
{
	constexpr std::uint64_t at = 0x4000'1000;
	code_at load_then_jump{at};
	load_then_jump.bytes = bytes16({0x48, 0x8B, 0x3F, 0xE9, 0x00, 0x00, 0x00, 0x00}); // mov rdi, [rdi]; jmp
	CHECK(x86_64_sysv_encoder::jump_destination(at, load_then_jump) == at);
	code_at indirect{at};
	indirect.bytes = bytes16({0x41, 0xFF, 0xE3}); // jmp r11
	CHECK(x86_64_sysv_encoder::jump_destination(at, indirect) == at);
	code_at partial_endbr{at};
	partial_endbr.bytes = bytes16({0xF3, 0x0F, 0x1E, 0xFB, 0xE9, 0x10, 0x00, 0x00, 0x00}); // endbr32, not endbr64
	CHECK(x86_64_sysv_encoder::jump_destination(at, partial_endbr) == at);
}

TEST_CASE("encoder_x86_64::follow_jumps follows a chain, at most four hops", "[encoder][x86_64][direct]")
{
	// Five consecutive `jmp +0` (E9 00 00 00 00): each lands on the next.
	constexpr std::uint64_t at = 0x4000'1000;
	const auto chain = [](std::uint64_t a) {
		return (a - at) % 5 == 0 && a - at < 25 ? std::byte{0xE9} : std::byte{0x00};
	};
	CHECK(member_thunk::detail::arch::follow_jumps<x86_64_sysv_encoder>(at, chain) == at + 20);
	code_at nothing{at};
	nothing.bytes = bytes16({0xC3}); // ret
	CHECK(member_thunk::detail::arch::follow_jumps<x86_64_sysv_encoder>(at, nothing) == at);
}
