// Calling conventions: which callback types a thunk accepts (checked at compile time on the target being built, so
// the i386 build checks the i386 rules), and calls whose arguments and results use the wide or unusual places of the
// target's convention: 8-byte stack arguments right after the first, and results in edx:eax or the x87 stack on i386.
// Built twice: with run-time code and with prebuilt stubs (MEMBER_THUNK_NO_RUNTIME_CODE).
#include <member_thunk/member_thunk.hpp>

#include <catch2/catch.hpp>

#include <cstdint>
#include <type_traits>

#if defined(_WIN32)
#include <member_thunk/detail/os/windows_sdk.hpp>
#endif

namespace
{
#if defined(__SIZEOF_INT128__)
	__extension__ typedef unsigned __int128 u128; // a GNU extension: -Wpedantic is told so
#endif
#if defined(__SIZEOF_FLOAT128__)
	__extension__ typedef __float128 f128;
#endif
	using member_thunk::detail::has_other_calling_convention;
	using member_thunk::detail::valid_callback;
	namespace arch = member_thunk::detail::arch;

	// The default convention, with a result that comes back in registers.
	static_assert(valid_callback<int (*)(void*, int)>());
	static_assert(valid_callback<long long (*)(void*, long long, double)>());
	static_assert(valid_callback<char8_t (*)(void*)>() && valid_callback<std::nullptr_t (*)(void*)>());
	static_assert(valid_callback<void (*(*)(void*))()>()); // a function pointer
	// An enumeration is judged by its underlying type.
	enum class small : unsigned char
	{
	};
	static_assert(valid_callback<small (*)(void*)>());
	// Where long double comes back through a hidden pointer in the first argument's place: MinGW's 80-bit one on
	// Windows x64 (pointer in rcx), and the 128-bit one of -mlong-double-128 on i386 (pointer at [esp+4]).
#if defined(_WIN32) && defined(__x86_64__)
	constexpr bool long_double_in_memory = sizeof(long double) > sizeof(double);
#elif defined(__i386__)
	constexpr bool long_double_in_memory = __LDBL_MANT_DIG__ == 113;
#else
	constexpr bool long_double_in_memory = false;
#endif
	static_assert(valid_callback<long double (*)(std::intptr_t, float)>() == !long_double_in_memory);
	// __float128: xmm0 on System V x86-64; a hidden pointer in the first argument's place on i386 and Windows x64.
#if defined(__SIZEOF_FLOAT128__) && defined(__x86_64__) && !defined(_WIN32)
	static_assert(valid_callback<f128 (*)(void*, int)>());
#elif defined(__SIZEOF_FLOAT128__)
	static_assert(!valid_callback<f128 (*)(void*, int)>());
#endif
	// __int128: rax:rdx on System V x86-64, xmm0 on Windows x64 (GCC and Clang), x0:x1 on AArch64; i386 has none.
#if defined(__SIZEOF_INT128__)
	static_assert(valid_callback<u128 (*)(void*, std::uint64_t)>());
	enum class huge : u128
	{
	};
	static_assert(valid_callback<huge (*)(void*)>());
#endif
	// A vector is not a scalar.
	typedef int int4 __attribute__((vector_size(16)));
	static_assert(!valid_callback<int4 (*)(void*)>());
	static_assert(valid_callback<void (*)(void*) noexcept>());

	// Each ABI's own list, checked on every host (the encoders compile everywhere). long double is judged in the
	// format of the compiler at hand.
	static_assert(arch::x86_32_encoder::returns_in_registers<long long> &&
	              arch::x86_32_encoder::returns_in_registers<double>);
	static_assert(arch::x86_32_encoder::returns_in_registers<long double> == (__LDBL_MANT_DIG__ != 113));
	static_assert(arch::x86_64_win64_encoder::returns_in_registers<long double> == (__LDBL_MANT_DIG__ == 53));
	static_assert(arch::x86_64_sysv_encoder::returns_in_registers<long double>);
#if defined(__SIZEOF_FLOAT128__)
	static_assert(arch::x86_64_sysv_encoder::returns_in_registers<f128>);
	static_assert(!arch::x86_64_win64_encoder::returns_in_registers<f128>);
	static_assert(!arch::x86_32_encoder::returns_in_registers<f128>);
	static_assert(!arch::aarch64_encoder::returns_in_registers<f128>); // AArch64 has no __float128
#endif
#if defined(__SIZEOF_INT128__)
	static_assert(arch::x86_64_sysv_encoder::returns_in_registers<u128>);
	static_assert(arch::x86_64_win64_encoder::returns_in_registers<u128>);
	static_assert(arch::aarch64_encoder::returns_in_registers<u128>);
	static_assert(!arch::x86_32_encoder::returns_in_registers<u128>); // i386 has no __int128
#endif
	// A first parameter wider than a pointer would take two stack slots on i386 (and a class result a hidden pointer
	// before it): the object pointer cannot take its place.
	static_assert(valid_callback<long long (*)(long long)>() == (sizeof(long long) == sizeof(void*)));
	static_assert(!valid_callback<double (*)(double)>());
	struct pair_of_ints
	{
		int a;
		int b;
	};
	static_assert(!valid_callback<pair_of_ints (*)(void*)>());

#if defined(_WIN32) && defined(__x86_64__)
	// On x64 Windows __stdcall (CALLBACK, WINAPI) is the default convention itself: Win32 callback types are
	// accepted as they are, and a member declared __stdcall is an ordinary member.
	static_assert(valid_callback<int(__stdcall*)(void*, int)>());
	static_assert(valid_callback<LRESULT(CALLBACK*)(HWND, UINT, WPARAM, LPARAM)>());
	static_assert(std::is_same_v<int(__stdcall*)(void*, int), int (*)(void*, int)>);
#endif
	// Conventions other than the default one are refused, each with its own message (see check_callback).
	static_assert(!has_other_calling_convention<int (*)(void*, int)>);
	static_assert(!has_other_calling_convention<int>);
#if defined(__i386__)
	using stdcall_callback = int(__attribute__((stdcall)) *)(void*, int);
	using fastcall_callback = int(__attribute__((fastcall)) *)(void*, int);
	using regparm_callback = int(__attribute__((regparm(3))) *)(void*, int);
	// GCC warns that thiscall is meant for members, and keeps it in the type all the same.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wattributes"
	using thiscall_callback = int(__attribute__((thiscall)) *)(void*, int);
#pragma GCC diagnostic pop
	static_assert(has_other_calling_convention<stdcall_callback> && !valid_callback<stdcall_callback>());
	static_assert(has_other_calling_convention<fastcall_callback> && !valid_callback<fastcall_callback>());
	static_assert(has_other_calling_convention<regparm_callback> && !valid_callback<regparm_callback>());
	static_assert(has_other_calling_convention<thiscall_callback> && !valid_callback<thiscall_callback>());
	// cdecl spelled out is the default itself.
	static_assert(valid_callback<int(__attribute__((cdecl)) *)(void*, int)>());
#elif defined(__x86_64__) && !defined(_WIN32)
	using ms_abi_callback = int(__attribute__((ms_abi)) *)(void*, int);
	static_assert(has_other_calling_convention<ms_abi_callback> && !valid_callback<ms_abi_callback>());
	static_assert(valid_callback<int(__attribute__((sysv_abi)) *)(void*, int)>());
#endif

	struct wide
	{
		long long id;

		long long add(long long x, double y) { return id + x + static_cast<long long>(y); }
		double scale(double x, long long y) { return x * static_cast<double>(y) + static_cast<double>(id); }
#if defined(__SIZEOF_INT128__)
		u128 widen(std::uint64_t x)
		{
			return (static_cast<u128>(x) << 64U) | static_cast<std::uint64_t>(id);
		}
#endif
#if defined(__SIZEOF_FLOAT128__)
		f128 quad(std::uint64_t x)
		{
			return static_cast<f128>(x) * static_cast<f128>(x) + static_cast<f128>(id); // needs more than 64 bits
		}
#endif
		long double extended(float x)
		{
			return static_cast<long double>(x) + static_cast<long double>(id);
		}
		std::uint64_t mix(std::uint64_t a, std::uint32_t b, std::uint64_t c)
		{
			return (a ^ c) + b + static_cast<std::uint64_t>(id);
		}
	};

	/// The compile-time and the run-time member forms of one callback, called with a garbage first argument. A result
	/// that came back through a hidden pointer in the first argument's place would be written over the object and
	/// the call would read its arguments one place off: the object is checked too.
	template<class Callback, auto Member, class... Args>
	void check_both_member_forms(wide& w, Args... args)
	{
		const auto expected = (w.*Member)(args...);
		const long long id = w.id;
		member_thunk::page p = member_thunk::allocate_page();
		const Callback compile_time = p.template make_thunk<Callback, Member>(&w);
		const Callback run_time = p.template make_thunk<Callback>(&w, Member);
		p.mark_executable();
		const auto garbage = reinterpret_cast<void*>(std::uintptr_t{0xBAD});
		CHECK(compile_time(garbage, args...) == expected);
		CHECK(run_time(garbage, args...) == expected);
		CHECK(w.id == id);
	}
} // namespace

TEST_CASE("conventions::8-byte arguments right after the first, 8-byte results", "[conventions]")
{
	wide w{1LL << 40};
	check_both_member_forms<long long (*)(void*, long long, double), &wide::add>(w, -(3LL << 35), 12.0);
	check_both_member_forms<double (*)(void*, double, long long), &wide::scale>(w, 0.5, 6LL);
	check_both_member_forms<std::uint64_t (*)(void*, std::uint64_t, std::uint32_t, std::uint64_t), &wide::mix>(
	    w, 0xFFFF'0000'FFFF'0000ULL, 7U, 0x0123'4567'89AB'CDEFULL);
}

// On Windows x64 with MinGW such a callback is refused at compile time (the static_assert above): nothing to run.
#if !(defined(_WIN32) && defined(__x86_64__))
TEST_CASE("conventions::a long double result (the x87 stack on x86)", "[conventions]")
{
	wide w{-5};
	check_both_member_forms<long double (*)(void*, float), &wide::extended>(w, 2.5F);
}
#endif

// Only System V x86-64 returns __float128 in a register (xmm0); the other targets refuse it at compile time (the
// static_asserts above, and tests/compile_fail/float128_return.cpp).
#if defined(__SIZEOF_FLOAT128__) && defined(__x86_64__) && !defined(_WIN32)
TEST_CASE("conventions::a __float128 result (xmm0 on System V x86-64)", "[conventions]")
{
	wide w{7};
	check_both_member_forms<f128 (*)(void*, std::uint64_t), &wide::quad>(w, 0xFFFF'FFFF'FFFF'FFFFULL);
}
#endif

#if defined(__SIZEOF_INT128__)
TEST_CASE("conventions::a 128-bit integer result (two registers)", "[conventions]")
{
	wide w{3};
	check_both_member_forms<u128 (*)(void*, std::uint64_t), &wide::widen>(w, 0xFFFF'FFFF'FFFF'FFFFULL);
}
#endif
