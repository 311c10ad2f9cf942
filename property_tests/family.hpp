// Property tests: the family of callback signatures thunks and closures are made for, the objects they are bound to,
// and the one formula that says what every one of them must return.
//
// Every target computes formula(id, args...) of its own object id, so a thunk or closure that reached the wrong
// object, the wrong member or got its arguments in the wrong registers or stack slots returns a different value. A
// thunk replaces the callback's first argument with its object; a closure keeps every argument and passes its object
// in front of them, so its target receives them all. Arguments are small integers, or quarters of them for
// floating-point parameters, so every sum below is exact: the target and the model compute bit-identical results
// whatever the compiler does (inlining, FMA contraction).
#pragma once

#include <member_thunk/exception.hpp>
#include <member_thunk/page.hpp>

#include <rapidcheck.h>

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <iomanip>
#include <limits>
#include <memory>
#include <optional>
#include <ostream>
#include <sstream>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace prop
{
	/// The most parameters a signature of the family has after the first (a thunk's) or in all (a closure's).
	inline constexpr std::size_t max_arguments = 10;

	/// The values of one call: argument i is built from values[i] (see to_argument).
	using argument_values = std::array<int, max_arguments>;

	/// How a thunk or closure is made (make_thunk for a thunk signature, make_closure for a closure one).
	enum class form : std::uint8_t
	{
		compile_time_member,         // make_thunk<Callback, &base::call>(object)
		compile_time_virtual_member, // make_thunk<Callback, &base::vcall>(object): dispatched at call time
		run_time_member,             // make_thunk<Callback>(object, &base::call)
		run_time_virtual_member,     // make_thunk<Callback>(base_pointer, &base::vcall)
		callable,                    // make_thunk<Callback>(functor)
		count
	};

	inline constexpr std::size_t form_count = static_cast<std::size_t>(form::count);

	[[nodiscard]] inline const char* name(form f) noexcept
	{
		switch (f)
		{
		case form::compile_time_member:
			return "compile-time member";
		case form::compile_time_virtual_member:
			return "compile-time virtual member";
		case form::run_time_member:
			return "run-time member";
		case form::run_time_virtual_member:
			return "run-time virtual member";
		case form::callable:
			return "callable";
		case form::count:
			break;
		}
		return "?";
	}

	[[nodiscard]] constexpr bool is_run_time(form f) noexcept
	{
		return f == form::run_time_member || f == form::run_time_virtual_member;
	}

	// The thunks: integer and floating-point arguments, arguments spilled to the stack (more than six integer or
	// eight floating-point ones on System V x86-64), an integer first parameter, a float result, a void noexcept one.
	using sig_long = long (*)(void*, long);
	using sig_double = double (*)(void*, double, long);
	using sig_spill = long (*)(void*, long, long, long, long, long, long, long);
	using sig_mixed = double (*)(void*, int, double, float, long, double, double, double, double, double, double);
	using sig_float_spill = float (*)(std::intptr_t, float, double, double, double, double, double, double, double,
	                                  double, long);
	using sig_void = void (*)(void*, long, double) noexcept;

	using thunk_family = std::tuple<sig_long, sig_double, sig_spill, sig_mixed, sig_float_spill, sig_void>;

	// The closures (every argument kept, the object put in front), where the ABI has them: not on i386, which refuses
	// them at compile time (the thunks above are all its properties make). Integer and floating-point arguments, the
	// most integer-class parameters a closure keeps on the ABI (every argument register moved one place up: its code
	// is the longest), floating-point arguments that need no move, some of them on the stack (more than eight on
	// System V x86-64 and AArch64), a float result, and a closure without parameters.
#if !defined(MEMBER_THUNK_ARCH_X86_32)
	using closure_long = long (*)(long, long);
	using closure_double = double (*)(double, long);
#if defined(MEMBER_THUNK_ARCH_AARCH64)
	using closure_widest = long (*)(long, long, long, long, long, long, long); // x1-x7
	inline constexpr const char* closure_widest_name = "long(long x7)";
#elif defined(_WIN32)
	using closure_widest = long (*)(long, long, long); // Windows x64: three positions
	inline constexpr const char* closure_widest_name = "long(long x3)";
#else
	using closure_widest = long (*)(long, long, long, long, long); // System V x86-64: rsi-r9
	inline constexpr const char* closure_widest_name = "long(long x5)";
#endif
#if defined(_WIN32)
	// Windows x64 keeps at most three arguments of any kind.
	using closure_mixed = double (*)(int, double, float);
	using closure_float_spill = float (*)(float, double, long long);
	inline constexpr const char* closure_mixed_name = "double(int, double, float)";
	inline constexpr const char* closure_float_spill_name = "float(float, double, long long)";
#else
	using closure_mixed = double (*)(int, double, float, long, double, double, double, double, double, double);
	using closure_float_spill = float (*)(float, double, double, double, double, double, double, double, double, long);
	inline constexpr const char* closure_mixed_name = "double(int, double, float, long, double x6)";
	inline constexpr const char* closure_float_spill_name = "float(float, double x8, long)";
#endif
	using closure_void = void (*)();

	using closure_family =
	    std::tuple<closure_long, closure_double, closure_widest, closure_mixed, closure_float_spill, closure_void>;
#else
	using closure_family = std::tuple<>;
#endif

	/// The family: the thunk signatures, then the closure ones. A signature's index says which it is.
	using family = decltype(std::tuple_cat(std::declval<thunk_family>(), std::declval<closure_family>()));

	inline constexpr std::size_t thunk_signature_count = std::tuple_size_v<thunk_family>;
	inline constexpr std::size_t closure_signature_count = std::tuple_size_v<closure_family>;
	inline constexpr std::size_t signature_count = std::tuple_size_v<family>;

	/// Whether the index-th signature of the family is a closure's.
	[[nodiscard]] constexpr bool is_closure(std::size_t signature) noexcept
	{
		return signature >= thunk_signature_count;
	}

	inline constexpr std::array<const char*, thunk_signature_count> thunk_signature_names{
	    "long(void*, long)",
	    "double(void*, double, long)",
	    "long(void*, long x7)",
	    "double(void*, int, double, float, long, double x6)",
	    "float(intptr_t, float, double x8, long)",
	    "void(void*, long, double) noexcept",
	};

#if !defined(MEMBER_THUNK_ARCH_X86_32)
	inline constexpr std::array<const char*, closure_signature_count> closure_signature_names{
	    "long(long, long)", "double(double, long)",   closure_widest_name,
	    closure_mixed_name, closure_float_spill_name, "void()",
	};
#else
	inline constexpr std::array<const char*, 0> closure_signature_names{};
#endif

	/// The name of each signature of the family, by index.
	inline constexpr std::array<const char*, signature_count> signature_names = [] {
		std::array<const char*, signature_count> names{};
		for (std::size_t i = 0; i < thunk_signature_count; ++i)
			names.at(i) = thunk_signature_names.at(i);
		for (std::size_t i = 0; i < closure_signature_count; ++i)
			names.at(thunk_signature_count + i) = closure_signature_names.at(i);
		return names;
	}();

	/// "thunk" or "closure".
	[[nodiscard]] inline const char* kind_name(std::size_t signature) noexcept
	{
		return is_closure(signature) ? "closure" : "thunk";
	}

	/// The signature as a command or operation shows it: a closure's with the word in front.
	inline void show_signature(std::size_t signature, std::ostream& os)
	{
		if (is_closure(signature))
			os << "closure ";
		os << signature_names.at(signature);
	}

	/// Calls f(std::type_identity<Sig>{}) with the index-th signature of the family (the last one for an index past
	/// the end).
	template<std::size_t I = 0, class F>
	decltype(auto) with_signature(std::size_t index, F&& f)
	{
		using sig = std::tuple_element_t<I, family>;
		if constexpr (I + 1 == signature_count)
			return f(std::type_identity<sig>{});
		else
		{
			if (index == I)
				return f(std::type_identity<sig>{});
			return with_signature<I + 1>(index, std::forward<F>(f));
		}
	}

	/// Where a void target leaves its result (per thread: thunks are called from several threads at once).
	inline thread_local double void_result = 0;

	template<class T>
	[[nodiscard]] T to_argument(int value) noexcept
	{
		if constexpr (std::is_floating_point_v<T>)
			return static_cast<T>(value) / T{4};
		else
			return static_cast<T>(value);
	}

	/// The part of a result that depends on the object: large enough that objects never collide for long and double,
	/// folded for float so that every partial sum stays exact in 24 bits.
	template<class R>
	[[nodiscard]] R object_term(long id) noexcept
	{
		if constexpr (std::is_same_v<R, float>)
			return static_cast<float>((id % 64) * 16384);
		else
			return static_cast<R>(id * 1'000'000);
	}

	/// What every target returns: the object term plus each argument weighted by its position (so that swapped or
	/// lost arguments show).
	template<class R, class... A>
	[[nodiscard]] R formula(long id, A... args) noexcept
	{
		R sum = object_term<R>(id);
		[[maybe_unused]] R weight{2}; // (unused without arguments)
		((sum += static_cast<R>(args) * weight, weight += R{1}), ...);
		return sum;
	}

	template<class R, class... A>
	[[nodiscard]] R compute(long id, A... args) noexcept
	{
		if constexpr (std::is_void_v<R>)
			void_result = formula<double>(id, args...);
		else
			return formula<R>(id, args...);
	}

	/// The class member thunks and closures are bound to: call() is an ordinary member, vcall() a virtual one.
	template<class R, class... A>
	struct target
	{
		explicit target(long object_id) noexcept : id(object_id) {}
		target(const target&) = delete;
		target& operator=(const target&) = delete;
		target(target&&) = delete;
		target& operator=(target&&) = delete;
		virtual ~target() = default;

		R call(A... args) { return compute<R>(id, args...); }
		virtual R vcall(A... args) = 0;

		long id;
	};

	/// vcall() uses the negated id, so that a thunk that skipped virtual dispatch could not pass.
	template<class R, class... A>
	struct derived_target final : target<R, A...>
	{
		using target<R, A...>::target;
		R vcall(A... args) override { return compute<R>(-this->id, args...); }
	};

	template<class R, class... A>
	struct functor
	{
		explicit functor(long object_id) noexcept : id(object_id) {}
		long id;
		R operator()(A... args) const { return compute<R>(id, args...); }
	};

	/// What the targets of a thunk or closure whose target receives `A...` are, and what they compute.
	template<class R, class... A>
	struct target_traits
	{
		using result = R;
		using base = target<R, A...>;
		using derived = derived_target<R, A...>;
		using function_object = functor<R, A...>;
		static_assert(sizeof...(A) <= max_arguments);

		/// What a thunk or closure of form `f` bound to object `id` must return for `values` (void: what it stores).
		[[nodiscard]] static double expected(form f, long id, const argument_values& values) noexcept
		{
			using value_type = std::conditional_t<std::is_void_v<R>, double, R>;
			const long effective =
			    f == form::compile_time_virtual_member || f == form::run_time_virtual_member ? -id : id;
			return [&]<std::size_t... I>(std::index_sequence<I...>)
			{
				return static_cast<double>(formula<value_type>(effective, to_argument<A>(values[I])...));
			}
			(std::index_sequence_for<A...>{});
		}

		/// Calls `fn` with `leading...` and then `values` as the target's arguments; what it returned (void: what the
		/// target stored).
		template<class Callback, class... Leading>
		[[nodiscard]] static double call(Callback fn, const argument_values& values, Leading... leading)
		{
			return [&]<std::size_t... I>(std::index_sequence<I...>)
			{
				if constexpr (std::is_void_v<R>)
				{
					void_result = std::numeric_limits<double>::quiet_NaN();
					fn(leading..., to_argument<A>(values[I])...);
					return void_result;
				}
				else
					return static_cast<double>(fn(leading..., to_argument<A>(values[I])...));
			}
			(std::index_sequence_for<A...>{});
		}
	};

	/// A thunk's signature R(P, A...): its target receives A..., the thunk replaces the first argument.
	template<class Sig>
	struct thunk_traits;

	template<class R, class P, class... A>
	struct thunk_traits<R (*)(P, A...)> : target_traits<R, A...>
	{
		static constexpr bool closure = false;

		/// Calls the thunk at `address` with `values` (and a junk first argument the thunk must replace).
		[[nodiscard]] static double invoke(std::uintptr_t address, const argument_values& values)
		{
			P junk{};
			if constexpr (std::is_pointer_v<P>)
				junk = reinterpret_cast<P>(std::uintptr_t{0xbadc0de});
			else
				junk = static_cast<P>(0x5eed);
			return target_traits<R, A...>::call(std::bit_cast<R (*)(P, A...)>(address), values, junk);
		}
	};

	template<class R, class P, class... A>
	struct thunk_traits<R (*)(P, A...) noexcept> : thunk_traits<R (*)(P, A...)>
	{
	};

	/// A closure's signature R(A...): its target receives every argument, after the object.
	template<class Sig>
	struct closure_traits;

	template<class R, class... A>
	struct closure_traits<R (*)(A...)> : target_traits<R, A...>
	{
		static constexpr bool closure = true;

		/// Calls the closure at `address` with `values`.
		[[nodiscard]] static double invoke(std::uintptr_t address, const argument_values& values)
		{
			return target_traits<R, A...>::call(std::bit_cast<R (*)(A...)>(address), values);
		}
	};

	template<class R, class... A>
	struct closure_traits<R (*)(A...) noexcept> : closure_traits<R (*)(A...)>
	{
	};

	template<class Sig, class List>
	inline constexpr bool listed = false;

	template<class Sig, class... Listed>
	inline constexpr bool listed<Sig, std::tuple<Listed...>> = (std::is_same_v<Sig, Listed> || ...);

	template<class List, class Other>
	inline constexpr bool disjoint = false;

	template<class... Sig, class Other>
	inline constexpr bool disjoint<std::tuple<Sig...>, Other> = !(listed<Sig, Other> || ...);

	static_assert(disjoint<thunk_family, closure_family>,
	              "a signature of the family is either a thunk's or a closure's");

	/// The traits of a signature of the family, a thunk's or a closure's.
	template<class Sig>
	using signature_traits = std::conditional_t<listed<Sig, closure_family>, closure_traits<Sig>, thunk_traits<Sig>>;

	[[nodiscard]] inline double expected(std::size_t signature, form f, long id, const argument_values& values)
	{
		return with_signature(signature, [&]<class Sig>(std::type_identity<Sig>) {
			return signature_traits<Sig>::expected(f, id, values);
		});
	}

	[[nodiscard]] inline double invoke(std::size_t signature, std::uintptr_t address, const argument_values& values)
	{
		return with_signature(signature, [&]<class Sig>(std::type_identity<Sig>) {
			return signature_traits<Sig>::invoke(address, values);
		});
	}

	/// Objects thunks are bound to; they live as long as the store (which must outlive the pages).
	class object_store
	{
	public:
		template<class T>
		T& add(long id)
		{
			auto object = std::make_shared<T>(id);
			T& result = *object;
			objects_.push_back(std::move(object));
			return result;
		}

	private:
		std::vector<std::shared_ptr<void>> objects_;
	};

	template<class Callback>
	[[nodiscard]] std::uintptr_t address_of(Callback callback) noexcept
	{
		return std::bit_cast<std::uintptr_t>(callback);
	}

	/// Binds a new object `id` (kept in `objects`) in form `f` with `make`, which has the three ways of binding of a
	/// page or a heap for Sig (a thunk's or a closure's): compile_time<&Class::member>(object),
	/// run_time(object, &Class::member), callable(object). Returns what they return.
	template<class Sig, class Maker>
	[[nodiscard]] auto make_in_form(const Maker& make, form f, long id, object_store& objects)
	{
		using traits = signature_traits<Sig>;
		using base = typename traits::base;
		using derived = typename traits::derived;
		switch (f)
		{
		case form::compile_time_member:
			return make.template compile_time<&base::call>(&objects.add<derived>(id));
		case form::compile_time_virtual_member:
			return make.template compile_time<&base::vcall>(&objects.add<derived>(id));
		case form::run_time_member:
			return make.run_time(&objects.add<derived>(id), &base::call);
		case form::run_time_virtual_member: {
			base* const object = &objects.add<derived>(id);
			return make.run_time(object, &base::vcall);
		}
		default:
			return make.callable(objects.add<typename traits::function_object>(id));
		}
	}

	/// A page's ways of binding for Sig: make_thunk, or make_closure for a closure signature.
	template<class Sig>
	struct page_maker
	{
		static constexpr bool closure = signature_traits<Sig>::closure;
		member_thunk::page& page;

		template<auto Member, class Class>
		[[nodiscard]] Sig compile_time(Class* that) const
		{
			if constexpr (closure)
				return page.template make_closure<Sig, Member>(that);
			else
				return page.template make_thunk<Sig, Member>(that);
		}

		template<class Class, class Member>
		[[nodiscard]] Sig run_time(Class* that, Member fn) const
		{
			if constexpr (closure)
				return page.template make_closure<Sig>(that, fn);
			else
				return page.template make_thunk<Sig>(that, fn);
		}

		template<class Callable>
		[[nodiscard]] Sig callable(Callable& c) const
		{
			if constexpr (closure)
				return page.template make_closure<Sig>(c);
			else
				return page.template make_thunk<Sig>(c);
		}
	};

	/// Makes a thunk, or a closure for a closure signature, of the given signature and form on `p`, bound to a new
	/// object `id` kept in `objects`; its entry address. Throws what make_thunk and make_closure throw.
	[[nodiscard]] inline std::uintptr_t make_thunk(member_thunk::page& p, std::size_t signature, form f, long id,
	                                               object_store& objects)
	{
		return with_signature(signature, [&]<class Sig>(std::type_identity<Sig>) -> std::uintptr_t {
			return address_of(make_in_form<Sig>(page_maker<Sig>{p}, f, id, objects));
		});
	}

	/// What the model knows of one thunk or closure: what it must return when called, and where it is on its page.
	struct thunk_model
	{
		std::size_t signature = 0; // a thunk's or a closure's (is_closure)
		form how = form::compile_time_member;
		long object = 0;          // the bound object's id
		std::size_t position = 0; // on a page: the first position its code takes (unique thunks: 0)

		bool operator==(const thunk_model&) const = default;
	};

	/// Calls the thunk or closure at `address` with `values`; a description of what went wrong if it did not return
	/// what its target computes.
	[[nodiscard]] inline std::optional<std::string> call_failure(const thunk_model& t, std::uintptr_t address,
	                                                             const argument_values& values)
	{
		const double actual = invoke(t.signature, address, values);
		const double wanted = expected(t.signature, t.how, t.object, values);
		if (actual == wanted)
			return std::nullopt;
		std::ostringstream os;
		os << std::setprecision(17) << kind_name(t.signature) << " " << signature_names.at(t.signature) << " "
		   << name(t.how) << " of object " << t.object << " returned " << actual << ", expected " << wanted;
		return os.str();
	}

	// Generators.
	[[nodiscard]] inline rc::Gen<std::size_t> signature_gen()
	{
		return rc::gen::inRange<std::size_t>(0, signature_count);
	}

	[[nodiscard]] inline rc::Gen<form> form_gen()
	{
		return rc::gen::map(rc::gen::inRange<std::size_t>(0, form_count),
		                    [](std::size_t i) { return static_cast<form>(i); });
	}

	[[nodiscard]] inline rc::Gen<argument_values> arguments_gen()
	{
		// Within ±1000 (so that every sum stays exact), shrinking towards 0.
		return rc::gen::container<argument_values>(
		    rc::gen::map(rc::gen::arbitrary<int>(), [](int value) { return value % 1001; }));
	}

	inline void showValue(form f, std::ostream& os)
	{
		os << name(f);
	}

	inline void show_arguments(const argument_values& values, std::ostream& os)
	{
		os << '[';
		for (std::size_t i = 0; i < values.size(); ++i)
			os << (i == 0 ? "" : " ") << values[i];
		os << ']';
	}
} // namespace prop
