// Closures of every kind of member (virtual, of a second base, of a virtual base, const, volatile, noexcept,
// lvalue-ref-qualified), of callables, and of both at once on one page with thunks; exceptions through closures; the
// slots a closure takes (one or two of run-time code, direct or absolute; one of prebuilt stubs), a page filled with
// closures; calls through revoked closures.
#include <member_thunk/member_thunk.hpp>

#include "support/child.hpp"
#include "support/far_os.hpp"

#include <catch2/catch.hpp>

#include <csignal>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#if !defined(MEMBER_THUNK_ARCH_X86_32)
namespace
{
	// Three positions: the most Windows x64 allows, and a shift of two integer registers elsewhere.
	using callback = long (*)(long, double, int);

	/// What a member returns for (x, y, z) on an object with `offset`: every argument at its own weight.
	constexpr long expected(long offset, long x, double y, int z)
	{
		return offset + 2 * x + 3 * static_cast<long>(y) + 5 * z;
	}

	struct base
	{
		long offset = 1;
		base() = default;
		base(const base&) = default;
		base& operator=(const base&) = default;
		base(base&&) = default;
		base& operator=(base&&) = default;
		virtual ~base() = default;
		virtual long compute(long x, double y, int z) { return expected(-1000, x, y, z); }
		long plain(long x, double y, int z) { return expected(offset, x, y, z); }
	};

	struct other_base
	{
		long other_offset = 500;
		other_base() = default;
		other_base(const other_base&) = default;
		other_base& operator=(const other_base&) = default;
		other_base(other_base&&) = default;
		other_base& operator=(other_base&&) = default;
		virtual ~other_base() = default;
		virtual long other(long x, double y, int z) { return expected(-2000, x, y, z); }
		long other_plain(long x, double y, int z) { return expected(other_offset, x, y, z); }
	};

	struct derived final : base, other_base
	{
		long own_offset = 7;
		long compute(long x, double y, int z) override { return expected(own_offset, x, y, z); }
		long other(long x, double y, int z) override { return expected(own_offset + other_offset, x, y, z); }
		long constant(long x, double y, int z) const { return expected(own_offset * 10, x, y, z); }
		long no_throw(long x, double y, int z) noexcept { return expected(own_offset * 100, x, y, z); }
		long by_ref(long x, double y, int z) & { return expected(own_offset * 1000, x, y, z); }
		long by_const_ref(long x, double y, int z) const& { return expected(own_offset * 10000, x, y, z); }
	};

	struct virtual_root
	{
		long root_offset = 3;
		virtual_root() = default;
		virtual_root(const virtual_root&) = default;
		virtual_root& operator=(const virtual_root&) = default;
		virtual_root(virtual_root&&) = default;
		virtual_root& operator=(virtual_root&&) = default;
		virtual ~virtual_root() = default;
		virtual long root(long x, double y, int z) { return expected(root_offset, x, y, z); }
	};
	struct left : virtual virtual_root
	{
		long left_padding = 0;
	};
	struct right : virtual virtual_root
	{
		long right_padding = 0;
		long root(long x, double y, int z) override { return expected(root_offset * 100, x, y, z); }
	};
	struct diamond final : left, right
	{
	};

	/// Makes the compile-time and the run-time member closure on a page and as unique closures, and checks each
	/// against `want(x, y, z)`.
	template<auto Member, class Callback = callback, class Class, class Want>
	void check_member(Class* object, Want want)
	{
		member_thunk::page p = member_thunk::allocate_page();
		const Callback compile_time = p.template make_closure<Callback, Member>(object);
		const Callback run_time = p.template make_closure<Callback>(object, Member);
		p.mark_executable();
		const auto unique_ct = member_thunk::make_unique_closure<Callback, Member>(object);
		const auto unique_rt = member_thunk::make_unique_closure<Callback>(object, Member);
		for (const Callback closure : {compile_time, run_time, unique_ct.get(), unique_rt.get()})
		{
			CHECK(closure(11, 13.0, 17) == want(11, 13.0, 17));
			CHECK(closure(-4, 0.5, 1) == want(-4, 0.5, 1));
		}
	}
} // namespace

TEST_CASE("closures_members::a virtual member through a base pointer runs the override", "[closures][members]")
{
	derived d;
	base* as_base = &d;
	check_member<&base::compute>(as_base, [&](long x, double y, int z) { return expected(d.own_offset, x, y, z); });
	// Dispatch happens at each call: the closure follows the object.
	member_thunk::page p = member_thunk::allocate_page();
	const callback closure = p.make_closure<callback, &base::compute>(as_base);
	p.mark_executable();
	d.own_offset = 70;
	CHECK(closure(1, 2.0, 3) == expected(70, 1, 2.0, 3));
}

TEST_CASE("closures_members::a closure made in a base constructor dispatches to the final override",
          "[closures][members]")
{
	struct widget_base
	{
		member_thunk::page page = member_thunk::allocate_page();
		callback compile_time = nullptr;
		callback run_time = nullptr;
		widget_base()
		{
			compile_time = page.make_closure<callback, &widget_base::handle>(this);
			run_time = page.make_closure<callback>(this, &widget_base::handle);
			page.mark_executable();
		}
		widget_base(const widget_base&) = delete;
		widget_base& operator=(const widget_base&) = delete;
		widget_base(widget_base&&) = delete;
		widget_base& operator=(widget_base&&) = delete;
		virtual ~widget_base() = default;
		virtual long handle(long x, double y, int z) { return expected(0, x, y, z); }
	};
	struct button final : widget_base
	{
		long handle(long x, double y, int z) override { return -expected(0, x, y, z); }
	};
	button b;
	CHECK(b.compile_time(1, 2.0, 3) == -expected(0, 1, 2.0, 3));
	CHECK(b.run_time(4, 5.0, 6) == -expected(0, 4, 5.0, 6));
}

TEST_CASE("closures_members::members of the second base adjust the object pointer", "[closures][members]")
{
	derived d;
	d.other_offset = 600;
	check_member<&other_base::other>(&d, [&](long x, double y, int z) { return expected(607, x, y, z); });
	check_member<&other_base::other_plain>(&d, [&](long x, double y, int z) { return expected(600, x, y, z); });
	other_base* as_other = &d;
	check_member<&other_base::other>(as_other, [&](long x, double y, int z) { return expected(607, x, y, z); });
}

TEST_CASE("closures_members::a non-virtual member of the first base", "[closures][members]")
{
	derived d;
	d.offset = 40;
	check_member<&base::plain>(&d, [&](long x, double y, int z) { return expected(40, x, y, z); });
}

TEST_CASE("closures_members::virtual inheritance (a diamond)", "[closures][members]")
{
	diamond d;
	d.root_offset = 9;
	virtual_root* as_root = &d;
	check_member<&virtual_root::root>(as_root, [&](long x, double y, int z) { return expected(900, x, y, z); });
	check_member<&virtual_root::root>(&d, [&](long x, double y, int z) { return expected(900, x, y, z); });
}

TEST_CASE("closures_members::const, noexcept and ref-qualified members", "[closures][members]")
{
	derived d;
	const derived* as_const = &d;
	check_member<&derived::constant>(as_const, [&](long x, double y, int z) { return expected(70, x, y, z); });
	check_member<&derived::no_throw>(&d, [&](long x, double y, int z) { return expected(700, x, y, z); });
	check_member<&derived::no_throw, long (*)(long, double, int) noexcept>(
	    &d, [&](long x, double y, int z) { return expected(700, x, y, z); });
	check_member<&derived::by_ref>(&d, [&](long x, double y, int z) { return expected(7000, x, y, z); });
	check_member<&derived::by_const_ref>(as_const, [&](long x, double y, int z) { return expected(70000, x, y, z); });
}

TEST_CASE("closures_members::volatile objects with volatile members", "[closures][members]")
{
	struct sensor
	{
		long reading = 0;
		long add(long x, double y, int z) volatile
		{
			reading = reading + expected(0, x, y, z);
			return reading;
		}
	};
	volatile sensor s;
	member_thunk::page p = member_thunk::allocate_page();
	const auto compile_time = p.make_closure<callback, &sensor::add>(&s);
	const auto run_time = p.make_closure<callback>(&s, &sensor::add);
	p.mark_executable();
	const auto unique = member_thunk::make_unique_closure<callback, &sensor::add>(&s);
	CHECK(compile_time(1, 0.0, 0) == 2);
	CHECK(run_time(0, 1.0, 0) == 5);
	CHECK(unique.get()(0, 0.0, 1) == 10);
	CHECK(s.reading == 10);
}

TEST_CASE("closures_members::callables (lambdas, function objects, std::function)", "[closures][callables]")
{
	long total = 0;
	auto by_reference = [&total](long x, double y, int z) { return total += expected(0, x, y, z); };
	auto counting = [calls = 0L](long x, double y, int z) mutable { return ++calls * 1000 + expected(0, x, y, z); };
	struct weighted
	{
		long weight;
		long operator()(long x, double y, int z) const { return weight * expected(0, x, y, z); }
	};
	const weighted by_const{3};
	auto generic = [](auto x, auto y, auto z) { return static_cast<long>(x * 2 + static_cast<long>(y) * 3 + z * 5); };
	auto narrower = [](long x, double, int) { return static_cast<int>(x); }; // int converts to the long result
	std::function<long(long, double, int)> function = [](long x, double y, int z) { return -expected(0, x, y, z); };

	member_thunk::page p = member_thunk::allocate_page();
	const callback c1 = p.make_closure<callback>(by_reference);
	const callback c2 = p.make_closure<callback>(counting);
	const callback c3 = p.make_closure<callback>(by_const);
	const callback c4 = p.make_closure<callback>(generic);
	const callback c5 = p.make_closure<callback>(narrower);
	const callback c6 = p.make_closure<callback>(function);
	p.mark_executable();
	CHECK(c1(1, 2.0, 3) == 23);
	CHECK(c1(1, 2.0, 3) == 46);
	CHECK(total == 46);
	CHECK(c2(1, 2.0, 3) == 1023);
	CHECK(c2(1, 2.0, 3) == 2023); // the closure refers to the lambda: its state changes
	CHECK(c3(1, 2.0, 3) == 69);
	CHECK(c4(1, 2.0, 3) == 23);
	CHECK(c5(-8, 2.0, 3) == -8);
	CHECK(c6(1, 2.0, 3) == -23);

	// Unique closures of callables, from the default heap and from a heap.
	member_thunk::heap<member_thunk::slim_lock> h;
	const auto u1 = member_thunk::make_unique_closure<callback>(counting);
	const auto u2 = h.make_unique_closure<callback>(function);
	CHECK(u1.get()(0, 0.0, 0) == 3000);
	CHECK(u2.get()(0, 1.0, 0) == -3);
}

TEST_CASE("closures_members::void() closures", "[closures][callables]")
{
	struct counter
	{
		int count = 0;
		void bump() { ++count; }
	} c;
	int lambda_calls = 0;
	auto lambda = [&lambda_calls] { ++lambda_calls; };
	using callback0 = void (*)();
	member_thunk::page p = member_thunk::allocate_page();
	const callback0 compile_time = p.make_closure<callback0, &counter::bump>(&c);
	const callback0 run_time = p.make_closure<callback0>(&c, &counter::bump);
	const callback0 callable = p.make_closure<callback0>(lambda);
	p.mark_executable();
	const auto unique = member_thunk::make_unique_closure<callback0, &counter::bump>(&c);
	compile_time();
	run_time();
	unique.get()();
	callable();
	CHECK(c.count == 3);
	CHECK(lambda_calls == 1);
}

TEST_CASE("closures_members::closures and thunks on one page", "[closures]")
{
	// A thunk drops the first argument, a closure keeps it: the same member behind both on one page (and in prebuilt
	// stubs, the same data slots behind the two stub tables).
	struct adder
	{
		long base;
		long add(long x, double y, int z) { return expected(base, x, y, z); }
	} a{100};
	member_thunk::page p = member_thunk::allocate_page();
	const auto thunk = p.make_thunk<long (*)(void*, long, double, int), &adder::add>(&a);
	const auto closure = p.make_closure<callback, &adder::add>(&a);
	const auto thunk_rt = p.make_thunk<long (*)(void*, long, double, int)>(&a, &adder::add);
	const auto closure_rt = p.make_closure<callback>(&a, &adder::add);
	p.mark_executable();
	CHECK(thunk(nullptr, 1, 2.0, 3) == expected(100, 1, 2.0, 3));
	CHECK(closure(1, 2.0, 3) == expected(100, 1, 2.0, 3));
	CHECK(thunk_rt(nullptr, 4, 5.0, 6) == expected(100, 4, 5.0, 6));
	CHECK(closure_rt(4, 5.0, 6) == expected(100, 4, 5.0, 6));
	const auto unique_thunk = member_thunk::make_unique_thunk<long (*)(void*, long, double, int), &adder::add>(&a);
	const auto unique_closure = member_thunk::make_unique_closure<callback, &adder::add>(&a);
	CHECK(unique_thunk.get()(nullptr, 7, 8.0, 9) == expected(100, 7, 8.0, 9));
	CHECK(unique_closure.get()(7, 8.0, 9) == expected(100, 7, 8.0, 9));
}

TEST_CASE("closures_members::every closure entry starts with its landing pad", "[closures][landing_pads]")
{
	// endbr64 on x86-64, bti c on AArch64: a closure is only ever reached by an indirect call, which IBT and BTI
	// check. Run-time code (written by the encoders) and prebuilt stubs (the closure stub tables), page and unique.
#if defined(MEMBER_THUNK_ARCH_X86_64)
	const std::vector<unsigned char> landing_pad{0xF3, 0x0F, 0x1E, 0xFA};
#else
	const std::vector<unsigned char> landing_pad{0x5F, 0x24, 0x03, 0xD5};
#endif
	const auto starts_with_landing_pad = [&landing_pad](const void* entry) {
		const auto* const code = static_cast<const unsigned char*>(entry);
		return std::vector<unsigned char>(code, code + landing_pad.size()) == landing_pad;
	};
	struct adder
	{
		long base;
		long add(long x, double y, int z) { return expected(base, x, y, z); }
	} a{10};
	using callback0 = long (*)();
	auto lambda = [&a] { return a.base; };
	member_thunk::page p = member_thunk::allocate_page();
	const auto compile_time = p.make_closure<callback, &adder::add>(&a);
	const auto run_time = p.make_closure<callback>(&a, &adder::add);
	const auto callable = p.make_closure<callback0>(lambda);
	p.mark_executable();
	const auto unique = member_thunk::make_unique_closure<callback, &adder::add>(&a);
	INFO("page of " << (p.prebuilt() ? "prebuilt stubs" : "run-time code"));
	CHECK(starts_with_landing_pad(reinterpret_cast<const void*>(compile_time)));
	CHECK(starts_with_landing_pad(reinterpret_cast<const void*>(run_time)));
	CHECK(starts_with_landing_pad(reinterpret_cast<const void*>(callable)));
	CHECK(starts_with_landing_pad(reinterpret_cast<const void*>(unique.get())));
	CHECK(compile_time(1, 2.0, 3) == expected(10, 1, 2.0, 3));
	CHECK(run_time(1, 2.0, 3) == expected(10, 1, 2.0, 3));
	CHECK(callable() == 10);
	CHECK(unique.get()(1, 2.0, 3) == expected(10, 1, 2.0, 3));
}

TEST_CASE("closures_members::exceptions propagate from the member through the closure", "[closures][exceptions]")
{
	// The closure only jumps, so it is never on the stack: unwinding goes from the member to the caller.
	struct thrower
	{
		long fail(long x, double y, int z)
		{
			throw std::runtime_error("failed with " + std::to_string(expected(0, x, y, z)));
		}
	} t;
	auto lambda = [&t](long x, double y, int z) { return t.fail(x, y, z); };
	member_thunk::page p = member_thunk::allocate_page();
	const callback compile_time = p.make_closure<callback, &thrower::fail>(&t);
	const callback run_time = p.make_closure<callback>(&t, &thrower::fail);
	const callback callable = p.make_closure<callback>(lambda);
	p.mark_executable();
	const auto unique_ct = member_thunk::make_unique_closure<callback, &thrower::fail>(&t);
	const auto unique_rt = member_thunk::make_unique_closure<callback>(&t, &thrower::fail);
	const auto unique_callable = member_thunk::make_unique_closure<callback>(lambda);
	CHECK_THROWS_WITH(compile_time(1, 0.0, 0), "failed with 2");
	CHECK_THROWS_WITH(run_time(0, 1.0, 0), "failed with 3");
	CHECK_THROWS_WITH(callable(0, 0.0, 1), "failed with 5");
	CHECK_THROWS_WITH(unique_ct.get()(2, 0.0, 0), "failed with 4");
	CHECK_THROWS_WITH(unique_rt.get()(0, 2.0, 0), "failed with 6");
	CHECK_THROWS_WITH(unique_callable.get()(0, 0.0, 2), "failed with 10");
	// After an exception the closures work as before.
	struct fine
	{
		long ok(long x, double y, int z) { return expected(1, x, y, z); }
	} f;
	const auto later = member_thunk::make_unique_closure<callback, &fine::ok>(&f);
	CHECK(later.get()(1, 1.0, 1) == 11);
}

namespace
{
	/// The closure with the most argument registers to move: two slots of run-time code in either form. Its result
	/// is the object's tag and each argument as a decimal digit of its own.
#if defined(MEMBER_THUNK_OS_WINDOWS)
	using widest = long (*)(long, long, long);
	constexpr std::size_t widest_shift = 3;
	constexpr std::size_t move_size = 6; // mov r64, r64 + movaps
	constexpr long tag_weight = 1000;
#define MEMBER_THUNK_TEST_WIDEST_ARGS 1, 2, 3
	constexpr long widest_sum = 321;
#elif defined(MEMBER_THUNK_ARCH_AARCH64)
	using widest = long (*)(long, long, long, long, long, long, long);
	constexpr std::size_t widest_shift = 7;
	constexpr long tag_weight = 10'000'000;
#define MEMBER_THUNK_TEST_WIDEST_ARGS 1, 2, 3, 4, 5, 6, 7
	constexpr long widest_sum = 7'654'321;
#else
	using widest = long (*)(long, long, long, long, long);
	constexpr std::size_t widest_shift = 5;
	constexpr std::size_t move_size = 3; // mov r64, r64
	constexpr long tag_weight = 100'000;
#define MEMBER_THUNK_TEST_WIDEST_ARGS 1, 2, 3, 4, 5
	constexpr long widest_sum = 54'321;
#endif
	using narrowest = long (*)();

	struct tagged
	{
		long tag;
#if defined(MEMBER_THUNK_OS_WINDOWS)
		long widest_call(long a, long b, long c)
		{
			return tag * tag_weight + a + 10 * b + 100 * c;
		}
#elif defined(MEMBER_THUNK_ARCH_AARCH64)
		long widest_call(long a, long b, long c, long d, long e, long f, long g)
		{
			return tag * tag_weight + a + 10 * b + 100 * c + 1000 * d + 10'000 * e + 100'000 * f + 1'000'000 * g;
		}
#else
		long widest_call(long a, long b, long c, long d, long e)
		{
			return tag * tag_weight + a + 10 * b + 100 * c + 1000 * d + 10'000 * e;
		}
#endif
		long narrowest_call()
		{
			return tag;
		}
	};
	constexpr auto widest_member = &tagged::widest_call;

	/// What the widest closure bound to an object with `tag` returns for MEMBER_THUNK_TEST_WIDEST_ARGS.
	constexpr long widest_result(long tag)
	{
		return tag * tag_weight + widest_sum;
	}

	/// Whether the closure of run-time code at `code`, which moves `shift` places, jumps directly (else absolutely);
	/// read from its instructions as the encoder lays them out (tests/encoder_closures.cpp).
	bool jumps_directly(const void* closure, std::size_t shift)
	{
		const auto* const code = static_cast<const unsigned char*>(closure);
#if defined(MEMBER_THUNK_ARCH_X86_64)
		const unsigned char jump = code[4 + shift * move_size + 10]; // after endbr64, the moves, movabs
		REQUIRE((jump == 0xE9 || jump == 0x49));                     // jmp rel32, or movabs r11
		return jump == 0xE9;
#else
		const std::size_t at = 4 * (shift + 2); // after bti c, the moves, ldr x0
		const std::uint32_t word = code[at] | (std::uint32_t{code[at + 1]} << 8) | (std::uint32_t{code[at + 2]} << 16) |
		                           (std::uint32_t{code[at + 3]} << 24);
		const bool branch = (word & 0xFC00'0000U) == 0x1400'0000U;
		REQUIRE((branch || (word & 0xFF00'001FU) == 0x5800'0010U)); // b, or ldr x16
		return branch;
#endif
	}

	/// The slots taken by the code of a closure that moves `shift` places.
	std::size_t code_slots(std::size_t shift, bool direct)
	{
		using encoder = member_thunk::detail::arch::native_encoder;
		return (encoder::closure_size(shift, direct) + encoder::slot_size - 1) / encoder::slot_size;
	}

	/// Makes the widest and the narrowest closure on `p` and checks the slots each took and its form.
	void check_slots(member_thunk::page& p, bool expect_direct)
	{
		tagged a{1};
		tagged b{2};
		const std::size_t before = p.free_slots();
		const widest wide = p.make_closure<widest, widest_member>(&a);
		const std::size_t after_wide = p.free_slots();
		const narrowest narrow = p.make_closure<narrowest, &tagged::narrowest_call>(&b);
		const std::size_t after_narrow = p.free_slots();
		if (p.prebuilt())
		{
			// One data slot each: the stub's shared tail moves the registers.
			CHECK(before - after_wide == 1);
			CHECK(after_wide - after_narrow == 1);
		}
		else
		{
			CHECK(jumps_directly(reinterpret_cast<const void*>(wide), widest_shift) == expect_direct);
			CHECK(jumps_directly(reinterpret_cast<const void*>(narrow), 0) == expect_direct);
			CHECK(before - after_wide == code_slots(widest_shift, expect_direct));
			CHECK(after_wide - after_narrow == code_slots(0, expect_direct));
			CHECK(before - after_wide == 2); // whichever the form, on every ABI
			CHECK(after_wide - after_narrow == 1);
		}
		p.mark_executable();
		CHECK(wide(MEMBER_THUNK_TEST_WIDEST_ARGS) == widest_result(1));
		CHECK(narrow() == 2);
	}
} // namespace

TEST_CASE("closures_members::near the code a closure jumps directly (one or two slots)", "[closures][slots]")
{
	member_thunk::page p = member_thunk::allocate_page();
#if defined(MEMBER_THUNK_NO_RUNTIME_CODE)
	CHECK(p.prebuilt());
#else
	CHECK_FALSE(p.prebuilt());
#endif
	check_slots(p, true);
}

TEST_CASE("closures_members::far from the code a closure jumps absolutely (one or two slots)", "[closures][slots]")
{
	member_thunk::heap<member_thunk::null_lock, test::far_os> h;
	member_thunk::page p = h.allocate_page();
	check_slots(p, false);
}

TEST_CASE("closures_members::a page filled with closures of two slots, and one slot left", "[closures][slots]")
{
	member_thunk::page p = member_thunk::allocate_page();
	std::vector<tagged> objects(p.capacity() + 1);
	for (std::size_t i = 0; i < objects.size(); ++i)
		objects[i].tag = static_cast<long>(i);
	// One closure of one slot first, so that an odd number of slots is left for the wide ones.
	const narrowest first = p.make_closure<narrowest, &tagged::narrowest_call>(&objects[0]);
	std::vector<widest> made;
	for (;;)
	{
		try
		{
			made.push_back(p.make_closure<widest, widest_member>(&objects.at(made.size() + 1)));
		}
		catch (const member_thunk::page_full&)
		{
			break;
		}
	}
	narrowest last = nullptr;
	if (p.prebuilt())
	{
		CHECK(made.size() == p.capacity() - 1);
	}
	else
	{
		// A slot is left, too few for a wide closure; a narrow one still fits there.
		CHECK(made.size() == (p.capacity() - 1) / 2);
		REQUIRE(p.free_slots() == (p.capacity() - 1) % 2);
		if (p.free_slots() == 1)
			last = p.make_closure<narrowest, &tagged::narrowest_call>(&objects.back());
	}
	CHECK(p.full());
	CHECK_THROWS_AS((p.make_closure<narrowest, &tagged::narrowest_call>(&objects[0])), member_thunk::page_full);
	p.mark_executable();
	if (last != nullptr)
		CHECK(last() == static_cast<long>(objects.size() - 1));
	CHECK(first() == 0);
	// Every closure still finds its own object, the last one whose code ends at the page's end included.
	for (std::size_t i = 0; i < made.size(); ++i)
		REQUIRE(made[i](MEMBER_THUNK_TEST_WIDEST_ARGS) == widest_result(static_cast<long>(i + 1)));
}

TEST_CASE("closures_members::a sealed page refuses new closures", "[closures]")
{
	tagged a{1};
	member_thunk::page p = member_thunk::allocate_page();
	p.mark_executable();
	CHECK_THROWS_AS((p.make_closure<narrowest, &tagged::narrowest_call>(&a)), member_thunk::page_executable);
	CHECK_THROWS_AS((p.make_closure<widest>(&a, widest_member)), member_thunk::page_executable);
}

namespace
{
	/// How a call through a revoked closure ended the child: a fault or a trap, never a return.
	bool died_at_the_call(const test::child_result& result)
	{
#if defined(_WIN32)
		constexpr auto breakpoint = static_cast<int>(0x80000003U); // EXCEPTION_BREAKPOINT (int3)
		return result.signaled || (result.exited && result.exit_code == breakpoint);
#else
		return result.signaled && (result.signal == SIGSEGV || result.signal == SIGBUS || result.signal == SIGILL ||
		                           result.signal == SIGTRAP);
#endif
	}
} // namespace

TEST_CASE("closures_members::a call through a closure of a destroyed page dies at once", "[closures][death]")
{
	const auto result = test::run_in_child([] {
		tagged a{1};
		widest closure = nullptr;
		{
			member_thunk::page p = member_thunk::allocate_page();
			closure = p.make_closure<widest, widest_member>(&a);
			p.mark_executable();
			if (closure(MEMBER_THUNK_TEST_WIDEST_ARGS) != widest_result(1))
				std::_Exit(3); // the closure must work while the page lives
		}
		static_cast<void>(closure(MEMBER_THUNK_TEST_WIDEST_ARGS)); // must fault: the page is gone
		std::_Exit(4);
	});
	INFO("exited " << result.exited << " with " << result.exit_code << ", signal " << result.signal);
	CHECK(died_at_the_call(result));
}

TEST_CASE("closures_members::a call through a reset unique closure dies at once", "[closures][death]")
{
	const auto result = test::run_in_child([] {
		tagged a{1};
		auto unique = member_thunk::make_unique_closure<widest, widest_member>(&a);
		const widest closure = unique.get();
		if (closure(MEMBER_THUNK_TEST_WIDEST_ARGS) != widest_result(1))
			std::_Exit(3);
		unique.reset();
		static_cast<void>(closure(MEMBER_THUNK_TEST_WIDEST_ARGS)); // must trap: the slot points at the trap
		std::_Exit(4);
	});
	INFO("exited " << result.exited << " with " << result.exit_code << ", signal " << result.signal);
	CHECK(died_at_the_call(result));
}
#endif
