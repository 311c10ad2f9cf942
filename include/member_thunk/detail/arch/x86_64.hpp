// member_thunk: x86-64 thunk encoders (System V and Windows x64). Pure byte emitters: they compile and run on any
// host, so their golden-byte tests do too.
//
// A thunk replaces the callback's first argument with a bound pointer and jumps to the target (ABI doc, "What a
// thunk may do"). The jump is chosen per thunk: a direct `jmp rel32` when the target lies within ±2 GiB of the
// thunk (the heap reserves its regions near the code to make that the usual case), else an absolute jump through
// r11. Layout of one 32-byte slot, direct form:
//
//   0  f3 0f 1e fa           endbr64            CET IBT landing pad: the thunk is reached by an indirect call
//   4  48 bf|b9 <imm64>      movabs rdi|rcx, bound      first integer argument: rdi (System V), rcx (Windows x64)
//  14  e9 <rel32>            jmp target         relative to the end of this instruction (offset 19); a direct
//                                               jump needs no landing pad at the target and no scratch register
//  19  cc ...                int3 padding       a stray jump into the tail traps
//
// Absolute form:
//
//   0  f3 0f 1e fa           endbr64            CET IBT landing pad: the thunk is reached by an indirect call
//   4  48 bf|b9 <imm64>      movabs rdi|rcx, bound      first integer argument: rdi (System V), rcx (Windows x64)
//  14  49 bb <imm64>         movabs r11, target         r11: scratch on both ABIs and carries no argument; never rax,
//                                                        whose AL holds the vector-register count of a variadic call
//  24  41 ff e3              jmp r11            a jump, not a call: no frame, so shadow stacks and unwinding never
//                                               see the thunk
//  27  cc cc cc cc cc        int3 padding       a stray jump into the tail traps
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
	namespace x86_64_bytes
	{
		inline constexpr std::byte trap{0xCC}; // int3
		inline constexpr std::array<std::byte, 4> endbr64{std::byte{0xF3}, std::byte{0x0F}, std::byte{0x1E},
		                                                  std::byte{0xFA}};
		inline constexpr std::array<std::byte, 2> movabs_rdi{std::byte{0x48}, std::byte{0xBF}};
		inline constexpr std::array<std::byte, 2> movabs_rcx{std::byte{0x48}, std::byte{0xB9}};
		inline constexpr std::array<std::byte, 2> movabs_r11{std::byte{0x49}, std::byte{0xBB}};
		inline constexpr std::array<std::byte, 3> jmp_r11{std::byte{0x41}, std::byte{0xFF}, std::byte{0xE3}};
	} // namespace x86_64_bytes

	/// The results System V AMD64 returns in registers besides the standard ones (results.hpp). psABI 1.0, §3.2.3
	/// "Parameter Passing", the classification and "Returning of Values": __int128 is INTEGER, INTEGER (rax, rdx);
	/// __float128 is SSE, SSEUP (xmm0); the x87 80-bit long double is X87, X87UP (st(0)); with -mlong-double-128 long
	/// double is __float128's format (xmm0), with -mlong-double-64 a double (xmm0). A result of class MEMORY comes back
	/// through a pointer the caller passes in rdi, the register the thunk replaces. Checked in the assembly of GCC 12
	/// and Clang 14 (`R f(void*, int)`, -O2 -S): rdi untouched, the result in those registers.
	struct x86_64_sysv_results
	{
		template<class R>
		static constexpr bool extra_in_registers =
		    results::is_int128<R> || results::is_float128<R> ||
		    results::is_long_double_as<R, results::long_double_format::x87_extended,
		                               results::long_double_format::binary64, results::long_double_format::binary128>;
	};

	/// The results Windows x64 returns in registers besides the standard ones (results.hpp). Microsoft's "x64 calling
	/// convention", "Return values": scalars of up to 64 bits in rax, float, double and the 128-bit vector types in
	/// xmm0; anything else through a pointer the caller passes in rcx, the register the thunk replaces. Extras: long
	/// double when it is a double (MSVC, -mlong-double-64: xmm0) and __int128, which the document does not cover and
	/// both GCC 12 and Clang 14 (MinGW) return in xmm0, as __m128i. Refused: MinGW's 80-bit long double and
	/// __float128, which GCC 12 stores through the pointer in rcx (Clang 14 returns __float128 in xmm0: the two
	/// compilers disagree).
	struct x86_64_win64_results
	{
		template<class R>
		static constexpr bool extra_in_registers =
		    results::is_int128<R> || results::is_long_double_as<R, results::long_double_format::binary64>;
	};

	/// The closures of System V AMD64 (closures.hpp; psABI §3.2.3): integer-class arguments in rdi, rsi, rdx, rcx,
	/// r8, r9 and float/double in xmm0-7 independently, so with the object pointer in front at most 5 integer-class
	/// arguments stay in registers, and any number of float/double ones stay where they are. The shift moves
	/// r8 -> r9, rcx -> r8, rdx -> rcx, rsi -> rdx, rdi -> rsi (the last one first), as many as there are integer-class
	/// arguments.
	struct x86_64_sysv_closures
	{
		template<class... A>
		static constexpr closures::fit fit = closures::independent_registers<6, A...>();
		template<class... A>
		static constexpr std::size_t shift = closures::integer_arguments<A...>;
		static constexpr std::size_t move_size = 3;
		/// moves[k - 1] moves argument register k - 1 to k: mov rsi, rdi; mov rdx, rsi; mov rcx, rdx; mov r8, rcx;
		/// mov r9, r8 (REX.W 89 /r, mov r/m64, r64).
		static constexpr std::array<std::array<std::byte, move_size>, 5> moves{{
		    {std::byte{0x48}, std::byte{0x89}, std::byte{0xFE}},
		    {std::byte{0x48}, std::byte{0x89}, std::byte{0xF2}},
		    {std::byte{0x48}, std::byte{0x89}, std::byte{0xD1}},
		    {std::byte{0x49}, std::byte{0x89}, std::byte{0xC8}},
		    {std::byte{0x4D}, std::byte{0x89}, std::byte{0xC1}},
		}};
	};

	/// The closures of Windows x64 (closures.hpp; Microsoft's "x64 calling convention", "Parameter passing"): the
	/// first four arguments take positions rcx/xmm0, rdx/xmm1, r8/xmm2, r9/xmm3 whatever their kind, so with the
	/// object pointer in front at most 3 stay in registers, and each moved position moves both of its registers:
	/// r8 -> r9 and xmm2 -> xmm3, rdx -> r8 and xmm1 -> xmm2, rcx -> rdx and xmm0 -> xmm1. The caller reserves the 32
	/// bytes of shadow space for four arguments whatever their number, so the stack needs nothing.
	struct x86_64_win64_closures
	{
		template<class... A>
		static constexpr closures::fit fit =
		    !((closures::integer_class<A> || closures::vector_class<A>)&&...) ? closures::fit::unsupported_argument_type
		    : sizeof...(A) > 3                                                ? closures::fit::too_many_arguments
		                                                                      : closures::fit::exact;
		template<class... A>
		static constexpr std::size_t shift = sizeof...(A);
		static constexpr std::size_t move_size = 6;
		/// moves[k - 1]: mov rdx, rcx; movaps xmm1, xmm0 / mov r8, rdx; movaps xmm2, xmm1 / mov r9, r8; movaps xmm3,
		/// xmm2 (REX.W 89 /r; 0F 28 /r).
		static constexpr std::array<std::array<std::byte, move_size>, 3> moves{{
		    {std::byte{0x48}, std::byte{0x89}, std::byte{0xCA}, std::byte{0x0F}, std::byte{0x28}, std::byte{0xC8}},
		    {std::byte{0x49}, std::byte{0x89}, std::byte{0xD0}, std::byte{0x0F}, std::byte{0x28}, std::byte{0xD1}},
		    {std::byte{0x4D}, std::byte{0x89}, std::byte{0xC1}, std::byte{0x0F}, std::byte{0x28}, std::byte{0xDA}},
		}};
	};

	/// Emits x86-64 thunks whose first argument register is given by the two-byte `movabs` opcode; `Results` says
	/// which results the ABI returns in registers besides the standard ones, `Closures` which arguments a closure
	/// keeps and how it moves them.
	template<const std::array<std::byte, 2>& MovFirstArgument, class Results, class Closures>
	struct x86_64_encoder
	{
		static constexpr std::size_t slot_size = 32;
		static constexpr std::size_t slot_alignment = 32;
		static constexpr std::size_t trap_granule = 1; // traps can fill any number of bytes

		/// Whether the ABI returns a result of type `R` in registers: else the caller passes a hidden pointer for it
		/// in the first argument's register, which the thunk overwrites.
		template<class R>
		static constexpr bool returns_in_registers = results::in_registers<R, Results>();

		/// Offset of the end of the direct jump, from which its displacement counts.
		static constexpr std::uint64_t direct_jump_end = 19;
		/// How far from a thunk its target may lie for the direct form to be usable everywhere in a region: a
		/// rel32 displacement reaches ±2 GiB, less a margin for the offset of the jump and the region's size.
		static constexpr std::uint64_t direct_reach = (std::uint64_t{1} << 31) - (std::uint64_t{1} << 24);

		/// Whether a thunk in the slot at `slot_address` can reach `target` with the direct jump.
		[[nodiscard]] static constexpr bool reaches_directly(std::uint64_t slot_address, std::uint64_t target) noexcept
		{
			const std::uint64_t from = slot_address + direct_jump_end;
			// The displacement as a two's-complement 64-bit difference must fit in a signed 32-bit field.
			const std::uint64_t displacement = target - from;
			return displacement + (std::uint64_t{1} << 31) < (std::uint64_t{1} << 32);
		}

		/// Fills `code` with trap instructions (int3).
		static constexpr void fill_traps(std::span<std::byte> code) noexcept
		{
			for (auto& b : code)
				b = x86_64_bytes::trap;
		}

		/// If the code at `address` starts with an unconditional direct jump (`jmp rel32` or `jmp rel8`, after an
		/// optional endbr64), where that jump goes; else `address`. `read(a)` returns the code byte at `a`; only
		/// the bytes of the instructions decoded are read, so nothing past the end of a function is touched.
		template<class Read>
		[[nodiscard]] static constexpr std::uint64_t jump_destination(std::uint64_t address, Read read) noexcept
		{
			return x86_jumps::destination(address, x86_64_bytes::endbr64, ~std::uint64_t{0}, read);
		}

		/// Whether a closure keeps the arguments `A...` exactly (closures.hpp), and how many argument places it moves.
		template<class... A>
		static constexpr closures::fit closure_fit = Closures::template fit<A...>;
		template<class... A>
		static constexpr std::size_t closure_shift = Closures::template shift<A...>;

		/// The bytes of a closure that moves `shift` argument places, with the direct or the absolute jump.
		[[nodiscard]] static constexpr std::size_t closure_size(std::size_t shift, bool direct) noexcept
		{
			return 4 + shift * Closures::move_size + 10 + (direct ? 5 : 13);
		}

		/// Whether a closure that moves `shift` places, at `address`, reaches `target` with its direct jump.
		[[nodiscard]] static constexpr bool closure_reaches_directly(std::uint64_t address, std::size_t shift,
		                                                             std::uint64_t target) noexcept
		{
			const std::uint64_t displacement = target - (address + closure_size(shift, true));
			return displacement + (std::uint64_t{1} << 31) < (std::uint64_t{1} << 32);
		}

		/// Writes a closure: endbr64, the moves (the last argument place first), `movabs rdi|rcx, bound`, then
		/// `jmp rel32 target` or `movabs r11, target; jmp r11`; the rest of `code` is traps. `code` must hold
		/// closure_size() bytes; `address` is where it will execute.
		static constexpr void encode_closure(std::span<std::byte> code, std::size_t shift, std::uint64_t bound,
		                                     std::uint64_t target, std::uint64_t address) noexcept
		{
			std::size_t at = 0;
			const auto put = [&](const auto& bytes) {
				for (const auto b : bytes)
					code[at++] = b;
			};
			const auto put_u64 = [&](std::uint64_t value) {
				for (int i = 0; i < 8; ++i)
					code[at++] = static_cast<std::byte>((value >> (8 * i)) & 0xFFU);
			};
			put(x86_64_bytes::endbr64);
			for (std::size_t k = shift; k != 0; --k)
				put(Closures::moves[k - 1]);
			put(MovFirstArgument);
			put_u64(bound);
			if (closure_reaches_directly(address, shift, target))
			{
				code[at++] = x86_jumps::jmp_rel32;
				const auto displacement = static_cast<std::uint32_t>(target - (address + at + 4));
				for (int i = 0; i < 4; ++i)
					code[at++] = static_cast<std::byte>((displacement >> (8 * i)) & 0xFFU);
			}
			else
			{
				put(x86_64_bytes::movabs_r11);
				put_u64(target);
				put(x86_64_bytes::jmp_r11);
			}
			fill_traps(code.subspan(at));
		}

		/// Writes a thunk that sets the first argument to `bound` and jumps to `target`; `slot_address` is where the
		/// slot will execute, which decides between the direct and the absolute jump.
		static constexpr void encode(std::span<std::byte, slot_size> slot, std::uint64_t bound, std::uint64_t target,
		                             std::uint64_t slot_address) noexcept
		{
			std::size_t at = 0;
			const auto put = [&](const auto& bytes) {
				for (const auto b : bytes)
					slot[at++] = b;
			};
			const auto put_u64 = [&](std::uint64_t value) {
				for (int i = 0; i < 8; ++i)
					slot[at++] = static_cast<std::byte>((value >> (8 * i)) & 0xFFU); // little-endian immediate
			};
			put(x86_64_bytes::endbr64);
			put(MovFirstArgument);
			put_u64(bound);
			if (reaches_directly(slot_address, target))
			{
				slot[at++] = x86_jumps::jmp_rel32;
				const auto displacement = static_cast<std::uint32_t>(target - (slot_address + direct_jump_end));
				for (int i = 0; i < 4; ++i)
					slot[at++] = static_cast<std::byte>((displacement >> (8 * i)) & 0xFFU);
			}
			else
			{
				put(x86_64_bytes::movabs_r11);
				put_u64(target);
				put(x86_64_bytes::jmp_r11);
			}
			fill_traps(slot.subspan(at));
		}
	};

	/// System V AMD64 (Linux, macOS, BSD): the first integer argument is rdi.
	using x86_64_sysv_encoder = x86_64_encoder<x86_64_bytes::movabs_rdi, x86_64_sysv_results, x86_64_sysv_closures>;
	/// Windows x64: the first integer argument is rcx.
	using x86_64_win64_encoder = x86_64_encoder<x86_64_bytes::movabs_rcx, x86_64_win64_results, x86_64_win64_closures>;
} // namespace member_thunk::detail::arch
