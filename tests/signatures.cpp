// Thunks called through the returned pointer with many signatures: no arguments after the first up to enough
// integer and floating-point arguments to spill to the stack, mixed types, structures by value, several return
// types. Each is made in all three forms (compile-time member, run-time member, callable) and compared with a
// direct call of the same member. Built twice:
// with run-time code and with prebuilt stubs (MEMBER_THUNK_NO_RUNTIME_CODE).
#include <member_thunk/member_thunk.hpp>

#include "support/backend.hpp"

#include <catch2/catch.hpp>

#include <cstdint>
#include <string>

namespace
{
	struct big
	{
		long a;
		long b;
		long c;
		double d;
	};

	enum class colour : std::uint8_t
	{
		red = 1,
		green = 2,
		blue = 3
	};

	struct opaque_handle;
	using handle = opaque_handle*;

	// Every member mixes in `id`, so a result proves which object the thunk bound.
	struct subject
	{
		long id;

		int none() { return static_cast<int>(id); }
		long one(long a) { return id * 1000 + a; }
		double one_double(double a) { return static_cast<double>(id) + a * 0.5; }
		float one_float(float a) { return static_cast<float>(id) + a; }
		long six(int a, long b, short c, char d, unsigned e, long long f)
		{
			return id + a * 2 + b * 3 + c * 5 + d * 7 + static_cast<long>(e) * 11 + static_cast<long>(f) * 13;
		}
		long ten(long a, long b, long c, long d, long e, long f, long g, long h, long i, long j)
		{
			return id + a + 2 * b + 3 * c + 4 * d + 5 * e + 6 * f + 7 * g + 8 * h + 9 * i + 10 * j;
		}
		double mixed(int a, double b, long c, float d, int e, double f, long g, double h, int i, double j, long k,
		             float l, int m, double n, double o, double p, double q)
		{
			return static_cast<double>(id) + a + b * 2 + static_cast<double>(c) * 3 + static_cast<double>(d) * 4 +
			       e * 5 + f * 6 + static_cast<double>(g) * 7 + h * 8 + i * 9 + j * 10 + static_cast<double>(k) * 11 +
			       static_cast<double>(l) * 12 + m * 13 + n * 14 + o * 15 + p * 16 + q * 17;
		}
		long by_value(big value, int tail)
		{
			return id + value.a + value.b * 2 + value.c * 3 + static_cast<long>(value.d) + tail;
		}
		void no_result(long* out, long value) { *out = id + value; }
		const char* pointer_result(int which) { return which == 0 ? "zero" : "other"; }
		colour enum_result(colour in) { return id % 2 == 0 ? in : colour::blue; }
		bool bool_result(bool in) { return !in; }
		std::uint64_t wide_result(std::uint64_t in) { return in ^ static_cast<std::uint64_t>(id); }
	};

	/// Makes the same callback three ways and checks each against `expected` when called with `args`.
	template<class Callback, auto Member, class... Args>
	void check_all_forms(subject& s, Args... args)
	{
		const auto expected = (s.*Member)(args...);
		member_thunk::page p = member_thunk::allocate_page();
		const Callback compile_time = p.template make_thunk<Callback, Member>(&s);
		const Callback run_time = p.template make_thunk<Callback>(&s, Member);
		auto lambda = [&s](auto... a) { return (s.*Member)(a...); };
		const Callback callable = p.template make_thunk<Callback>(lambda);
		p.mark_executable();
		REQUIRE(p.prebuilt() == test::prebuilt_build);
		// The first argument is garbage on purpose: the thunk must replace it.
		const auto garbage = reinterpret_cast<void*>(std::uintptr_t{0xDEAD});
		CHECK(compile_time(garbage, args...) == expected);
		CHECK(run_time(garbage, args...) == expected);
		CHECK(callable(garbage, args...) == expected);
	}
} // namespace

TEST_CASE("signatures::no argument after the first", "[signatures]")
{
	subject s{7};
	check_all_forms<int (*)(void*), &subject::none>(s);
}

TEST_CASE("signatures::one integer, double, float", "[signatures]")
{
	subject s{3};
	check_all_forms<long (*)(void*, long), &subject::one>(s, 42L);
	check_all_forms<double (*)(void*, double), &subject::one_double>(s, 2.25);
	check_all_forms<float (*)(void*, float), &subject::one_float>(s, 1.5F);
}

TEST_CASE("signatures::six integers of mixed widths (the last spills to the stack)", "[signatures]")
{
	subject s{11};
	check_all_forms<long (*)(void*, int, long, short, char, unsigned, long long), &subject::six>(
	    s, -1, 100000L, static_cast<short>(-300), 'x', 4000000000U, -7LL);
}

TEST_CASE("signatures::ten integers (five on the stack)", "[signatures]")
{
	subject s{5};
	check_all_forms<long (*)(void*, long, long, long, long, long, long, long, long, long, long), &subject::ten>(
	    s, 1L, -2L, 3L, -4L, 5L, -6L, 7L, -8L, 9L, -10L);
}

TEST_CASE("signatures::integers and floating point mixed, both kinds spilling", "[signatures]")
{
	subject s{13};
	check_all_forms<double (*)(void*, int, double, long, float, int, double, long, double, int, double, long, float,
	                           int, double, double, double, double),
	                &subject::mixed>(s, 1, 2.5, 3L, 4.25F, 5, 6.5, 7L, 8.75, 9, 10.5, 11L, 12.5F, 13, 14.25, 15.5,
	                                 16.75, 17.125);
}

TEST_CASE("signatures::a structure passed by value", "[signatures]")
{
	subject s{2};
	check_all_forms<long (*)(void*, big, int), &subject::by_value>(s, big{10, 20, 30, 40.0}, 9);
}

TEST_CASE("signatures::void, pointer, enum, bool and 64-bit results", "[signatures]")
{
	subject s{4};
	long out = 0;
	member_thunk::page p = member_thunk::allocate_page();
	const auto set = p.make_thunk<void (*)(void*, long*, long), &subject::no_result>(&s);
	const auto text = p.make_thunk<const char* (*)(void*, int), &subject::pointer_result>(&s);
	const auto pick = p.make_thunk<colour (*)(void*, colour)>(&s, &subject::enum_result);
	const auto negate = p.make_thunk<bool (*)(void*, bool), &subject::bool_result>(&s);
	const auto wide = p.make_thunk<std::uint64_t (*)(void*, std::uint64_t), &subject::wide_result>(&s);
	p.mark_executable();
	set(nullptr, &out, 38);
	CHECK(out == 42);
	CHECK(std::string(text(nullptr, 0)) == "zero");
	CHECK(pick(nullptr, colour::green) == colour::green);
	CHECK(negate(nullptr, false));
	CHECK(wide(nullptr, 0xFFFF'0000'0000'0000) == 0xFFFF'0000'0000'0004);
}

TEST_CASE("signatures::first parameter as a handle, an integer or a noexcept callback", "[signatures]")
{
	subject s{9};
	member_thunk::page p = member_thunk::allocate_page();
	const auto from_handle = p.make_thunk<long (*)(handle, long), &subject::one>(&s);
	const auto from_integer = p.make_thunk<long (*)(std::uintptr_t, long), &subject::one>(&s);
	const auto from_signed = p.make_thunk<long (*)(std::intptr_t, long)>(&s, &subject::one);
	const auto no_throw = p.make_thunk<long (*)(void*, long) noexcept, &subject::one>(&s);
	p.mark_executable();
	CHECK(from_handle(nullptr, 1) == 9001);
	CHECK(from_integer(12345, 2) == 9002);
	CHECK(from_signed(-1, 3) == 9003);
	CHECK(no_throw(nullptr, 4) == 9004);
}
