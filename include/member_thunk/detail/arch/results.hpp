// member_thunk: which function results come back in registers, the part every supported ABI shares. Each encoder's
// `returns_in_registers<R>` (x86_64.hpp, x86_32.hpp, aarch64.hpp) adds the types its own ABI returns in registers.
//
// Why it matters: for a result that an ABI returns in memory, the caller passes the address of that memory as a
// hidden argument. On i386 it is pushed last, so it sits at [esp+4]; on System V x86-64 it travels in rdi and on
// Windows x64 in rcx: in each case the first argument's place, which the thunk overwrites with its bound pointer.
// The callee then writes the result over the bound object, and reads the real arguments one place off.
//
// The lists are allow-lists: a type not known to come back in registers is refused, so a new compiler extension
// type is refused until someone checks its ABI and adds it here (checked with GCC 12 and Clang 14, `-O2 -S`).
#pragma once

#include <cstddef>
#include <limits>
#include <type_traits>

namespace member_thunk::detail::arch::results
{
	template<class T, class... U>
	inline constexpr bool is_one_of = (std::is_same_v<T, U> || ...);

#if defined(__cpp_char8_t)
	template<class R>
	inline constexpr bool is_char8 = std::is_same_v<R, char8_t>;
#else
	template<class R>
	inline constexpr bool is_char8 = false;
#endif

	/// The standard types that every supported ABI returns in registers: bool, the character and standard integer
	/// types (eax or edx:eax on i386, rax, x0), float and double (st(0) on i386, xmm0, v0), pointers (function
	/// pointers too: a flat address, returned as an object pointer is) and nullptr_t. Not long double: its format,
	/// and with it where it comes back, varies with the ABI and with options such as -mlong-double-128.
	template<class R>
	inline constexpr bool standard_in_registers =
	    is_one_of<R, bool, char, signed char, unsigned char, wchar_t, char16_t, char32_t, short, unsigned short, int,
	              unsigned int, long, unsigned long, long long, unsigned long long, float, double, std::nullptr_t> ||
	    is_char8<R> || std::is_pointer_v<R>;

	/// The format of long double, which decides where an ABI returns it.
	enum class long_double_format
	{
		binary64,     // the same as double (MSVC, Apple arm64, Windows arm64, -mlong-double-64)
		x87_extended, // 80-bit x87 (x86 System V, MinGW)
		binary128,    // IEEE quadruple (AArch64 Linux, x86 with -mlong-double-128)
		other,
	};

	inline constexpr long_double_format long_double =
	    std::numeric_limits<long double>::digits == 53    ? long_double_format::binary64
	    : std::numeric_limits<long double>::digits == 64  ? long_double_format::x87_extended
	    : std::numeric_limits<long double>::digits == 113 ? long_double_format::binary128
	                                                      : long_double_format::other;

	/// `long double` when its format is one of `Formats`.
	template<class R, long_double_format... Formats>
	inline constexpr bool is_long_double_as = std::is_same_v<R, long double> && ((long_double == Formats) || ...);

	// GNU extensions, named through __extension__ so that -Wpedantic accepts them.
#if defined(__SIZEOF_INT128__)
	__extension__ using int128 = __int128;
	__extension__ using uint128 = unsigned __int128;
	template<class R>
	inline constexpr bool is_int128 = is_one_of<R, int128, uint128>;
#else
	template<class R>
	inline constexpr bool is_int128 = false;
#endif
#if defined(__SIZEOF_FLOAT128__)
	__extension__ using float128 = __float128;
	template<class R>
	inline constexpr bool is_float128 = std::is_same_v<R, float128>;
#else
	template<class R>
	inline constexpr bool is_float128 = false;
#endif

	/// Whether the ABI that `Abi` describes returns `R` in registers: the standard types, an enumeration as its
	/// underlying type, and the types the ABI adds (`Abi::extra_in_registers<R>`). cv-qualifiers do not matter.
	template<class R, class Abi>
	consteval bool in_registers()
	{
		using type = std::remove_cv_t<R>;
		if constexpr (std::is_enum_v<type>)
			return in_registers<std::underlying_type_t<type>, Abi>();
		else
			return standard_in_registers<type> || Abi::template extra_in_registers<type>;
	}
} // namespace member_thunk::detail::arch::results
