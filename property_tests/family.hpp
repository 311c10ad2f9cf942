// Property tests: the family of callback signatures thunks are made for, the objects they are bound to, and the one
// formula that says what every thunk must return.
//
// Every target computes formula(id, args...) of its own object id, so a thunk that reached the wrong object, the
// wrong member or got its arguments in the wrong registers or stack slots returns a different value. Arguments are
// small integers, or quarters of them for floating-point parameters, so every sum below is exact: the target and the
// model compute bit-identical results whatever the compiler does (inlining, FMA contraction).
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
#include <type_traits>
#include <utility>
#include <vector>

namespace prop
{
	/// The most parameters after the first any signature of the family has.
	inline constexpr std::size_t max_arguments = 10;

	/// The values of one call: argument i is built from values[i] (see to_argument).
	using argument_values = std::array<int, max_arguments>;

	/// How a thunk is made.
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

	// The family: integer and floating-point arguments, arguments spilled to the stack (more than six integer or
	// eight floating-point ones on System V x86-64), an integer first parameter, a float result, a void noexcept one.
	using sig_long = long (*)(void*, long);
	using sig_double = double (*)(void*, double, long);
	using sig_spill = long (*)(void*, long, long, long, long, long, long, long);
	using sig_mixed = double (*)(void*, int, double, float, long, double, double, double, double, double, double);
	using sig_float_spill = float (*)(std::intptr_t, float, double, double, double, double, double, double, double,
	                                  double, long);
	using sig_void = void (*)(void*, long, double) noexcept;

	inline constexpr std::size_t signature_count = 6;

	inline constexpr std::array<const char*, signature_count> signature_names{
	    "long(void*, long)",
	    "double(void*, double, long)",
	    "long(void*, long x7)",
	    "double(void*, int, double, float, long, double x6)",
	    "float(intptr_t, float, double x8, long)",
	    "void(void*, long, double) noexcept",
	};

	/// Calls f(std::type_identity<Sig>{}) with the index-th signature of the family.
	template<class F>
	decltype(auto) with_signature(std::size_t index, F&& f)
	{
		switch (index)
		{
		case 0:
			return f(std::type_identity<sig_long>{});
		case 1:
			return f(std::type_identity<sig_double>{});
		case 2:
			return f(std::type_identity<sig_spill>{});
		case 3:
			return f(std::type_identity<sig_mixed>{});
		case 4:
			return f(std::type_identity<sig_float_spill>{});
		default:
			return f(std::type_identity<sig_void>{});
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
		R weight{2};
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

	/// The class member thunks are bound to: call() is an ordinary member, vcall() a virtual one.
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

	template<class Sig>
	struct signature_traits;

	template<class R, class P, class... A>
	struct signature_traits<R (*)(P, A...)>
	{
		using result = R;
		using first = P;
		using base = target<R, A...>;
		using derived = derived_target<R, A...>;
		using function_object = functor<R, A...>;
		static_assert(sizeof...(A) <= max_arguments);

		/// What a thunk of form `f` bound to object `id` must return for `values` (void: what it stores).
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

		/// Calls the thunk at `address` with `values` (and a junk first argument the thunk must replace).
		[[nodiscard]] static double invoke(std::uintptr_t address, const argument_values& values)
		{
			using callback = R (*)(P, A...);
			const auto fn = std::bit_cast<callback>(address);
			P junk{};
			if constexpr (std::is_pointer_v<P>)
				junk = reinterpret_cast<P>(std::uintptr_t{0xbadc0de});
			else
				junk = static_cast<P>(0x5eed);
			return [&]<std::size_t... I>(std::index_sequence<I...>)
			{
				if constexpr (std::is_void_v<R>)
				{
					void_result = std::numeric_limits<double>::quiet_NaN();
					fn(junk, to_argument<A>(values[I])...);
					return void_result;
				}
				else
					return static_cast<double>(fn(junk, to_argument<A>(values[I])...));
			}
			(std::index_sequence_for<A...>{});
		}
	};

	template<class R, class P, class... A>
	struct signature_traits<R (*)(P, A...) noexcept> : signature_traits<R (*)(P, A...)>
	{
	};

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

	/// Makes a thunk of the given signature and form on `p`, bound to a new object `id` kept in `objects`. Throws
	/// what make_thunk throws.
	[[nodiscard]] inline std::uintptr_t make_thunk(member_thunk::page& p, std::size_t signature, form f, long id,
	                                               object_store& objects)
	{
		return with_signature(signature, [&]<class Sig>(std::type_identity<Sig>) -> std::uintptr_t {
			using traits = signature_traits<Sig>;
			using base = typename traits::base;
			using derived = typename traits::derived;
			switch (f)
			{
			case form::compile_time_member:
				return address_of(p.make_thunk<Sig, &base::call>(&objects.add<derived>(id)));
			case form::compile_time_virtual_member:
				return address_of(p.make_thunk<Sig, &base::vcall>(&objects.add<derived>(id)));
			case form::run_time_member:
				return address_of(p.make_thunk<Sig>(&objects.add<derived>(id), &base::call));
			case form::run_time_virtual_member: {
				base* const object = &objects.add<derived>(id);
				return address_of(p.make_thunk<Sig>(object, &base::vcall));
			}
			default:
				return address_of(p.make_thunk<Sig>(objects.add<typename traits::function_object>(id)));
			}
		});
	}

	/// What the model knows of one thunk: what it must return when called.
	struct thunk_model
	{
		std::size_t signature = 0;
		form how = form::compile_time_member;
		long object = 0; // the bound object's id
	};

	/// Calls the thunk at `address` with `values`; a description of what went wrong if it did not return what its
	/// target computes.
	[[nodiscard]] inline std::optional<std::string> call_failure(const thunk_model& t, std::uintptr_t address,
	                                                             const argument_values& values)
	{
		const double actual = invoke(t.signature, address, values);
		const double wanted = expected(t.signature, t.how, t.object, values);
		if (actual == wanted)
			return std::nullopt;
		std::ostringstream os;
		os << std::setprecision(17) << "thunk " << signature_names.at(t.signature) << " " << name(t.how)
		   << " of object " << t.object << " returned " << actual << ", expected " << wanted;
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
