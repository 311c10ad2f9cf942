// member_thunk: closures, the part every ABI shares. A closure keeps every argument of the callback and passes the
// bound pointer in front of them: it moves each argument register one place up, puts the pointer in the first, and
// jumps. That is exact only while every argument the shift moves stays in a register and keeps its kind; each encoder
// says when (`closure_fit<A...>`, `closure_shift<A...>`, x86_64.hpp, aarch64.hpp, x86_32.hpp), from these facts:
//   - an integer-class argument (an integer, character, bool, enumeration or pointer of at most 8 bytes) takes one
//     general-purpose register, in order, on System V x86-64 (rdi, rsi, rdx, rcx, r8, r9) and AAPCS64 (x0-x7), and
//     goes to the stack when they are used up;
//   - float and double take the vector registers (xmm0-7, v0-7) independently of the integer ones on both, and the
//     stack after them: the shift never moves them, so any number of them is exact;
//   - Windows x64 assigns each argument a position (rcx/xmm0, rdx/xmm1, r8/xmm2, r9/xmm3, then the stack), whatever
//     its kind: the shift moves every position, both registers of each;
//   - class types, long double, 128-bit integers and vectors are classified in ways (two registers, memory, HFA,
//     hidden copies) that a one-register shift cannot follow: refused;
//   - i386 cdecl passes every argument on the stack: inserting one needs a new stack frame, which a thunk that only
//     jumps does not have: refused.
#pragma once

#include <cstddef>
#include <type_traits>

namespace member_thunk::detail::arch::closures
{
	/// Whether a closure can keep a callback's arguments exactly on an ABI, and if not, why.
	enum class fit
	{
		exact,
		unsupported_architecture,   // i386
		too_many_integer_arguments, // System V x86-64: more than 5; AArch64: more than 7
		too_many_arguments,         // Windows x64: more than 3
		unsupported_argument_type   // a class, long double, __int128, a vector...
	};

	template<class T>
	inline constexpr bool integer_class = (std::is_integral_v<T> || std::is_enum_v<T> || std::is_pointer_v<T> ||
	                                       std::is_null_pointer_v<T>)&&sizeof(T) <= 8;

	template<class T>
	inline constexpr bool vector_class = std::is_same_v<T, float> || std::is_same_v<T, double>;

	/// The arguments a closure can keep on an ABI whose integer and vector registers are assigned independently
	/// (System V x86-64, AAPCS64), with `Registers` integer registers.
	template<std::size_t Registers, class... A>
	constexpr fit independent_registers() noexcept
	{
		if constexpr (!((integer_class<A> || vector_class<A>)&&...))
			return fit::unsupported_argument_type;
		else if constexpr ((std::size_t{0} + ... + (integer_class<A> ? 1 : 0)) + 1 > Registers)
			return fit::too_many_integer_arguments;
		else
			return fit::exact;
	}

	/// The integer-class arguments, which the closure moves one register up.
	template<class... A>
	inline constexpr std::size_t integer_arguments = (std::size_t{0} + ... + (integer_class<A> ? 1 : 0));
} // namespace member_thunk::detail::arch::closures
