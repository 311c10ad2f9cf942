// Member functions of every kind, bound through the compile-time and run-time forms: virtual (dispatch through a
// base pointer), members of a second base under multiple inheritance, virtual inheritance, const, noexcept,
// lvalue-ref-qualified, overloaded. The seed's reinterpret_cast of a member pointer gets the virtual and second-base
// cases wrong on the Itanium ABI; the compiled trampolines must get them right on every compiler. Built twice: with
// run-time code and with prebuilt stubs (MEMBER_THUNK_NO_RUNTIME_CODE).
#include <member_thunk/member_thunk.hpp>

#include <catch2/catch.hpp>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace
{
	using callback = long (*)(void*, long);
	using const_callback = long (*)(const void*, long);

	struct base
	{
		base() = default;
		base(const base&) = default;
		base& operator=(const base&) = default;
		base(base&&) = default;
		base& operator=(base&&) = default;
		virtual ~base() = default;
		virtual long twice(long x) { return 2 * x; }
		long plain(long x) { return x + 1; }
	};

	struct other_base
	{
		long other_id = 1000;
		other_base() = default;
		other_base(const other_base&) = default;
		other_base& operator=(const other_base&) = default;
		other_base(other_base&&) = default;
		other_base& operator=(other_base&&) = default;
		virtual ~other_base() = default;
		virtual long other(long x) { return other_id + x; }
		long other_plain(long x) { return other_id - x; }
	};

	struct derived final : base, other_base
	{
		long offset = 7;
		long twice(long x) override { return 2 * x + offset; }
		long other(long x) override { return other_id * 2 + x + offset; }
		long own(long x) const noexcept { return offset * x; }
		long by_ref(long x) & { return x - offset; }
		long overloaded(long x) { return x * 3; }
		long overloaded(long x, long y) { return x * y; }
	};

	struct virtual_root
	{
		long root_value = 5;
		virtual_root() = default;
		virtual_root(const virtual_root&) = default;
		virtual_root& operator=(const virtual_root&) = default;
		virtual_root(virtual_root&&) = default;
		virtual_root& operator=(virtual_root&&) = default;
		virtual ~virtual_root() = default;
		virtual long root(long x) { return root_value + x; }
	};
	struct left : virtual virtual_root
	{
	};
	struct right : virtual virtual_root
	{
		long root(long x) override { return root_value * 100 + x; }
	};
	struct diamond final : left, right
	{
	};
} // namespace

TEST_CASE("members::virtual member through a base pointer runs the override", "[members]")
{
	derived d;
	base* as_base = &d;
	member_thunk::page p = member_thunk::allocate_page();
	const auto compile_time = p.make_thunk<callback, &base::twice>(as_base);
	const auto run_time = p.make_thunk<callback>(as_base, &base::twice);
	p.mark_executable();
	CHECK(compile_time(nullptr, 10) == 27);
	CHECK(run_time(nullptr, 10) == 27);
	// Dispatch happens at each call, like a direct call: the thunk follows the object, not a snapshot of it.
	d.offset = 1;
	CHECK(compile_time(nullptr, 10) == 21);
	CHECK(run_time(nullptr, 10) == 21);
}

TEST_CASE("members::a thunk made in a base constructor dispatches to the final override", "[members]")
{
	// Dispatch happens when the thunk is called, not when it is made: a window base class that makes its thunk in its
	// constructor still reaches the derived class's override.
	struct widget_base
	{
		member_thunk::page page = member_thunk::allocate_page();
		callback compile_time = nullptr;
		callback run_time = nullptr;
		widget_base()
		{
			compile_time = page.make_thunk<callback, &widget_base::handle>(this);
			run_time = page.make_thunk<callback>(this, &widget_base::handle);
			page.mark_executable();
		}
		widget_base(const widget_base&) = delete;
		widget_base& operator=(const widget_base&) = delete;
		widget_base(widget_base&&) = delete;
		widget_base& operator=(widget_base&&) = delete;
		virtual ~widget_base() = default;
		virtual long handle(long x) { return x; }
	};
	struct button final : widget_base
	{
		long handle(long x) override { return -x; }
	};
	button b;
	CHECK(b.compile_time(nullptr, 5) == -5);
	CHECK(b.run_time(nullptr, 6) == -6);
}

TEST_CASE("members::members of the second base adjust this", "[members]")
{
	derived d;
	d.other_id = 500;
	member_thunk::page p = member_thunk::allocate_page();
	// Bound through the derived object: `this` must be adjusted to the other_base subobject.
	const auto virtual_ct = p.make_thunk<callback, &other_base::other>(&d);
	const auto virtual_rt = p.make_thunk<callback>(&d, &other_base::other);
	const auto plain_ct = p.make_thunk<callback, &other_base::other_plain>(&d);
	const auto plain_rt = p.make_thunk<callback>(&d, &other_base::other_plain);
	// And through a pointer to the second base itself.
	other_base* as_other = &d;
	const auto through_base = p.make_thunk<callback>(as_other, &other_base::other);
	p.mark_executable();
	CHECK(virtual_ct(nullptr, 3) == 1010);
	CHECK(virtual_rt(nullptr, 3) == 1010);
	CHECK(plain_ct(nullptr, 3) == 497);
	CHECK(plain_rt(nullptr, 3) == 497);
	CHECK(through_base(nullptr, 3) == 1010);
}

TEST_CASE("members::non-virtual member of the first base", "[members]")
{
	derived d;
	member_thunk::page p = member_thunk::allocate_page();
	const auto compile_time = p.make_thunk<callback, &base::plain>(&d);
	const auto run_time = p.make_thunk<callback>(&d, &base::plain);
	p.mark_executable();
	CHECK(compile_time(nullptr, 41) == 42);
	CHECK(run_time(nullptr, 41) == 42);
}

TEST_CASE("members::virtual inheritance (diamond)", "[members]")
{
	diamond d;
	d.root_value = 3;
	virtual_root* as_root = &d;
	member_thunk::page p = member_thunk::allocate_page();
	const auto compile_time = p.make_thunk<callback, &virtual_root::root>(as_root);
	const auto run_time = p.make_thunk<callback>(&d, &virtual_root::root);
	p.mark_executable();
	CHECK(compile_time(nullptr, 4) == 304);
	CHECK(run_time(nullptr, 4) == 304);
}

TEST_CASE("members::const, noexcept and lvalue-ref-qualified members", "[members]")
{
	derived d;
	const derived& as_const = d;
	member_thunk::page p = member_thunk::allocate_page();
	const auto const_ct = p.make_thunk<const_callback, &derived::own>(&as_const);
	const auto const_rt = p.make_thunk<const_callback>(&as_const, &derived::own);
	const auto noexcept_cb = p.make_thunk<long (*)(void*, long) noexcept, &derived::own>(&d);
	const auto ref_ct = p.make_thunk<callback, &derived::by_ref>(&d);
	const auto ref_rt = p.make_thunk<callback>(&d, &derived::by_ref);
	p.mark_executable();
	CHECK(const_ct(nullptr, 6) == 42);
	CHECK(const_rt(nullptr, 6) == 42);
	CHECK(noexcept_cb(nullptr, 6) == 42);
	CHECK(ref_ct(nullptr, 10) == 3);
	CHECK(ref_rt(nullptr, 10) == 3);
}

TEST_CASE("members::volatile objects with volatile members", "[members]")
{
	struct sensor
	{
		long reading = 0;
		long add(long x) volatile
		{
			reading = reading + x;
			return reading;
		}
	};
	volatile sensor s;
	member_thunk::page p = member_thunk::allocate_page();
	const auto compile_time = p.make_thunk<long (*)(volatile void*, long), &sensor::add>(&s);
	const auto run_time = p.make_thunk<callback>(&s, &sensor::add);
	p.mark_executable();
	CHECK(compile_time(nullptr, 2) == 2);
	CHECK(run_time(nullptr, 3) == 5);
	CHECK(s.reading == 5);
}

TEST_CASE("members::an overloaded member is chosen by the callback's type", "[members]")
{
	derived d;
	member_thunk::page p = member_thunk::allocate_page();
	using one = long (derived::*)(long);
	using two = long (derived::*)(long, long);
	const auto single = p.make_thunk<callback, static_cast<one>(&derived::overloaded)>(&d);
	const auto pair = p.make_thunk<long (*)(void*, long, long)>(&d, static_cast<two>(&derived::overloaded));
	p.mark_executable();
	CHECK(single(nullptr, 5) == 15);
	CHECK(pair(nullptr, 5, 6) == 30);
}

TEST_CASE("members::exceptions propagate from the member through the thunk", "[members]")
{
	// The thunk only jumps, so it never appears on the stack: unwinding goes from the member to the caller.
	struct thrower
	{
		long fail(long x) { throw std::runtime_error("failed with " + std::to_string(x)); }
	} t;
	member_thunk::page p = member_thunk::allocate_page();
	const auto compile_time = p.make_thunk<callback, &thrower::fail>(&t);
	const auto run_time = p.make_thunk<callback>(&t, &thrower::fail);
	p.mark_executable();
	CHECK_THROWS_WITH(compile_time(nullptr, 1), "failed with 1");
	CHECK_THROWS_WITH(run_time(nullptr, 2), "failed with 2");
}

TEST_CASE("members::a run-time member thunk takes its data slots from the page's end", "[members]")
{
	member_thunk::page p = member_thunk::allocate_page();
	std::vector<derived> objects(p.capacity());
	for (std::size_t i = 0; i < objects.size(); ++i)
		objects[i].offset = static_cast<long>(i) * 1000;
	std::vector<callback> made;
	for (;;)
	{
		try
		{
			made.push_back(p.make_thunk<callback>(&objects.at(made.size()), &base::twice));
		}
		catch (const member_thunk::page_full&)
		{
			break;
		}
	}
	CHECK(p.size() == made.size());
	CHECK(p.full());
	std::size_t data_slots = 0;
	if (p.prebuilt())
	{
		// One pointer-sized word of the block per data slot (the slot's other word keeps pointing at the trap):
		// object pointer + member pointer are three words on Itanium. The 252 thunk slots of a chunk divide by 1 + 3,
		// and a run never crosses a chunk header, so no slot is lost.
		data_slots = (sizeof(void*) + sizeof(&base::twice) + sizeof(std::uintptr_t) - 1) / sizeof(std::uintptr_t);
		REQUIRE(252 % data_slots == 0);
	}
	else
		// Object pointer + member pointer fit in one slot on Itanium (8 + 16 bytes), so each thunk takes two.
		data_slots = (sizeof(void*) + sizeof(&base::twice) + p.slot_size() - 1) / p.slot_size();
	CHECK(made.size() == p.capacity() / (1 + data_slots));
	p.mark_executable();
	// Every thunk still finds its own data, including the ones whose data sits right after the last code slot.
	for (std::size_t i = 0; i < made.size(); ++i)
		REQUIRE(made[i](nullptr, 1) == 2 + static_cast<long>(i) * 1000);
}
