// Golden-byte tests of the i386 encoder. They run on any host: the encoder is a pure byte emitter.
#include <member_thunk/detail/arch/encoder.hpp>
#include <member_thunk/detail/arch/x86_32.hpp>

#include <catch2/catch.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>

namespace
{
	using member_thunk::detail::arch::x86_32_encoder;

	template<std::size_t N = 32>
	std::array<std::byte, N> bytes(std::initializer_list<int> values)
	{
		std::array<std::byte, N> out{};
		std::size_t i = 0;
		for (const int v : values)
			out.at(i++) = static_cast<std::byte>(v);
		return out;
	}

	constexpr std::array<std::byte, 32> encode_at(std::uint64_t slot_address, std::uint64_t bound, std::uint64_t target)
	{
		std::array<std::byte, 32> slot{};
		x86_32_encoder::encode(slot, bound, target, slot_address);
		return slot;
	}

	constexpr std::uint64_t slot_at = 0x5655'6000;
} // namespace

TEST_CASE("encoder_x86_32::thunk bytes: endbr32, mov dword [esp+4], jmp rel32, traps", "[encoder][x86_32]")
{
	const auto slot = encode_at(slot_at, 0x1122'3344, slot_at + 0x1000);
	const auto expected = bytes({
	    0xF3, 0x0F, 0x1E, 0xFB,                         // endbr32
	    0xC7, 0x44, 0x24, 0x04, 0x44, 0x33, 0x22, 0x11, // mov dword [esp+4], 0x11223344
	    0xE9, 0xEF, 0x0F, 0x00, 0x00,                   // jmp rel32 +0xFEF (0x1000 - 17)
	    0xCC, 0xCC, 0xCC, 0xCC, 0xCC, 0xCC, 0xCC, 0xCC, // int3 padding
	    0xCC, 0xCC, 0xCC, 0xCC, 0xCC, 0xCC, 0xCC,       //
	});
	CHECK(slot == expected);
}

TEST_CASE("encoder_x86_32::a jump backwards", "[encoder][x86_32]")
{
	const auto slot = encode_at(slot_at, 0xFFFF'FFFC, slot_at - 0x100);
	const auto expected = bytes({
	    0xF3, 0x0F, 0x1E, 0xFB,                         // endbr32
	    0xC7, 0x44, 0x24, 0x04, 0xFC, 0xFF, 0xFF, 0xFF, // mov dword [esp+4], 0xFFFFFFFC
	    0xE9, 0xEF, 0xFE, 0xFF, 0xFF,                   // jmp rel32 -0x111 (-0x100 - 17)
	    0xCC, 0xCC, 0xCC, 0xCC, 0xCC, 0xCC, 0xCC, 0xCC, // int3 padding
	    0xCC, 0xCC, 0xCC, 0xCC, 0xCC, 0xCC, 0xCC,       //
	});
	CHECK(slot == expected);
}

TEST_CASE("encoder_x86_32::jumps wrap around the 32-bit address space, both ways", "[encoder][x86_32]")
{
	// From the top of the address space forwards past 4 GiB to a low address: 0x1000 - 0xFFFFF011 = +0x1FEF.
	const auto up = encode_at(0xFFFF'F000, 0, 0x1000);
	CHECK(up[12] == std::byte{0xE9});
	CHECK(up[13] == std::byte{0xEF});
	CHECK(up[14] == std::byte{0x1F});
	CHECK(up[15] == std::byte{0x00});
	CHECK(up[16] == std::byte{0x00});
	// From a low address backwards below 0 to a high one: 0xFFFF0000 - 0x1011 = -0x11011.
	const auto down = encode_at(0x1000, 0, 0xFFFF'0000);
	CHECK(down[12] == std::byte{0xE9});
	CHECK(down[13] == std::byte{0xEF});
	CHECK(down[14] == std::byte{0xEF});
	CHECK(down[15] == std::byte{0xFE});
	CHECK(down[16] == std::byte{0xFF});
	// The farthest targets in both directions, as signed 32-bit displacements, are still the direct jump.
	const auto far_forward = encode_at(slot_at, 0, slot_at + 17 + 0x7FFF'FFFF);
	CHECK(far_forward[13] == std::byte{0xFF});
	CHECK(far_forward[16] == std::byte{0x7F});
	const auto far_backward = encode_at(slot_at, 0, (slot_at + 17 - 0x8000'0000) & 0xFFFF'FFFF);
	CHECK(far_backward[13] == std::byte{0x00});
	CHECK(far_backward[16] == std::byte{0x80});
}

TEST_CASE("encoder_x86_32::every target is within reach", "[encoder][x86_32]")
{
	STATIC_REQUIRE(x86_32_encoder::direct_reach >= std::uint64_t{1} << 32);
	STATIC_REQUIRE(x86_32_encoder::reaches_directly(0, 0xFFFF'FFFF));
	STATIC_REQUIRE(x86_32_encoder::reaches_directly(0xFFFF'FFE0, 0));
	STATIC_REQUIRE(x86_32_encoder::reaches_directly(slot_at, slot_at + 0x8000'0000));
	STATIC_REQUIRE(x86_32_encoder::slot_size == 32);
	STATIC_REQUIRE(x86_32_encoder::slot_alignment == 32);
}

TEST_CASE("encoder_x86_32::the encoder is usable at compile time", "[encoder][x86_32]")
{
	constexpr auto slot = encode_at(slot_at, 1, slot_at + 17);
	STATIC_REQUIRE(slot[3] == std::byte{0xFB});
	STATIC_REQUIRE(slot[8] == std::byte{0x01});
	STATIC_REQUIRE(slot[12] == std::byte{0xE9});
	STATIC_REQUIRE(slot[13] == std::byte{0x00}); // jmp +0: the target is the end of the jump
	STATIC_REQUIRE(slot[31] == std::byte{0xCC});
}

TEST_CASE("encoder_x86_32::fill_traps writes int3 everywhere", "[encoder][x86_32]")
{
	std::array<std::byte, 37> code{};
	x86_32_encoder::fill_traps(code);
	for (const auto b : code)
		CHECK(b == std::byte{0xCC});
}

TEST_CASE("encoder_x86_32::writes only the first stack argument, no register", "[encoder][x86_32]")
{
	// C7 /0 with ModRM 44 (SIB + disp8), SIB 24 (base esp) and disp8 04: exactly [esp+4]. A change to another
	// operand, or to a push/pop or call that moves esp, would show here.
	const auto slot = encode_at(slot_at, 0, slot_at);
	CHECK(slot[4] == std::byte{0xC7});
	CHECK(slot[5] == std::byte{0x44});
	CHECK(slot[6] == std::byte{0x24});
	CHECK(slot[7] == std::byte{0x04});
	CHECK(slot[12] == std::byte{0xE9}); // a jump, so no return address is pushed
	for (std::size_t i = 17; i < slot.size(); ++i)
		CHECK(slot.at(i) == std::byte{0xCC});
}

namespace
{
	/// Code bytes at a fake address, for jump_destination. Addresses wrap around 32 bits like the processor's.
	struct code_at
	{
		std::uint64_t base;
		std::array<std::byte, 16> bytes{};

		constexpr std::byte operator()(std::uint64_t address) const
		{
			return bytes.at(static_cast<std::size_t>((address - base) & 0xFFFF'FFFF));
		}
	};

	code_at make_code(std::uint64_t base, std::initializer_list<int> values)
	{
		return {base, bytes<16>(values)};
	}
} // namespace

TEST_CASE("encoder_x86_32::jump_destination follows jmp rel32 and jmp rel8, after an optional endbr32",
          "[encoder][x86_32]")
{
	constexpr std::uint64_t at = 0x0804'9000;
	CHECK(x86_32_encoder::jump_destination(at, make_code(at, {0xE9, 0xFB, 0x00, 0x00, 0x00})) == at + 0x100);
	CHECK(x86_32_encoder::jump_destination(at, make_code(at, {0xF3, 0x0F, 0x1E, 0xFB, 0xE9, 0xF7, 0xFF, 0xFF, 0xFF})) ==
	      at); // endbr32; jmp -9: back to the start
	CHECK(x86_32_encoder::jump_destination(at, make_code(at, {0xEB, 0xFE})) == at); // jmp -2: itself
	CHECK(x86_32_encoder::jump_destination(at, make_code(at, {0xF3, 0x0F, 0x1E, 0xFB, 0xEB, 0x10})) ==
	      at + 4 + 2 + 0x10);
	CHECK(x86_32_encoder::jump_destination(at, make_code(at, {0xEB, 0x80})) == at + 2 - 0x80); // farthest back
}

TEST_CASE("encoder_x86_32::jump_destination wraps around 32 bits, both ways", "[encoder][x86_32]")
{
	constexpr std::uint64_t top = 0xFFFF'FFF0;
	// jmp rel32 +0x20 from the top: 0xFFFFFFF5 + 0x20 = 0x15 after the wrap.
	CHECK(x86_32_encoder::jump_destination(top, make_code(top, {0xE9, 0x20, 0x00, 0x00, 0x00})) == 0x15);
	// jmp rel8 +0x7F from the top: 0xFFFFFFF2 + 0x7F = 0x71.
	CHECK(x86_32_encoder::jump_destination(top, make_code(top, {0xEB, 0x7F})) == 0x71);
	// jmp rel8 -0x10 from address 0 (after endbr32): 4 + 2 - 0x10 = 0xFFFFFFF6.
	CHECK(x86_32_encoder::jump_destination(0, make_code(0, {0xF3, 0x0F, 0x1E, 0xFB, 0xEB, 0xF0})) == 0xFFFF'FFF6);
	// jmp rel32 -0x100 from 0x10: 0x15 - 0x100 = 0xFFFFFF15.
	CHECK(x86_32_encoder::jump_destination(0x10, make_code(0x10, {0xE9, 0x00, 0xFF, 0xFF, 0xFF})) == 0xFFFF'FF15);
}

TEST_CASE("encoder_x86_32::jump_destination leaves anything else alone", "[encoder][x86_32]")
{
	constexpr std::uint64_t at = 0x0804'9000;
	// mov eax, [esp+4]; jmp: not a leading jump.
	CHECK(x86_32_encoder::jump_destination(at, make_code(at, {0x8B, 0x44, 0x24, 0x04, 0xE9, 0, 0, 0, 0})) == at);
	CHECK(x86_32_encoder::jump_destination(at, make_code(at, {0xFF, 0xE0})) == at); // jmp eax
	// endbr64 is not endbr32: what follows it is not decoded.
	CHECK(x86_32_encoder::jump_destination(at, make_code(at, {0xF3, 0x0F, 0x1E, 0xFA, 0xE9, 0x10, 0, 0, 0})) == at);
	// A thunk itself starts with endbr32 and a mov, not a jump.
	const auto thunk = encode_at(at, 0x1234, at + 0x4000);
	const auto read_thunk = [&](std::uint64_t a) { return thunk.at(static_cast<std::size_t>(a - at)); };
	CHECK(x86_32_encoder::jump_destination(at, read_thunk) == at);
}

TEST_CASE("encoder_x86_32::the thunk's jump decodes to its target, wherever both lie", "[encoder][x86_32]")
{
	for (const std::uint64_t slot : {std::uint64_t{0}, slot_at, std::uint64_t{0xFFFF'FFE0}})
		for (const std::uint64_t target :
		     {std::uint64_t{0}, slot_at - 0x40, slot_at + 0x40, std::uint64_t{0x8000'0000}, std::uint64_t{0xFFFF'FFF0}})
		{
			const auto thunk = encode_at(slot, 0, target);
			const auto read = [&](std::uint64_t a) {
				return thunk.at(static_cast<std::size_t>((a - slot) & 0xFFFF'FFFF));
			};
			CHECK(x86_32_encoder::jump_destination(slot + 12, read) == target);
		}
}

TEST_CASE("encoder_x86_32::follow_jumps follows a chain, at most four hops", "[encoder][x86_32]")
{
	// Five consecutive `jmp +0` (E9 00 00 00 00): each lands on the next.
	constexpr std::uint64_t at = 0x0804'9000;
	const auto chain = [](std::uint64_t a) {
		return (a - at) % 5 == 0 && a - at < 25 ? std::byte{0xE9} : std::byte{0x00};
	};
	CHECK(member_thunk::detail::arch::follow_jumps<x86_32_encoder>(at, chain) == at + 20);
	CHECK(member_thunk::detail::arch::follow_jumps<x86_32_encoder>(at, make_code(at, {0xC3})) == at); // ret
}
