// Closures with every signature their ABI allows: from no parameter up to the most integer-class parameters that stay
// in registers once the object pointer is in front (System V x86-64: 5, AArch64: 7, Windows x64: 3 positions of any
// kind), mixed with float and double (more than 8 of them on System V and AArch64, where they do not count), and
// every kind of result (void, integers of each width, bool, double, float, pointer, enumerations). Each signature is
// made in every form: the compile-time member, the run-time member and a callable on a page near the code (direct
// jumps) and on a page of a heap placed far from it (absolute jumps), and the three unique closures from the default
// heap and from a heap<std::mutex>. The member records the bits of every argument it receives: a register moved one
// place off, or left behind, shows up as a wrong value at a position. Values differ at every position and use the
// high bits of each type, so a 32-bit move in place of a 64-bit one fails too.
//
// The suite is built twice (tests/CMakeLists.txt): run-time code, and MEMBER_THUNK_NO_RUNTIME_CODE (every page and
// unique closure a prebuilt stub, whose shared tail moves the registers).
#include <member_thunk/member_thunk.hpp>

#include "support/far_os.hpp"

#include <catch2/catch.hpp>

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#if !defined(MEMBER_THUNK_ARCH_X86_32)
namespace
{
	enum class colour : std::uint8_t
	{
		red = 1,
		green = 2,
		blue = 3
	};

	enum class wide_enum : std::int64_t
	{
		low = -1,
		high = std::int64_t{1} << 62
	};

#if defined(__SIZEOF_INT128__)
	__extension__ typedef unsigned __int128 u128; // a GNU extension: -Wpedantic is told so
#endif

	/// The memory pointer arguments and results point into.
	std::array<char, 64> storage{};

	/// The bits of an argument as it arrived (or as it was sent), so that values of any parameter type compare
	/// exactly.
	template<class T>
	std::uint64_t bits(T value)
	{
		if constexpr (std::is_pointer_v<T>)
			return reinterpret_cast<std::uintptr_t>(value);
		else if constexpr (std::is_null_pointer_v<T>)
			return value == nullptr ? 0 : 1;
		else if constexpr (std::is_enum_v<T>)
			return static_cast<std::uint64_t>(static_cast<std::underlying_type_t<T>>(value));
		else if constexpr (std::is_same_v<T, double>)
			return std::bit_cast<std::uint64_t>(value);
		else if constexpr (std::is_same_v<T, float>)
			return std::bit_cast<std::uint32_t>(value);
		else
			return static_cast<std::uint64_t>(value);
	}

	/// The value sent at position `i` for a parameter of type T: different at each position, with every byte of an
	/// integer non-zero and the top bit of 64-bit values set.
	template<class T>
	T value_at(std::size_t i)
	{
		const std::uint64_t pattern = 0x8172'6354'4536'2718U + 0x0101'0101'0101'0101U * i;
		if constexpr (std::is_pointer_v<T>)
			return storage.data() + i % storage.size();
		else if constexpr (std::is_enum_v<T>)
			return static_cast<T>(static_cast<std::underlying_type_t<T>>(pattern));
		else if constexpr (std::is_same_v<T, double>)
			return 1000.0 + static_cast<double>(i) * 1.25;
		else if constexpr (std::is_same_v<T, float>)
			return -500.0F - static_cast<float>(i) * 0.75F;
		else if constexpr (std::is_same_v<T, bool>)
			return i % 2 == 1;
		else
			return static_cast<T>(pattern);
	}

	/// A result that depends on the object and on every argument, in a type's own terms.
	template<class R>
	R result_from(std::uint64_t mixed)
	{
		if constexpr (std::is_pointer_v<R>)
			return storage.data() + mixed % storage.size();
		else if constexpr (std::is_enum_v<R>)
			return static_cast<R>(static_cast<std::underlying_type_t<R>>(mixed));
		else if constexpr (std::is_floating_point_v<R>)
			return static_cast<R>(mixed % 1'000'003U) / R{8} + R{1} / R{2}; // exact in a float
		else if constexpr (std::is_same_v<R, bool>)
			return mixed % 2 == 1;
#if defined(__SIZEOF_INT128__)
		else if constexpr (std::is_same_v<R, u128>)
			return (static_cast<u128>(mixed) << 64U) | ~mixed; // both halves of the result carry something
#endif
		else
			return static_cast<R>(mixed);
	}

	/// What every closure of this file calls: records the arguments' bits and returns a result made of them.
	struct subject
	{
		std::uint64_t id = 0;
		std::vector<std::uint64_t> seen;

		template<class R, class... A>
		R take(A... args)
		{
			seen = {bits(args)...};
			std::uint64_t mixed = id * 0x9E37'79B9'7F4A'7C15U;
			for (const std::uint64_t v : seen)
				mixed = (mixed ^ v) * 0x0000'0100'0000'01B3U;
			if constexpr (!std::is_void_v<R>)
				return result_from<R>(mixed);
		}
	};

	/// Calls `closure`, which is bound to `s`, and compares what `s` saw and what came back with a direct call of the
	/// member on an object with the same id.
	template<class R, class... A>
	void expect_call(const char* form, R (*closure)(A...), subject& s, A... args)
	{
		INFO("form: " << form << ", object " << s.id);
		REQUIRE(closure != nullptr);
		subject reference{s.id, {}};
		s.seen.clear();
		if constexpr (std::is_void_v<R>)
		{
			reference.take<R, A...>(args...);
			closure(args...);
		}
		else
		{
			const R expected = reference.take<R, A...>(args...);
			const R result = closure(args...);
			CHECK(result == expected);
		}
		CHECK(s.seen == reference.seen);
	}

	/// Makes the closure R(A...) in every form and calls each with `args`.
	template<class R, class... A>
	void check_closure(A... args)
	{
		using callback = R (*)(A...);
		constexpr auto member = &subject::take<R, A...>;
		std::array<subject, 12> s{};
		for (std::size_t i = 0; i < s.size(); ++i)
			s.at(i).id = 0x1111 * (i + 1);
		// Callables that reach their object by capture.
		auto call_2 = [&o = s[2]](A... a) { return o.take<R, A...>(a...); };
		auto call_5 = [&o = s[5]](A... a) { return o.take<R, A...>(a...); };
		auto call_8 = [&o = s[8]](A... a) { return o.take<R, A...>(a...); };
		auto call_11 = [&o = s[11]](A... a) { return o.take<R, A...>(a...); };

		// A page of the default heap: near the code.
		member_thunk::page near_page = member_thunk::allocate_page();
		const callback near_ct = near_page.make_closure<callback, member>(&s[0]);
		const callback near_rt = near_page.make_closure<callback>(&s[1], member);
		const callback near_callable = near_page.make_closure<callback>(call_2);
		near_page.mark_executable();
		expect_call("compile-time member, near page", near_ct, s[0], args...);
		expect_call("run-time member, near page", near_rt, s[1], args...);
		expect_call("callable, near page", near_callable, s[2], args...);

		// A page of a heap out of direct reach of the code.
		{
			member_thunk::heap<member_thunk::null_lock, test::far_os> far_heap;
			member_thunk::page far_page = far_heap.allocate_page();
			const callback far_ct = far_page.make_closure<callback, member>(&s[3]);
			const callback far_rt = far_page.make_closure<callback>(&s[4], member);
			const callback far_callable = far_page.make_closure<callback>(call_5);
			far_page.mark_executable();
			expect_call("compile-time member, far page", far_ct, s[3], args...);
			expect_call("run-time member, far page", far_rt, s[4], args...);
			expect_call("callable, far page", far_callable, s[5], args...);
		}

		// Unique closures of the default heap.
		const auto unique_ct = member_thunk::make_unique_closure<callback, member>(&s[6]);
		const auto unique_rt = member_thunk::make_unique_closure<callback>(&s[7], member);
		const auto unique_callable = member_thunk::make_unique_closure<callback>(call_8);
		expect_call("compile-time member, unique", unique_ct.get(), s[6], args...);
		expect_call("run-time member, unique", unique_rt.get(), s[7], args...);
		expect_call("callable, unique", unique_callable.get(), s[8], args...);

		// Unique closures of a heap<std::mutex>.
		member_thunk::heap<std::mutex> h;
		{
			const auto heap_ct = h.make_unique_closure<callback, member>(&s[9]);
			const auto heap_rt = h.make_unique_closure<callback>(&s[10], member);
			const auto heap_callable = h.make_unique_closure<callback>(call_11);
			expect_call("compile-time member, unique from a heap", heap_ct.get(), s[9], args...);
			expect_call("run-time member, unique from a heap", heap_rt.get(), s[10], args...);
			expect_call("callable, unique from a heap", heap_callable.get(), s[11], args...);
		}

		// The near ones still work after the others are gone (nothing was shared by mistake).
		expect_call("compile-time member, near page, again", near_ct, s[0], args...);
	}

	/// Integer-class parameter types, cycled through by position: every width, signed and unsigned, pointers,
	/// enumerations of 1 and 8 bytes.
	using integer_kinds = std::tuple<long, int, const char*, short, std::uint64_t, colour, signed char, wide_enum,
	                                 unsigned, std::int64_t, char, std::uintptr_t>;
	template<std::size_t I>
	using integer_kind = std::tuple_element_t<I % std::tuple_size_v<integer_kinds>, integer_kinds>;

	/// The closure R(T0, T1, ... Tn-1) with the integer kinds, for one n.
	template<class R, std::size_t... I>
	void check_integers(std::index_sequence<I...> /*positions*/)
	{
		check_closure<R, integer_kind<I>...>(value_at<integer_kind<I>>(I)...);
	}

	/// The same closure for n = 0 up to `Most` (inclusive).
	template<class R, std::size_t... N>
	void check_integer_counts(std::index_sequence<N...> /*counts*/)
	{
		(check_integers<R>(std::make_index_sequence<N>{}), ...);
	}

	/// Every result kind, for a closure with the integer kinds as parameters.
	template<std::size_t Count>
	void check_every_result()
	{
		constexpr auto positions = std::make_index_sequence<Count>{};
		check_integers<void>(positions);
		check_integers<int>(positions);
		check_integers<long>(positions);
		check_integers<unsigned char>(positions);
		check_integers<short>(positions);
		check_integers<bool>(positions);
		check_integers<std::uint64_t>(positions);
		check_integers<double>(positions);
		check_integers<float>(positions);
		check_integers<const char*>(positions);
		check_integers<colour>(positions);
		check_integers<wide_enum>(positions);
	}

#if defined(MEMBER_THUNK_OS_WINDOWS)
	constexpr std::size_t most_integers = 3; // positions of any kind
#elif defined(MEMBER_THUNK_ARCH_AARCH64)
	constexpr std::size_t most_integers = 7;
#else
	constexpr std::size_t most_integers = 5;
#endif
} // namespace

TEST_CASE("closures::no parameter, every result kind", "[closures][signatures]")
{
	check_every_result<0>();
}

TEST_CASE("closures::0 up to the most integer-class parameters", "[closures][signatures]")
{
	check_integer_counts<long>(std::make_index_sequence<most_integers + 1>{});
	check_integer_counts<std::uint64_t>(std::make_index_sequence<most_integers + 1>{});
}

TEST_CASE("closures::the most integer-class parameters, every result kind", "[closures][signatures]")
{
	check_every_result<most_integers>();
}

TEST_CASE("closures::one parameter of each integer kind", "[closures][signatures]")
{
	// bool and each kind alone: the one register moved is the first.
	check_closure<long, bool>(true);
	check_closure<long, bool>(false);
	check_closure<long, char>(value_at<char>(0));
	check_closure<long, const char*>(value_at<const char*>(9));
	check_closure<long, colour>(colour::blue);
	check_closure<long, wide_enum>(wide_enum::high);
	check_closure<long, std::nullptr_t>(nullptr);
	check_closure<int, unsigned short>(value_at<unsigned short>(3));
	check_closure<float, float>(2.5F);
	check_closure<double, double>(-0.125);
}

#if defined(MEMBER_THUNK_OS_WINDOWS)
namespace
{
	/// Windows x64: a parameter's kind chooses which of its position's two registers it takes (rcx or xmm0, ...);
	/// the closure moves both. Every sequence of integer and floating-point positions, of lengths 1 to 3.
	template<std::size_t Bits, std::size_t I>
	using position_kind = std::conditional_t<((Bits >> I) & 1U) != 0, double, long>;

	template<std::size_t Bits, std::size_t... I>
	void check_positions(std::index_sequence<I...> /*positions*/)
	{
		check_closure<double, position_kind<Bits, I>...>(value_at<position_kind<Bits, I>>(I)...);
		check_closure<long, position_kind<Bits, I>...>(value_at<position_kind<Bits, I>>(I)...);
	}

	template<std::size_t Length, std::size_t... Bits>
	void check_position_sequences(std::index_sequence<Bits...> /*every pattern*/)
	{
		(check_positions<Bits>(std::make_index_sequence<Length>{}), ...);
	}
} // namespace

TEST_CASE("closures::Windows x64, every mix of integer and double positions", "[closures][signatures]")
{
	check_position_sequences<1>(std::make_index_sequence<2>{});
	check_position_sequences<2>(std::make_index_sequence<4>{});
	check_position_sequences<3>(std::make_index_sequence<8>{});
}

TEST_CASE("closures::Windows x64, float, pointers, narrow integers and enumerations by position",
          "[closures][signatures]")
{
	check_closure<float, float, const char*, colour>(value_at<float>(0), value_at<const char*>(1), colour::green);
	check_closure<int, char, float, double>(value_at<char>(0), value_at<float>(1), value_at<double>(2));
	check_closure<std::uint64_t, std::uint64_t, wide_enum, float>(value_at<std::uint64_t>(0), wide_enum::low,
	                                                              value_at<float>(2));
	check_closure<void, float, float, float>(value_at<float>(0), value_at<float>(1), value_at<float>(2));
	check_closure<const char*, double, short, bool>(value_at<double>(0), value_at<short>(1), true);
}
#else
TEST_CASE("closures::integers mixed with float and double", "[closures][signatures]")
{
	// The most integer-class parameters, with floating-point ones before, between and after them.
#if defined(MEMBER_THUNK_ARCH_AARCH64)
	check_closure<double, double, long, float, int, double, const char*, float, short, double, std::uint64_t, colour,
	              float, unsigned>(value_at<double>(0), value_at<long>(1), value_at<float>(2), value_at<int>(3),
	                               value_at<double>(4), value_at<const char*>(5), value_at<float>(6),
	                               value_at<short>(7), value_at<double>(8), value_at<std::uint64_t>(9), colour::red,
	                               value_at<float>(11), value_at<unsigned>(12));
#else
	check_closure<double, double, long, float, int, double, const char*, float, short, double, std::uint64_t>(
	    value_at<double>(0), value_at<long>(1), value_at<float>(2), value_at<int>(3), value_at<double>(4),
	    value_at<const char*>(5), value_at<float>(6), value_at<short>(7), value_at<double>(8),
	    value_at<std::uint64_t>(9));
#endif
	// Floating point only: nothing moves but the object pointer goes in front.
	check_closure<float, float, double>(value_at<float>(0), value_at<double>(1));
}

TEST_CASE("closures::more than 8 floating-point parameters (the rest on the stack), with the most integers",
          "[closures][signatures]")
{
	// 12 float and double parameters: v0-v7 / xmm0-7 and four stack slots, which the closure leaves alone.
#if defined(MEMBER_THUNK_ARCH_AARCH64)
	check_closure<float, double, float, long, double, double, int, double, float, double, const char*, double, double,
	              short, double, float, std::uint64_t, double, colour, unsigned>(
	    value_at<double>(0), value_at<float>(1), value_at<long>(2), value_at<double>(3), value_at<double>(4),
	    value_at<int>(5), value_at<double>(6), value_at<float>(7), value_at<double>(8), value_at<const char*>(9),
	    value_at<double>(10), value_at<double>(11), value_at<short>(12), value_at<double>(13), value_at<float>(14),
	    value_at<std::uint64_t>(15), value_at<double>(16), colour::blue, value_at<unsigned>(18));
#else
	check_closure<float, double, float, long, double, double, int, double, float, double, const char*, double, double,
	              short, double, float, std::uint64_t, double>(
	    value_at<double>(0), value_at<float>(1), value_at<long>(2), value_at<double>(3), value_at<double>(4),
	    value_at<int>(5), value_at<double>(6), value_at<float>(7), value_at<double>(8), value_at<const char*>(9),
	    value_at<double>(10), value_at<double>(11), value_at<short>(12), value_at<double>(13), value_at<float>(14),
	    value_at<std::uint64_t>(15), value_at<double>(16));
#endif
	// Ten doubles and no integer: the shift is empty.
	check_closure<double, double, double, double, double, double, double, double, double, double, double>(
	    value_at<double>(0), value_at<double>(1), value_at<double>(2), value_at<double>(3), value_at<double>(4),
	    value_at<double>(5), value_at<double>(6), value_at<double>(7), value_at<double>(8), value_at<double>(9));
}
#endif

TEST_CASE("closures::results in two registers or on the x87 stack", "[closures][signatures]")
{
	// Results the ABI returns in registers other than the usual one: the closure leaves the return path alone.
#if defined(__SIZEOF_INT128__)
	check_integers<u128>(std::make_index_sequence<most_integers>{}); // rax:rdx, x0:x1, xmm0 on Windows x64
#endif
#if !defined(MEMBER_THUNK_OS_WINDOWS)
	check_integers<long double>(std::make_index_sequence<most_integers>{}); // st(0) on x86-64, q0 on AArch64
#endif
}

TEST_CASE("closures::noexcept callbacks", "[closures][signatures]")
{
	struct counter
	{
		long total = 0;
		long add(long x, double y) noexcept
		{
			total += x + static_cast<long>(y);
			return total;
		}
	} c;
	using callback = long (*)(long, double) noexcept;
	member_thunk::page p = member_thunk::allocate_page();
	const callback compile_time = p.make_closure<callback, &counter::add>(&c);
	const callback run_time = p.make_closure<callback>(&c, &counter::add);
	auto lambda = [&c](long x, double y) noexcept { return c.add(x, y); };
	const callback callable = p.make_closure<callback>(lambda);
	p.mark_executable();
	STATIC_REQUIRE(noexcept(compile_time(1, 2.0)));
	CHECK(compile_time(1, 2.0) == 3);
	CHECK(run_time(10, 20.0) == 33);
	CHECK(callable(100, 200.0) == 333);
	const auto unique = member_thunk::make_unique_closure<callback, &counter::add>(&c);
	CHECK(unique.get()(1000, 2000.0) == 3333);
}
#else
TEST_CASE("closures::i386 refuses closures at compile time", "[closures][signatures]")
{
	// Every argument travels on the stack: no signature is accepted, not even one without parameters (the refusal
	// itself is tests/compile_fail/closure_i386.cpp).
	namespace detail = member_thunk::detail;
	using detail::arch::closures::fit;
	STATIC_REQUIRE_FALSE(detail::valid_closure_callback<void (*)()>());
	STATIC_REQUIRE_FALSE(detail::valid_closure_callback<int (*)(const void*, const void*)>());
	STATIC_REQUIRE(detail::closure_fit(detail::type_list<>{}) == fit::unsupported_architecture);
	STATIC_REQUIRE(detail::closure_fit(detail::type_list<int, double>{}) == fit::unsupported_architecture);
	// Thunks are unaffected.
	STATIC_REQUIRE(detail::valid_callback<int (*)(void*, int)>());
}
#endif
