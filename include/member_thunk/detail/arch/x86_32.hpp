// member_thunk: i386 thunk encoder (System V i386 ABI, cdecl: Linux and the BSDs). A pure byte emitter that compiles
// and runs on any host, so its golden-byte tests do too.
//
// cdecl passes every argument on the stack, so at the thunk's entry the return address is at [esp] and the first
// argument at [esp+4]. The thunk overwrites that stack slot with the bound pointer (the i386 psABI lets a callee
// change its own incoming arguments) and jumps. It writes no register at all, so whatever the caller left in eax,
// ecx and edx reaches the target unchanged. Layout of one 32-byte slot:
//
//   0  f3 0f 1e fb           endbr32            CET IBT landing pad: the thunk is reached by an indirect call
//   4  c7 44 24 04 <imm32>   mov dword [esp+4], bound   the first argument's stack slot
//  12  e9 <rel32>            jmp target         relative to the end of this instruction (offset 17). A jump, not a
//                                               call: the stack is exactly as the caller left it, so the target's
//                                               `ret` returns to the caller and a shadow stack never sees the thunk
//  17  cc ...                int3 padding       a stray jump into the tail traps
//
// There is no absolute form: a rel32 displacement wraps around modulo 2^32, so from anywhere in a 32-bit address
// space it reaches every other address. (17 bytes do not fit 16, hence 32-byte slots.)
#pragma once

#include "closures.hpp"
#include "results.hpp"
#include "x86_jumps.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

namespace member_thunk::detail::arch
{
	namespace x86_32_bytes
	{
		inline constexpr std::byte trap{0xCC}; // int3
		inline constexpr std::array<std::byte, 4> endbr32{std::byte{0xF3}, std::byte{0x0F}, std::byte{0x1E},
		                                                  std::byte{0xFB}};
		// mov r/m32, imm32 (C7 /0) with ModRM 0x44 (mod 01: [SIB + disp8]), SIB 0x24 (base esp, no index), disp8 4.
		inline constexpr std::array<std::byte, 4> mov_esp4_imm32{std::byte{0xC7}, std::byte{0x44}, std::byte{0x24},
		                                                         std::byte{0x04}};
	} // namespace x86_32_bytes

	/// The results the i386 System V ABI returns in registers besides the standard ones (results.hpp). Intel386 psABI,
	/// "Function Calling Sequence", returning values: integers and pointers in eax (64-bit ones in edx:eax), floating
	/// point in st(0); a structure or union through a hidden pointer that the caller pushes last, so it sits at
	/// [esp+4], the slot the thunk replaces, and that the callee pops (`ret $4`). Extras: long double as the x87
	/// 80-bit format (the default) or as a double (-mlong-double-64), both in st(0). Refused: __float128 and the
	/// binary128 long double of -mlong-double-128, which GCC 12 and Clang 14 return through that hidden pointer, as
	/// the assembly of `R f(void*, int)` (-O2 -S) shows.
	struct x86_32_results
	{
		template<class R>
		static constexpr bool extra_in_registers =
		    results::is_long_double_as<R, results::long_double_format::x87_extended,
		                               results::long_double_format::binary64>;
	};

	struct x86_32_encoder
	{
		static constexpr std::size_t slot_size = 32;
		static constexpr std::size_t slot_alignment = 32;
		static constexpr std::size_t trap_granule = 1; // traps can fill any number of bytes

		/// Whether the ABI returns a result of type `R` in registers: else the caller pushes a hidden pointer for it,
		/// which is then at [esp+4], the slot the thunk overwrites.
		template<class R>
		static constexpr bool returns_in_registers = results::in_registers<R, x86_32_results>();

		/// Offset of the end of the jump, from which its displacement counts.
		static constexpr std::uint64_t direct_jump_end = 17;
		/// The direct jump reaches the whole 32-bit address space: every region is near the code.
		static constexpr std::uint64_t direct_reach = std::uint64_t{1} << 32;

		/// Always true: with 32-bit wraparound, a rel32 from any slot reaches any target.
		[[nodiscard]] static constexpr bool reaches_directly([[maybe_unused]] std::uint64_t slot_address,
		                                                     [[maybe_unused]] std::uint64_t target) noexcept
		{
			return true;
		}

		/// Fills `code` with trap instructions (int3).
		static constexpr void fill_traps(std::span<std::byte> code) noexcept
		{
			for (auto& b : code)
				b = x86_32_bytes::trap;
		}

		/// If the code at `address` starts with an unconditional direct jump (`jmp rel32` or `jmp rel8`, after an
		/// optional endbr32), where that jump goes, modulo 2^32 as the processor computes it; else `address`.
		/// `read(a)` returns the code byte at `a`; only the bytes of the instructions decoded are read.
		template<class Read>
		[[nodiscard]] static constexpr std::uint64_t jump_destination(std::uint64_t address, Read read) noexcept
		{
			return x86_jumps::destination(address, x86_32_bytes::endbr32, 0xFFFF'FFFFU, read);
		}

		/// Closures are not possible on i386 (closures.hpp): every argument is on the stack, and inserting one in
		/// front of them needs a stack frame that a jump-only thunk does not have.
		template<class... A>
		static constexpr closures::fit closure_fit = closures::fit::unsupported_architecture;
		template<class... A>
		static constexpr std::size_t closure_shift = 0;

		/// Writes a thunk that stores `bound` over the first stack argument and jumps to `target`; `slot_address` is
		/// where the slot will execute. Addresses are taken modulo 2^32.
		static constexpr void encode(std::span<std::byte, slot_size> slot, std::uint64_t bound, std::uint64_t target,
		                             std::uint64_t slot_address) noexcept
		{
			std::size_t at = 0;
			const auto put = [&](const auto& bytes) {
				for (const auto b : bytes)
					slot[at++] = b;
			};
			const auto put_u32 = [&](std::uint64_t value) {
				for (int i = 0; i < 4; ++i)
					slot[at++] = static_cast<std::byte>((value >> (8 * i)) & 0xFFU); // little-endian immediate
			};
			put(x86_32_bytes::endbr32);
			put(x86_32_bytes::mov_esp4_imm32);
			put_u32(bound);
			slot[at++] = x86_jumps::jmp_rel32;
			put_u32(target - (slot_address + direct_jump_end)); // the low 32 bits: the displacement modulo 2^32
			fill_traps(slot.subspan(at));
		}
	};
} // namespace member_thunk::detail::arch
