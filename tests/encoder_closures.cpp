// Golden-byte tests of the closure encoders (x86-64 System V and Windows x64, AArch64). They run on any host: the
// encoders are pure byte emitters. Every expected byte is written out below from the architecture manuals, not from
// the encoder: Intel SDM vol. 2 (MOV 89 /r, MOVAPS 0F 28 /r, MOV B8+rd io, JMP E9 cd, JMP FF /4, ENDBR64), Arm ARM
// (ORR shifted register, LDR literal, B, BR, BTI, BRK). For each number of argument places moved, from none to the
// most the ABI allows, both the direct and the absolute form: the bytes, the size the encoder announces, the traps
// after the code up to the end of the last slot, and where the direct jump lands.
#include <member_thunk/detail/arch/aarch64.hpp>
#include <member_thunk/detail/arch/x86_64.hpp>

#include <catch2/catch.hpp>

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

namespace
{
	using member_thunk::detail::arch::aarch64_encoder;
	using member_thunk::detail::arch::x86_64_sysv_encoder;
	using member_thunk::detail::arch::x86_64_win64_encoder;

	using code = std::vector<std::byte>;

	/// Pieces of code (each a braced list of byte values) one after the other.
	code concat(std::initializer_list<std::initializer_list<int>> pieces)
	{
		code out;
		for (const auto& piece : pieces)
			for (const int b : piece)
				out.push_back(static_cast<std::byte>(b));
		return out;
	}

	void append(code& out, const code& more)
	{
		out.insert(out.end(), more.begin(), more.end());
	}

	/// `count` bytes of `value`.
	code repeat(std::size_t count, int value)
	{
		return code(count, static_cast<std::byte>(value));
	}

	/// A 64-bit value, little-endian.
	code le64(std::uint64_t value)
	{
		code out;
		for (int i = 0; i < 8; ++i)
			out.push_back(static_cast<std::byte>((value >> (8 * i)) & 0xFFU));
		return out;
	}

	/// AArch64 instruction words, little-endian.
	code words(std::initializer_list<std::uint32_t> values)
	{
		code out;
		for (const std::uint32_t w : values)
			for (int i = 0; i < 4; ++i)
				out.push_back(static_cast<std::byte>((w >> (8 * i)) & 0xFFU));
		return out;
	}

	std::string hex(const code& bytes)
	{
		static constexpr const char* digits = "0123456789abcdef";
		std::string out;
		for (const std::byte b : bytes)
		{
			out += digits[static_cast<unsigned>(b) >> 4];
			out += digits[static_cast<unsigned>(b) & 0xFU];
			out += ' ';
		}
		return out;
	}

	/// Runs an encoder's encode_closure into `size` bytes that start out as 0x00 (not a trap on either architecture),
	/// so that traps in the result were written by the encoder.
	template<class Encoder>
	code encode(std::size_t size, std::size_t shift, std::uint64_t bound, std::uint64_t target, std::uint64_t address)
	{
		code out(size, std::byte{0x00});
		Encoder::encode_closure(out, shift, bound, target, address);
		return out;
	}

	/// One expected closure: the places moved, whether the jump is direct, the bytes of code before the traps (what
	/// closure_size must say), and the whole expected contents of its slots.
	struct row
	{
		std::size_t shift;
		std::size_t code_size;
		code expected;
	};

	constexpr std::uint64_t bound = 0x1122'3344'5566'7788;
	constexpr std::uint64_t far_target = 0x99AA'BBCC'DDEE'FF00; // out of any direct reach of `at`
	constexpr std::uint64_t at = 0x0000'5555'5555'0000;         // where the closures execute (a slot boundary)
	constexpr std::uint64_t forward = 0x12345;                  // the direct jump's distance from its end

	/// Checks one row: the bytes, the announced size and form, traps to the end of the last slot.
	template<class Encoder>
	void check_row(const row& r, bool direct, std::uint64_t target)
	{
		INFO("shift " << r.shift << (direct ? ", direct" : ", absolute"));
		REQUIRE(r.expected.size() % 32 == 0); // whole slots
		CHECK(Encoder::closure_size(r.shift, direct) == r.code_size);
		CHECK(Encoder::closure_reaches_directly(at, r.shift, target) == direct);
		const code out = encode<Encoder>(r.expected.size(), r.shift, bound, target, at);
		INFO("written:  " << hex(out));
		INFO("expected: " << hex(r.expected));
		CHECK(out == r.expected);
	}
} // namespace

// --- x86-64 -----------------------------------------------------------------------------------------------------
//
// endbr64                F3 0F 1E FA
// mov r/m64, r64         REX.W 89 /r, ModRM = 11 (register) | reg = source | r/m = destination; REX.R extends the
//                        source, REX.B the destination: REX = 0100 W R X B.
//   mov rsi, rdi         48 89 FE    ModRM 11 111(rdi) 110(rsi)
//   mov rdx, rsi         48 89 F2    ModRM 11 110(rsi) 010(rdx)
//   mov rcx, rdx         48 89 D1    ModRM 11 010(rdx) 001(rcx)
//   mov r8, rcx          49 89 C8    REX.B (r8 = 1 000), ModRM 11 001(rcx) 000(r8)
//   mov r9, r8           4D 89 C1    REX.R and REX.B, ModRM 11 000(r8) 001(r9)
//   mov rdx, rcx         48 89 CA    ModRM 11 001(rcx) 010(rdx)
//   mov r8, rdx          49 89 D0    REX.B, ModRM 11 010(rdx) 000(r8)
// movaps xmm1, xmm2/m128 0F 28 /r, reg = destination, r/m = source
//   movaps xmm1, xmm0    0F 28 C8    ModRM 11 001 000
//   movaps xmm2, xmm1    0F 28 D1    ModRM 11 010 001
//   movaps xmm3, xmm2    0F 28 DA    ModRM 11 011 010
// movabs r64, imm64      REX.W B8+r io: rdi 48 BF, rcx 48 B9, r11 49 BB (REX.B, 3)
// jmp rel32              E9 cd, relative to the end of the instruction
// jmp r11                41 FF E3    REX.B, FF /4, ModRM 11 100 011
// int3                   CC

namespace
{
	// The bound pointer's movabs, for each ABI's first argument register.
	code movabs_rdi()
	{
		return concat({{0x48, 0xBF}, {0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11}});
	}
	code movabs_rcx()
	{
		return concat({{0x48, 0xB9}, {0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11}});
	}
	const code endbr64 = concat({{0xF3, 0x0F, 0x1E, 0xFA}});
	// The direct jump, `forward` (0x12345) bytes on from its end.
	const code jmp_forward = concat({{0xE9, 0x45, 0x23, 0x01, 0x00}});
	// The absolute jump to far_target: movabs r11, 0x99AABBCCDDEEFF00; jmp r11.
	const code jmp_far = concat({{0x49, 0xBB, 0x00, 0xFF, 0xEE, 0xDD, 0xCC, 0xBB, 0xAA, 0x99}, {0x41, 0xFF, 0xE3}});

	// System V: the moves of argument register k - 1 to k, k = 1..5 (written last place first).
	const code mov_rsi_rdi = concat({{0x48, 0x89, 0xFE}});
	const code mov_rdx_rsi = concat({{0x48, 0x89, 0xF2}});
	const code mov_rcx_rdx = concat({{0x48, 0x89, 0xD1}});
	const code mov_r8_rcx = concat({{0x49, 0x89, 0xC8}});
	const code mov_r9_r8 = concat({{0x4D, 0x89, 0xC1}});

	// Windows x64: each position moves both its registers.
	const code move_position_1 = concat({{0x48, 0x89, 0xCA}, {0x0F, 0x28, 0xC8}}); // mov rdx, rcx; movaps xmm1, xmm0
	const code move_position_2 = concat({{0x49, 0x89, 0xD0}, {0x0F, 0x28, 0xD1}}); // mov r8, rdx; movaps xmm2, xmm1
	const code move_position_3 = concat({{0x4D, 0x89, 0xC1}, {0x0F, 0x28, 0xDA}}); // mov r9, r8; movaps xmm3, xmm2

	/// endbr64, the moves, the movabs of the bound pointer, the jump, then `traps` int3.
	code x86_closure(std::initializer_list<code> moves, const code& movabs, const code& jump, std::size_t traps)
	{
		code out = endbr64;
		for (const code& m : moves)
			append(out, m);
		append(out, movabs);
		append(out, jump);
		append(out, repeat(traps, 0xCC));
		return out;
	}

	// System V sizes: 4 + 3 per move + 10 + 5 (direct) or 13 (absolute).
	std::vector<row> sysv_rows(const code& jump, bool direct)
	{
		const code& j = jump;
		if (direct)
			return {
			    {0, 19, x86_closure({}, movabs_rdi(), j, 13)},
			    {1, 22, x86_closure({mov_rsi_rdi}, movabs_rdi(), j, 10)},
			    {2, 25, x86_closure({mov_rdx_rsi, mov_rsi_rdi}, movabs_rdi(), j, 7)},
			    {3, 28, x86_closure({mov_rcx_rdx, mov_rdx_rsi, mov_rsi_rdi}, movabs_rdi(), j, 4)},
			    {4, 31, x86_closure({mov_r8_rcx, mov_rcx_rdx, mov_rdx_rsi, mov_rsi_rdi}, movabs_rdi(), j, 1)},
			    // 34 bytes: the closure takes two slots.
			    {5, 34,
			     x86_closure({mov_r9_r8, mov_r8_rcx, mov_rcx_rdx, mov_rdx_rsi, mov_rsi_rdi}, movabs_rdi(), j, 30)},
			};
		return {
		    {0, 27, x86_closure({}, movabs_rdi(), j, 5)},
		    {1, 30, x86_closure({mov_rsi_rdi}, movabs_rdi(), j, 2)},
		    {2, 33, x86_closure({mov_rdx_rsi, mov_rsi_rdi}, movabs_rdi(), j, 31)},
		    {3, 36, x86_closure({mov_rcx_rdx, mov_rdx_rsi, mov_rsi_rdi}, movabs_rdi(), j, 28)},
		    {4, 39, x86_closure({mov_r8_rcx, mov_rcx_rdx, mov_rdx_rsi, mov_rsi_rdi}, movabs_rdi(), j, 25)},
		    {5, 42, x86_closure({mov_r9_r8, mov_r8_rcx, mov_rcx_rdx, mov_rdx_rsi, mov_rsi_rdi}, movabs_rdi(), j, 22)},
		};
	}

	// Windows x64 sizes: 4 + 6 per position + 10 + 5 (direct) or 13 (absolute).
	std::vector<row> win64_rows(const code& jump, bool direct)
	{
		const code& j = jump;
		if (direct)
			return {
			    {0, 19, x86_closure({}, movabs_rcx(), j, 13)},
			    {1, 25, x86_closure({move_position_1}, movabs_rcx(), j, 7)},
			    {2, 31, x86_closure({move_position_2, move_position_1}, movabs_rcx(), j, 1)},
			    {3, 37, x86_closure({move_position_3, move_position_2, move_position_1}, movabs_rcx(), j, 27)},
			};
		return {
		    {0, 27, x86_closure({}, movabs_rcx(), j, 5)},
		    {1, 33, x86_closure({move_position_1}, movabs_rcx(), j, 31)},
		    {2, 39, x86_closure({move_position_2, move_position_1}, movabs_rcx(), j, 25)},
		    {3, 45, x86_closure({move_position_3, move_position_2, move_position_1}, movabs_rcx(), j, 19)},
		};
	}

	/// Where an x86 `jmp rel32` at `jump` (E9 cd) lands: its end plus the sign-extended displacement.
	std::uint64_t x86_landing(const code& bytes, std::size_t jump)
	{
		REQUIRE(bytes.at(jump) == std::byte{0xE9});
		std::uint64_t raw = 0;
		for (std::size_t i = 0; i < 4; ++i)
			raw |= static_cast<std::uint64_t>(bytes.at(jump + 1 + i)) << (8 * i);
		const std::uint64_t displacement = (raw & 0x8000'0000U) != 0 ? raw | 0xFFFF'FFFF'0000'0000U : raw;
		return at + jump + 5 + displacement;
	}
} // namespace

TEST_CASE("encoder_closures::System V, direct jump, 0 to 5 integer registers moved", "[encoder][closure][x86_64]")
{
	for (const row& r : sysv_rows(jmp_forward, true))
	{
		const std::uint64_t target = at + r.code_size + forward;
		check_row<x86_64_sysv_encoder>(r, true, target);
		CHECK(x86_landing(r.expected, r.code_size - 5) == target);
	}
}

TEST_CASE("encoder_closures::System V, absolute jump, 0 to 5 integer registers moved", "[encoder][closure][x86_64]")
{
	for (const row& r : sysv_rows(jmp_far, false))
		check_row<x86_64_sysv_encoder>(r, false, far_target);
}

TEST_CASE("encoder_closures::Windows x64, direct jump, 0 to 3 positions moved", "[encoder][closure][x86_64]")
{
	for (const row& r : win64_rows(jmp_forward, true))
	{
		const std::uint64_t target = at + r.code_size + forward;
		check_row<x86_64_win64_encoder>(r, true, target);
		CHECK(x86_landing(r.expected, r.code_size - 5) == target);
	}
}

TEST_CASE("encoder_closures::Windows x64, absolute jump, 0 to 3 positions moved", "[encoder][closure][x86_64]")
{
	for (const row& r : win64_rows(jmp_far, false))
		check_row<x86_64_win64_encoder>(r, false, far_target);
}

TEST_CASE("encoder_closures::x86-64 direct jump backwards, at the limits of rel32", "[encoder][closure][x86_64]")
{
	// System V, five moves (the two-slot closure): the jump ends at offset 34.
	constexpr std::uint64_t end = at + 34;
	const code moves_5 =
	    concat({{0x4D, 0x89, 0xC1}, {0x49, 0x89, 0xC8}, {0x48, 0x89, 0xD1}, {0x48, 0x89, 0xF2}, {0x48, 0x89, 0xFE}});
	const auto with_jump = [&](std::initializer_list<int> jump, std::size_t traps) {
		code out = endbr64;
		append(out, moves_5);
		append(out, movabs_rdi());
		append(out, concat({jump}));
		append(out, repeat(traps, 0xCC));
		return out;
	};
	// The farthest back: -2^31 (E9 00 00 00 80), and the farthest forward: 2^31 - 1 (E9 FF FF FF 7F).
	const std::uint64_t max_backward = end - 0x8000'0000;
	const std::uint64_t max_forward = end + 0x7FFF'FFFF;
	CHECK(encode<x86_64_sysv_encoder>(64, 5, bound, max_backward, at) == with_jump({0xE9, 0x00, 0x00, 0x00, 0x80}, 30));
	CHECK(encode<x86_64_sysv_encoder>(64, 5, bound, max_forward, at) == with_jump({0xE9, 0xFF, 0xFF, 0xFF, 0x7F}, 30));
	CHECK(x86_landing(encode<x86_64_sysv_encoder>(64, 5, bound, max_backward, at), 29) == max_backward);
	// A short way back: -0x100 from the end (E9 00 FF FF FF).
	CHECK(encode<x86_64_sysv_encoder>(64, 5, bound, end - 0x100, at) == with_jump({0xE9, 0x00, 0xFF, 0xFF, 0xFF}, 30));
	// One byte beyond either limit: the absolute form, with the whole target in the movabs.
	for (const std::uint64_t target : {max_backward - 1, max_forward + 1})
	{
		CHECK_FALSE(x86_64_sysv_encoder::closure_reaches_directly(at, 5, target));
		code expected = endbr64;
		append(expected, moves_5);
		append(expected, movabs_rdi());
		append(expected, concat({{0x49, 0xBB}}));
		append(expected, le64(target));
		append(expected, concat({{0x41, 0xFF, 0xE3}}));
		append(expected, repeat(22, 0xCC));
		CHECK(encode<x86_64_sysv_encoder>(64, 5, bound, target, at) == expected);
	}
	CHECK(x86_64_sysv_encoder::closure_reaches_directly(at, 5, max_backward));
	CHECK(x86_64_sysv_encoder::closure_reaches_directly(at, 5, max_forward));
}

TEST_CASE("encoder_closures::x86-64 the reach is counted from the end of each closure's own jump",
          "[encoder][closure][x86_64]")
{
	// The direct jump ends at offset 19 + 3 * shift (System V) or 19 + 6 * shift (Windows x64): a target exactly
	// 2^31 - 1 past that end is in reach, one more byte is not, whatever the shift.
	for (std::size_t shift = 0; shift <= 5; ++shift)
	{
		const std::uint64_t end = at + 19 + 3 * shift;
		CHECK(x86_64_sysv_encoder::closure_reaches_directly(at, shift, end + 0x7FFF'FFFF));
		CHECK_FALSE(x86_64_sysv_encoder::closure_reaches_directly(at, shift, end + 0x8000'0000));
		CHECK(x86_64_sysv_encoder::closure_reaches_directly(at, shift, end - 0x8000'0000));
		CHECK_FALSE(x86_64_sysv_encoder::closure_reaches_directly(at, shift, end - 0x8000'0001));
	}
	for (std::size_t shift = 0; shift <= 3; ++shift)
	{
		const std::uint64_t end = at + 19 + 6 * shift;
		CHECK(x86_64_win64_encoder::closure_reaches_directly(at, shift, end + 0x7FFF'FFFF));
		CHECK_FALSE(x86_64_win64_encoder::closure_reaches_directly(at, shift, end + 0x8000'0000));
		CHECK(x86_64_win64_encoder::closure_reaches_directly(at, shift, end - 0x8000'0000));
		CHECK_FALSE(x86_64_win64_encoder::closure_reaches_directly(at, shift, end - 0x8000'0001));
	}
}

// --- AArch64 ----------------------------------------------------------------------------------------------------
//
// bti c                  D503245F
// mov Xd, Xm             ORR Xd, XZR, Xm (shifted register, 64-bit): 1 01 01010 00 0 Rm 000000 11111 Rd
//                        = AA0003E0 | Rm << 16 | Rd
//   mov x1, x0  AA0003E1    mov x2, x1  AA0103E2    mov x3, x2  AA0203E3    mov x4, x3  AA0303E4
//   mov x5, x4  AA0403E5    mov x6, x5  AA0503E6    mov x7, x6  AA0603E7
// ldr Xt, label          LDR (literal, 64-bit): 01 011 0 00 imm19 Rt = 58000000 | imm19 << 5 | Rt, imm19 in words
//   ldr x0, +8   58000040   ldr x0, +12  58000060   ldr x0, +16  58000080
//   ldr x16, +16 58000090   ldr x16, +20 580000B0
// b label                000101 imm26 = 14000000 | imm26, in words from the branch itself
// br x16                 1101011 0000 11111 000000 10000 00000 = D61F0200
// brk #0xf000            11010100 001 imm16 00000 = D43E0000
// The literals (bound, then the target of the indirect form) follow the instructions, 8-byte aligned.

namespace
{
	constexpr std::uint32_t bti_c = 0xD503245F;
	constexpr std::uint32_t brk = 0xD43E0000;
	constexpr std::uint32_t br_x16 = 0xD61F0200;
	constexpr std::uint32_t mov_x1_x0 = 0xAA0003E1;
	constexpr std::uint32_t mov_x2_x1 = 0xAA0103E2;
	constexpr std::uint32_t mov_x3_x2 = 0xAA0203E3;
	constexpr std::uint32_t mov_x4_x3 = 0xAA0303E4;
	constexpr std::uint32_t mov_x5_x4 = 0xAA0403E5;
	constexpr std::uint32_t mov_x6_x5 = 0xAA0503E6;
	constexpr std::uint32_t mov_x7_x6 = 0xAA0603E7;
	constexpr std::uint32_t ldr_x0_8 = 0x58000040;
	constexpr std::uint32_t ldr_x0_12 = 0x58000060;
	constexpr std::uint32_t ldr_x0_16 = 0x58000080;
	constexpr std::uint32_t ldr_x16_16 = 0x58000090;
	constexpr std::uint32_t ldr_x16_20 = 0x580000B0;
	constexpr std::uint32_t b_0x1000 = 0x14000400; // b +0x1000 (0x400 words)

	/// Instructions, then the literals, then `traps` brk.
	code a64_closure(std::initializer_list<std::uint32_t> instructions, std::initializer_list<std::uint64_t> literals,
	                 std::size_t traps)
	{
		code out = words(instructions);
		for (const std::uint64_t literal : literals)
			append(out, le64(literal));
		for (std::size_t i = 0; i < traps; ++i)
			append(out, words({brk}));
		return out;
	}

	// Direct: bti c, the moves, ldr x0, b, (a brk to align the literal), the bound pointer.
	std::vector<row> a64_direct_rows()
	{
		return {
		    {0, 24, a64_closure({bti_c, ldr_x0_12, b_0x1000, brk}, {bound}, 2)},
		    {1, 24, a64_closure({bti_c, mov_x1_x0, ldr_x0_8, b_0x1000}, {bound}, 2)},
		    {2, 32, a64_closure({bti_c, mov_x2_x1, mov_x1_x0, ldr_x0_12, b_0x1000, brk}, {bound}, 0)},
		    {3, 32, a64_closure({bti_c, mov_x3_x2, mov_x2_x1, mov_x1_x0, ldr_x0_8, b_0x1000}, {bound}, 0)},
		    {4, 40,
		     a64_closure({bti_c, mov_x4_x3, mov_x3_x2, mov_x2_x1, mov_x1_x0, ldr_x0_12, b_0x1000, brk}, {bound}, 6)},
		    {5, 40,
		     a64_closure({bti_c, mov_x5_x4, mov_x4_x3, mov_x3_x2, mov_x2_x1, mov_x1_x0, ldr_x0_8, b_0x1000}, {bound},
		                 6)},
		    {6, 48,
		     a64_closure(
		         {bti_c, mov_x6_x5, mov_x5_x4, mov_x4_x3, mov_x3_x2, mov_x2_x1, mov_x1_x0, ldr_x0_12, b_0x1000, brk},
		         {bound}, 4)},
		    {7, 48,
		     a64_closure({bti_c, mov_x7_x6, mov_x6_x5, mov_x5_x4, mov_x4_x3, mov_x3_x2, mov_x2_x1, mov_x1_x0, ldr_x0_8,
		                  b_0x1000},
		                 {bound}, 4)},
		};
	}

	// Indirect: bti c, the moves, ldr x0, ldr x16, br x16, (a brk to align), the bound pointer, the target.
	std::vector<row> a64_indirect_rows()
	{
		const std::uint64_t t = far_target;
		return {
		    {0, 32, a64_closure({bti_c, ldr_x0_12, ldr_x16_16, br_x16}, {bound, t}, 0)},
		    {1, 40, a64_closure({bti_c, mov_x1_x0, ldr_x0_16, ldr_x16_20, br_x16, brk}, {bound, t}, 6)},
		    {2, 40, a64_closure({bti_c, mov_x2_x1, mov_x1_x0, ldr_x0_12, ldr_x16_16, br_x16}, {bound, t}, 6)},
		    {3, 48,
		     a64_closure({bti_c, mov_x3_x2, mov_x2_x1, mov_x1_x0, ldr_x0_16, ldr_x16_20, br_x16, brk}, {bound, t}, 4)},
		    {4, 48,
		     a64_closure({bti_c, mov_x4_x3, mov_x3_x2, mov_x2_x1, mov_x1_x0, ldr_x0_12, ldr_x16_16, br_x16}, {bound, t},
		                 4)},
		    {5, 56,
		     a64_closure(
		         {bti_c, mov_x5_x4, mov_x4_x3, mov_x3_x2, mov_x2_x1, mov_x1_x0, ldr_x0_16, ldr_x16_20, br_x16, brk},
		         {bound, t}, 2)},
		    {6, 56,
		     a64_closure({bti_c, mov_x6_x5, mov_x5_x4, mov_x4_x3, mov_x3_x2, mov_x2_x1, mov_x1_x0, ldr_x0_12,
		                  ldr_x16_16, br_x16},
		                 {bound, t}, 2)},
		    {7, 64,
		     a64_closure({bti_c, mov_x7_x6, mov_x6_x5, mov_x5_x4, mov_x4_x3, mov_x3_x2, mov_x2_x1, mov_x1_x0, ldr_x0_16,
		                  ldr_x16_20, br_x16, brk},
		                 {bound, t}, 0)},
		};
	}

	std::uint32_t word_at(const code& bytes, std::size_t offset)
	{
		std::uint32_t value = 0;
		for (std::size_t i = 0; i < 4; ++i)
			value |= static_cast<std::uint32_t>(bytes.at(offset + i)) << (8 * i);
		return value;
	}

	/// Where an AArch64 `b` at `offset` lands: the branch plus the sign-extended imm26 words.
	std::uint64_t a64_landing(const code& bytes, std::size_t offset)
	{
		const std::uint32_t insn = word_at(bytes, offset);
		REQUIRE((insn & 0xFC00'0000U) == 0x1400'0000U);
		const std::uint64_t imm = insn & 0x03FF'FFFFU;
		const std::uint64_t words_away = (imm & 0x0200'0000U) != 0 ? imm | 0xFFFF'FFFF'FC00'0000U : imm;
		return at + offset + words_away * 4;
	}
} // namespace

TEST_CASE("encoder_closures::AArch64, direct branch, 0 to 7 registers moved", "[encoder][closure][aarch64]")
{
	for (const row& r : a64_direct_rows())
	{
		// The branch follows bti c, the moves and ldr x0.
		const std::size_t branch = 4 * (r.shift + 2);
		const std::uint64_t target = at + branch + 0x1000;
		check_row<aarch64_encoder>(r, true, target);
		CHECK(a64_landing(r.expected, branch) == target);
	}
}

TEST_CASE("encoder_closures::AArch64, indirect branch, 0 to 7 registers moved", "[encoder][closure][aarch64]")
{
	for (const row& r : a64_indirect_rows())
		check_row<aarch64_encoder>(r, false, far_target);
}

TEST_CASE("encoder_closures::AArch64 direct branch at the limits of imm26", "[encoder][closure][aarch64]")
{
	for (std::size_t shift = 0; shift <= 7; ++shift)
	{
		INFO("shift " << shift);
		const std::size_t offset = 4 * (shift + 2);
		const std::uint64_t branch = at + offset;
		const std::uint64_t max_forward = branch + (std::uint64_t{1} << 27) - 4; // imm26 = 0x1FFFFFF
		const std::uint64_t max_backward = branch - (std::uint64_t{1} << 27);    // imm26 = 0x2000000
		CHECK(aarch64_encoder::closure_reaches_directly(at, shift, max_forward));
		CHECK(aarch64_encoder::closure_reaches_directly(at, shift, max_backward));
		CHECK_FALSE(aarch64_encoder::closure_reaches_directly(at, shift, max_forward + 4));
		CHECK_FALSE(aarch64_encoder::closure_reaches_directly(at, shift, max_backward - 4));
		CHECK_FALSE(aarch64_encoder::closure_reaches_directly(at, shift, branch + 2)); // not an instruction
		const code forward_code = encode<aarch64_encoder>(64, shift, bound, max_forward, at);
		CHECK(word_at(forward_code, offset) == 0x15FFFFFFU);
		CHECK(a64_landing(forward_code, offset) == max_forward);
		const code backward_code = encode<aarch64_encoder>(64, shift, bound, max_backward, at);
		CHECK(word_at(backward_code, offset) == 0x16000000U);
		CHECK(a64_landing(backward_code, offset) == max_backward);
		// Out of reach: ldr x16 from the literal after the bound pointer, br x16.
		const code beyond = encode<aarch64_encoder>(64, shift, bound, max_forward + 4, at);
		CHECK((word_at(beyond, offset) & 0xFF00'001FU) == 0x5800'0010U); // ldr x16, literal
		CHECK(word_at(beyond, offset + 4) == br_x16);
		const std::size_t literals = aarch64_encoder::closure_size(shift, false) - 16;
		CHECK(word_at(beyond, literals) == 0x5566'7788U);
		CHECK(word_at(beyond, literals + 8) == static_cast<std::uint32_t>(max_forward + 4));
		CHECK(word_at(beyond, literals + 12) == static_cast<std::uint32_t>((max_forward + 4) >> 32));
	}
}
