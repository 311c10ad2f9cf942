// member_thunk: AArch64 thunk encoder (AAPCS64: Linux, macOS, Windows). A pure byte emitter that compiles and runs on
// any host, so its golden-byte tests do too.
//
// The branch is chosen per thunk: a direct `b` when the target lies within ±128 MiB of it (the heap reserves its
// regions near the code to make that the usual case), else an indirect `br x16`. Layout of one 32-byte slot
// (instructions little-endian), direct form:
//
//   0  d503245f   bti c              BTI landing pad for an indirect call (needed on PROT_BTI pages)
//   4  58000060   ldr x0, [pc+12]    first argument <- bound (literal at offset 16)
//   8  14xxxxxx   b target           a direct branch: no register, and no landing pad needed at the target
//  12  d43e0000   brk #0xf000
//  16  <bound, 8 bytes>
//  24  d43e0000 d43e0000 (brk)
//
// Indirect form:
//
//   0  d503245f   bti c              BTI landing pad for an indirect call (needed on PROT_BTI pages)
//   4  58000060   ldr x0, [pc+12]    first argument <- bound (literal at offset 16)
//   8  58000090   ldr x16, [pc+16]   IP0 <- target (literal at offset 24); x16/x17 are the only registers a guarded
//                                    target accepts from `br`, and x8 (indirect result) and x18 (platform) stay intact
//  12  d61f0200   br x16             a jump, not a call: PAC return signing and the shadow call stack are untouched
//  16  <bound, 8 bytes>
//  24  <target, 8 bytes>
//
// Unused code is filled with `brk #0xf000`.
#pragma once

#include "closures.hpp"
#include "results.hpp"

#include <cstddef>
#include <cstdint>
#include <span>

namespace member_thunk::detail::arch
{
	/// The results AAPCS64 returns in registers besides the standard ones (results.hpp). AAPCS64, "Result Return":
	/// integers of up to 16 bytes in x0 (and x1), floating point from half to quad precision in v0. Extras: long
	/// double (binary128 on Linux: q0; a double on Apple and Windows: d0) and __int128 (x0, x1), as GCC 12 and Clang
	/// 14 compile `R f(void*, int)` (-O2 -S). A result returned in memory gets its address in x8, not x0, so it would
	/// not even take the first argument's place; the allow-list is kept so that one rule holds on every ABI.
	struct aarch64_results
	{
		template<class R>
		static constexpr bool extra_in_registers =
		    results::is_int128<R> || results::is_long_double_as<R, results::long_double_format::binary128,
		                                                        results::long_double_format::binary64>;
	};

	struct aarch64_encoder
	{
		static constexpr std::size_t slot_size = 32;
		static constexpr std::size_t slot_alignment = 32;
		static constexpr std::size_t trap_granule = 4; // one instruction

		/// Whether the ABI returns a result of type `R` in registers (x8, not x0, would carry a hidden result pointer).
		template<class R>
		static constexpr bool returns_in_registers = results::in_registers<R, aarch64_results>();

		static constexpr std::uint32_t bti_c = 0xD503245FU;
		static constexpr std::uint32_t bti_j = 0xD503249FU;
		static constexpr std::uint32_t ldr_x0_literal_16 = 0x58000060U;  // ldr x0, #12 (from offset 4)
		static constexpr std::uint32_t ldr_x16_literal_24 = 0x58000090U; // ldr x16, #16 (from offset 8)
		static constexpr std::uint32_t br_x16 = 0xD61F0200U;
		static constexpr std::uint32_t brk_f000 = 0xD43E0000U;
		static constexpr std::uint32_t b = 0x14000000U; // b <imm26 words>, relative to the branch itself

		/// Offset of the direct branch, from which its displacement counts.
		static constexpr std::uint64_t direct_branch_at = 8;
		/// How far from a thunk its target may lie for the direct form to be usable everywhere in a region: `b`
		/// reaches ±128 MiB, less a margin for the region's size.
		static constexpr std::uint64_t direct_reach = (std::uint64_t{1} << 27) - (std::uint64_t{1} << 24);

		/// Whether a thunk in the slot at `slot_address` can reach `target` with the direct branch.
		[[nodiscard]] static constexpr bool reaches_directly(std::uint64_t slot_address, std::uint64_t target) noexcept
		{
			const std::uint64_t displacement = target - (slot_address + direct_branch_at);
			return displacement % 4 == 0 && displacement + (std::uint64_t{1} << 27) < (std::uint64_t{1} << 28);
		}

		/// Fills `code` with trap instructions; its size must be a multiple of 4 (any trailing bytes are left).
		static constexpr void fill_traps(std::span<std::byte> code) noexcept
		{
			for (std::size_t at = 0; at + 4 <= code.size(); at += 4)
				put_u32(code, at, brk_f000);
		}

		/// If the code at `address` starts with an unconditional direct branch (`b`, after an optional `bti c` or
		/// `bti j`), where that branch goes; else `address`. `read(a)` returns the code byte at `a`; only the bytes
		/// of the instructions decoded are read.
		template<class Read>
		[[nodiscard]] static constexpr std::uint64_t jump_destination(std::uint64_t address, Read read) noexcept
		{
			const auto word_at = [&](std::uint64_t a) {
				std::uint32_t value = 0;
				for (std::uint64_t i = 0; i < 4; ++i)
					value |= static_cast<std::uint32_t>(read(a + i)) << (8 * i);
				return value;
			};
			std::uint64_t at = address;
			const std::uint32_t first = word_at(at);
			if (first == bti_c || first == bti_j)
				at += 4;
			const std::uint32_t insn = word_at(at);
			if ((insn & 0xFC00'0000U) != b)
				return address;
			const std::uint64_t words = insn & 0x03FF'FFFFU;
			const std::uint64_t displacement =
			    ((words & 0x0200'0000U) != 0 ? words | 0xFFFF'FFFF'FC00'0000U : words) * 4;
			return at + displacement;
		}

		/// Closures (closures.hpp; AAPCS64 §6.8.2, "Parameter passing rules"): integer-class arguments in x0-x7 and
		/// float/double in v0-v7 independently, so with the object pointer in front at most 7 integer-class arguments
		/// stay in registers; the shift moves x6 -> x7 ... x0 -> x1 (the last one first), one per such argument.
		template<class... A>
		static constexpr closures::fit closure_fit = closures::independent_registers<8, A...>();
		template<class... A>
		static constexpr std::size_t closure_shift = closures::integer_arguments<A...>;

		/// `mov x<to>, x<from>` (ORR Xd, XZR, Xm).
		[[nodiscard]] static constexpr std::uint32_t mov(std::uint32_t to, std::uint32_t from) noexcept
		{
			return 0xAA0003E0U | (from << 16) | to;
		}

		/// `ldr x<to>, [pc + offset]` (LDR literal, 64-bit; offset a multiple of 4 within ±1 MiB).
		[[nodiscard]] static constexpr std::uint32_t ldr_literal(std::uint32_t to, std::uint64_t offset) noexcept
		{
			return 0x58000000U | static_cast<std::uint32_t>(((offset / 4) & 0x7FFFFU) << 5) | to;
		}

		/// The instructions of a closure before its literals: bti c, the moves, ldr x0, then `b` or `ldr x16; br x16`.
		[[nodiscard]] static constexpr std::size_t closure_instructions(std::size_t shift, bool direct) noexcept
		{
			return 1 + shift + 1 + (direct ? 1 : 2);
		}

		/// Where a closure's literals start (bound, then the target of the indirect form), 8-byte aligned.
		[[nodiscard]] static constexpr std::size_t closure_literals(std::size_t shift, bool direct) noexcept
		{
			return (closure_instructions(shift, direct) * 4 + 7) / 8 * 8;
		}

		/// The bytes of a closure that moves `shift` argument registers.
		[[nodiscard]] static constexpr std::size_t closure_size(std::size_t shift, bool direct) noexcept
		{
			return closure_literals(shift, direct) + (direct ? 8 : 16);
		}

		/// Whether a closure that moves `shift` registers, at `address`, reaches `target` with its direct branch.
		[[nodiscard]] static constexpr bool closure_reaches_directly(std::uint64_t address, std::size_t shift,
		                                                             std::uint64_t target) noexcept
		{
			const std::uint64_t displacement = target - (address + 4 * (1 + shift + 1));
			return displacement % 4 == 0 && displacement + (std::uint64_t{1} << 27) < (std::uint64_t{1} << 28);
		}

		/// Writes a closure: bti c; mov x<k>, x<k-1> for k = shift..1; ldr x0, =bound; then `b target`, or
		/// `ldr x16, =target; br x16`; the literals; the rest of `code` is `brk`. `code` must hold closure_size()
		/// bytes (rounded up to whole instructions); `address` is where it will execute.
		static constexpr void encode_closure(std::span<std::byte> code, std::size_t shift, std::uint64_t bound,
		                                     std::uint64_t target, std::uint64_t address) noexcept
		{
			const bool direct = closure_reaches_directly(address, shift, target);
			const std::size_t literals = closure_literals(shift, direct);
			fill_traps(code);
			std::size_t at = 0;
			put_u32(code, at, bti_c);
			at += 4;
			for (std::size_t k = shift; k != 0; --k, at += 4)
				put_u32(code, at, mov(static_cast<std::uint32_t>(k), static_cast<std::uint32_t>(k - 1)));
			put_u32(code, at, ldr_literal(0, literals - at));
			at += 4;
			if (direct)
			{
				const std::uint64_t words = (target - (address + at)) / 4;
				put_u32(code, at, b | static_cast<std::uint32_t>(words & 0x3FFFFFFU));
			}
			else
			{
				put_u32(code, at, ldr_literal(16, literals + 8 - at));
				put_u32(code, at + 4, br_x16);
				put_u64(code, literals + 8, target);
			}
			put_u64(code, literals, bound);
		}

		/// Writes a thunk that sets x0 to `bound` and branches to `target`; `slot_address` is where the slot will
		/// execute, which decides between the direct and the indirect branch.
		static constexpr void encode(std::span<std::byte, slot_size> slot, std::uint64_t bound, std::uint64_t target,
		                             std::uint64_t slot_address) noexcept
		{
			if (reaches_directly(slot_address, target))
			{
				const std::uint64_t words = (target - (slot_address + direct_branch_at)) / 4;
				put_u32(slot, 0, bti_c);
				put_u32(slot, 4, ldr_x0_literal_16);
				put_u32(slot, 8, b | static_cast<std::uint32_t>(words & 0x3FFFFFFU));
				put_u32(slot, 12, brk_f000);
				put_u64(slot, 16, bound);
				put_u32(slot, 24, brk_f000);
				put_u32(slot, 28, brk_f000);
				return;
			}
			put_u32(slot, 0, bti_c);
			put_u32(slot, 4, ldr_x0_literal_16);
			put_u32(slot, 8, ldr_x16_literal_24);
			put_u32(slot, 12, br_x16);
			put_u64(slot, 16, bound);
			put_u64(slot, 24, target);
		}

	private:
		static constexpr void put_u32(std::span<std::byte> out, std::size_t at, std::uint32_t value) noexcept
		{
			for (std::size_t i = 0; i < 4; ++i)
				out[at + i] = static_cast<std::byte>((value >> (8 * i)) & 0xFFU);
		}

		static constexpr void put_u64(std::span<std::byte> out, std::size_t at, std::uint64_t value) noexcept
		{
			put_u32(out, at, static_cast<std::uint32_t>(value & 0xFFFFFFFFU));
			put_u32(out, at + 4, static_cast<std::uint32_t>(value >> 32));
		}
	};
} // namespace member_thunk::detail::arch
