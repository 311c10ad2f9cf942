// Golden-byte tests of the AArch64 encoder. They run on any host: the encoder is a pure byte emitter.
#include <member_thunk/detail/arch/aarch64.hpp>
#include <member_thunk/detail/arch/encoder.hpp>

#include <catch2/catch.hpp>

#include <array>
#include <cstddef>
#include <cstdint>

namespace
{
	using member_thunk::detail::arch::aarch64_encoder;

	std::uint32_t word_at(const std::array<std::byte, 32>& slot, std::size_t at)
	{
		std::uint32_t value = 0;
		for (std::size_t i = 0; i < 4; ++i)
			value |= static_cast<std::uint32_t>(slot.at(at + i)) << (8 * i);
		return value;
	}

	std::uint64_t dword_at(const std::array<std::byte, 32>& slot, std::size_t at)
	{
		return word_at(slot, at) | (std::uint64_t{word_at(slot, at + 4)} << 32);
	}
} // namespace

TEST_CASE("encoder_aarch64::thunk bytes", "[encoder][aarch64]")
{
	std::array<std::byte, 32> slot{};
	aarch64_encoder::encode(slot, 0x1122334455667788, 0x99AABBCCDDEEFF00, 0x4000'0000);
	CHECK(word_at(slot, 0) == 0xD503245F);  // bti c
	CHECK(word_at(slot, 4) == 0x58000060);  // ldr x0, #12  -> offset 16
	CHECK(word_at(slot, 8) == 0x58000090);  // ldr x16, #16 -> offset 24
	CHECK(word_at(slot, 12) == 0xD61F0200); // br x16
	CHECK(dword_at(slot, 16) == 0x1122334455667788);
	CHECK(dword_at(slot, 24) == 0x99AABBCCDDEEFF00);
	// Little-endian byte order of the first instruction.
	CHECK(slot[0] == std::byte{0x5F});
	CHECK(slot[3] == std::byte{0xD5});
}

TEST_CASE("encoder_aarch64::literal loads reach their literals", "[encoder][aarch64]")
{
	// LDR (literal): imm19 in bits 5..23 counts words from the instruction; Rt in bits 0..4.
	const auto target_of = [](std::uint32_t insn, std::size_t at) { return at + 4 * ((insn >> 5) & 0x7FFFF); };
	CHECK((aarch64_encoder::ldr_x0_literal_16 & 0x1F) == 0);
	CHECK(target_of(aarch64_encoder::ldr_x0_literal_16, 4) == 16);
	CHECK((aarch64_encoder::ldr_x16_literal_24 & 0x1F) == 16);
	CHECK(target_of(aarch64_encoder::ldr_x16_literal_24, 8) == 24);
	// BR Xn: Rn in bits 5..9 must be x16 (IP0), never x8 or x18.
	CHECK(((aarch64_encoder::br_x16 >> 5) & 0x1F) == 16);
}

TEST_CASE("encoder_aarch64::fill_traps writes brk #0xf000", "[encoder][aarch64]")
{
	std::array<std::byte, 32> slot{};
	aarch64_encoder::fill_traps(slot);
	for (std::size_t at = 0; at < slot.size(); at += 4)
		CHECK(word_at(slot, at) == 0xD43E0000);
}

TEST_CASE("encoder_aarch64::usable at compile time", "[encoder][aarch64]")
{
	constexpr auto slot = [] {
		std::array<std::byte, 32> s{};
		aarch64_encoder::encode(s, 0xAB, 0xCD, 0);
		return s;
	}();
	STATIC_REQUIRE(slot[16] == std::byte{0xAB});
	STATIC_REQUIRE(slot[24] == std::byte{0xCD});
}

TEST_CASE("encoder_aarch64::a target within reach gets a direct b", "[encoder][aarch64][direct]")
{
	constexpr std::uint64_t slot_at = 0x5555'0000;
	std::array<std::byte, 32> slot{};
	aarch64_encoder::encode(slot, 0x1122334455667788, slot_at + 8 + 0x1000, slot_at);
	CHECK(word_at(slot, 0) == 0xD503245F);  // bti c
	CHECK(word_at(slot, 4) == 0x58000060);  // ldr x0, #12 -> offset 16
	CHECK(word_at(slot, 8) == 0x14000400);  // b +0x1000 (0x400 words from the branch)
	CHECK(word_at(slot, 12) == 0xD43E0000); // brk
	CHECK(dword_at(slot, 16) == 0x1122334455667788);
	CHECK(word_at(slot, 24) == 0xD43E0000);
	CHECK(word_at(slot, 28) == 0xD43E0000);

	aarch64_encoder::encode(slot, 0, slot_at + 8 - 0x1000, slot_at);
	CHECK(word_at(slot, 8) == 0x17FFFC00); // b -0x1000: imm26 two's complement
}

TEST_CASE("encoder_aarch64::the direct branch is used exactly up to the limits of imm26", "[encoder][aarch64][direct]")
{
	constexpr std::uint64_t slot_at = 0x40'0000'0000;
	constexpr std::uint64_t branch = slot_at + 8;
	constexpr std::uint64_t max_forward = branch + (std::uint64_t{1} << 27) - 4;
	constexpr std::uint64_t max_backward = branch - (std::uint64_t{1} << 27);
	STATIC_REQUIRE(aarch64_encoder::reaches_directly(slot_at, max_forward));
	STATIC_REQUIRE_FALSE(aarch64_encoder::reaches_directly(slot_at, max_forward + 4));
	STATIC_REQUIRE(aarch64_encoder::reaches_directly(slot_at, max_backward));
	STATIC_REQUIRE_FALSE(aarch64_encoder::reaches_directly(slot_at, max_backward - 4));
	STATIC_REQUIRE_FALSE(aarch64_encoder::reaches_directly(slot_at, branch + 2)); // not an instruction boundary

	std::array<std::byte, 32> slot{};
	aarch64_encoder::encode(slot, 0, max_forward, slot_at);
	CHECK(word_at(slot, 8) == 0x15FFFFFF);
	aarch64_encoder::encode(slot, 0, max_backward, slot_at);
	CHECK(word_at(slot, 8) == 0x16000000);
	aarch64_encoder::encode(slot, 0, max_forward + 4, slot_at);
	CHECK(word_at(slot, 8) == 0x58000090); // out of reach: ldr x16 + br x16
	CHECK(word_at(slot, 12) == 0xD61F0200);
	CHECK(dword_at(slot, 24) == max_forward + 4);
}

TEST_CASE("encoder_aarch64::jump_destination follows b, after an optional bti", "[encoder][aarch64][direct]")
{
	constexpr std::uint64_t at = 0x4000'1000;
	const auto code = [](std::uint32_t first, std::uint32_t second) {
		return [first, second](std::uint64_t a) {
			const std::uint64_t offset = a - at;
			const std::uint32_t word = offset < 4 ? first : second;
			return static_cast<std::byte>((word >> (8 * (offset % 4))) & 0xFFU);
		};
	};
	CHECK(aarch64_encoder::jump_destination(at, code(0x14000040, 0)) == at + 0x100);      // b +0x100
	CHECK(aarch64_encoder::jump_destination(at, code(0xD503245F, 0x17FFFFFF)) == at);     // bti c; b -4
	CHECK(aarch64_encoder::jump_destination(at, code(0xD503249F, 0x14000001)) == at + 8); // bti j; b +4
	CHECK(aarch64_encoder::jump_destination(at, code(0xF9400000, 0x14000001)) == at);     // ldr; b: no
	CHECK(aarch64_encoder::jump_destination(at, code(0x94000010, 0)) == at);              // bl: a call
	CHECK(aarch64_encoder::jump_destination(at, code(aarch64_encoder::br_x16, 0)) == at); // indirect
}
