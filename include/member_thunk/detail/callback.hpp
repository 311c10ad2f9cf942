// member_thunk: what makes a callback type usable, and the compiled trampolines thunks jump to.
//
// A thunk overwrites the callback's first argument and jumps; it never calls. It is correct only when the target's
// ABI is exactly the callback's with the first parameter replaced by a pointer (ABI doc, "What a thunk may do").
// Every target is therefore a compiled function of this file, with signature R(void*, A...) for a callback
// R(*)(P, A...): the compiler, not the thunk, does `this` adjustment, virtual dispatch and any conversion.
#pragma once

#include "arch/encoder.hpp"

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <type_traits>

namespace member_thunk::detail
{
	template<class... T>
	struct type_list
	{
	};

	/// Facts about a callback type. `valid` is false for anything that is not a pointer to a function.
	template<class Callback>
	struct callback_traits
	{
		static constexpr bool is_function_pointer = false;
		static constexpr bool has_first_parameter = false;
		static constexpr bool is_variadic = false;
	};

	template<class R, class... A>
	struct callback_traits<R (*)(A...)>
	{
		static constexpr bool is_function_pointer = true;
		static constexpr bool has_first_parameter = false;
		static constexpr bool is_variadic = false;
	};

	template<class R, class... A>
	struct callback_traits<R (*)(A...) noexcept> : callback_traits<R (*)(A...)>
	{
	};

	template<class R, class... A>
	struct callback_traits<R (*)(A..., ...)>
	{
		static constexpr bool is_function_pointer = true;
		static constexpr bool has_first_parameter = sizeof...(A) != 0;
		static constexpr bool is_variadic = true;
	};

	template<class R, class... A>
	struct callback_traits<R (*)(A..., ...) noexcept> : callback_traits<R (*)(A..., ...)>
	{
	};

	template<class R, class P, class... A>
	struct callback_traits<R (*)(P, A...)>
	{
		static constexpr bool is_function_pointer = true;
		static constexpr bool has_first_parameter = true;
		static constexpr bool is_variadic = false;
		static constexpr bool is_noexcept = false;
		using result = R;
		using first = P;
		using rest = type_list<A...>;
		using target = R (*)(void*, A...);
	};

	template<class R, class P, class... A>
	struct callback_traits<R (*)(P, A...) noexcept> : callback_traits<R (*)(P, A...)>
	{
		static constexpr bool is_noexcept = true;
		using target = R (*)(void*, A...) noexcept;
	};

	/// Facts about a callback type for a closure, which keeps every parameter: the target is R(void*, A...) for a
	/// callback R(*)(A...), whatever the number of parameters (none too).
	template<class Callback>
	struct closure_traits
	{
		static constexpr bool is_function_pointer = false;
		static constexpr bool is_variadic = false;
	};

	template<class R, class... A>
	struct closure_traits<R (*)(A...)>
	{
		static constexpr bool is_function_pointer = true;
		static constexpr bool is_variadic = false;
		static constexpr bool is_noexcept = false;
		using result = R;
		using parameters = type_list<A...>;
		using target = R (*)(void*, A...);
	};

	template<class R, class... A>
	struct closure_traits<R (*)(A...) noexcept> : closure_traits<R (*)(A...)>
	{
		static constexpr bool is_noexcept = true;
		using target = R (*)(void*, A...) noexcept;
	};

	template<class R, class... A>
	struct closure_traits<R (*)(A..., ...)>
	{
		static constexpr bool is_function_pointer = true;
		static constexpr bool is_variadic = true;
	};

	template<class R, class... A>
	struct closure_traits<R (*)(A..., ...) noexcept> : closure_traits<R (*)(A..., ...)>
	{
	};

	/// A pointer to a function whose type carries a calling convention other than the target's default one:
	/// GCC and Clang keep `__attribute__((stdcall))`, `fastcall`, `regparm(n)` and `thiscall` (i386) or `ms_abi`
	/// (x86-64 System V) in the function type, so such a pointer matches none of the patterns above. The thunk
	/// writes the first argument where the default convention passes it ([esp+4] for cdecl, not ecx for fastcall or
	/// thiscall, nor eax for regparm) and jumps to a trampoline of the default convention, which would not pop the
	/// arguments that a stdcall caller expects the callee to pop: none of them can work.
	template<class Callback>
	inline constexpr bool has_other_calling_convention =
	    std::is_pointer_v<Callback>&& std::is_function_v<std::remove_pointer_t<Callback>> &&
	    !callback_traits<Callback>::is_function_pointer;

	/// A first parameter the thunk may overwrite with an object pointer: it must travel exactly where a pointer
	/// travels (a general-purpose register or a pointer-sized stack slot) on every supported ABI.
	template<class P>
	inline constexpr bool replaceable_first_parameter = (std::is_pointer_v<P> || std::is_integral_v<P> ||
	                                                     std::is_enum_v<P> || std::is_null_pointer_v<P>)&&sizeof(P) ==
	                                                    sizeof(void*);

	/// A result type that is the same kind of thing on every ABI: void or a non-member-pointer scalar. A class type
	/// may come back in registers from one kind of function and through a hidden pointer from another (Windows x64
	/// and ARM64 return every class through a hidden pointer from a member function), and on i386 System V every
	/// class comes back through a hidden pointer pushed before the arguments, so the first argument would not be at
	/// [esp+4].
	template<class R>
	inline constexpr bool scalar_result = std::is_void_v<R> || std::is_arithmetic_v<R> || std::is_enum_v<R> ||
	                                      std::is_pointer_v<R> || std::is_null_pointer_v<R>;

	/// A result that the target's ABI returns in registers (or void). Any other result comes back through memory
	/// whose address the caller passes as a hidden argument in the first argument's place on i386 ([esp+4]), System
	/// V x86-64 (rdi) and Windows x64 (rcx): the thunk would replace it with the object pointer, and the result
	/// would be written over the object. Which types qualify is an ABI fact: each encoder's allow-list (arch/).
	template<class R>
	inline constexpr bool result_in_registers = std::is_void_v<R> || arch::native_encoder::returns_in_registers<R>;

	/// True when a thunk can implement `Callback`.
	template<class Callback>
	consteval bool valid_callback()
	{
		using traits = callback_traits<Callback>;
		if constexpr (traits::is_function_pointer && traits::has_first_parameter && !traits::is_variadic)
			return replaceable_first_parameter<typename traits::first> && scalar_result<typename traits::result> &&
			       result_in_registers<typename traits::result>;
		else
			return false;
	}

	/// Explains what is wrong with a callback type (as compile errors) and returns whether it is valid, so that the
	/// caller can skip the code that would only add follow-on errors.
	template<class Callback>
	consteval bool check_callback()
	{
		using traits = callback_traits<Callback>;
		static_assert(!has_other_calling_convention<Callback>,
		              "member_thunk: the Callback's calling convention must be the platform's default one (cdecl on "
		              "i386): a thunk cannot replace the first argument of a stdcall, fastcall, regparm, thiscall or "
		              "ms_abi callback");
		static_assert(traits::is_function_pointer || has_other_calling_convention<Callback>,
		              "member_thunk: Callback must be a pointer to a function, such as LRESULT (*)(HWND, UINT, WPARAM, "
		              "LPARAM) or WNDPROC");
		if constexpr (traits::is_function_pointer)
		{
			static_assert(!traits::is_variadic,
			              "member_thunk: Callback must not be variadic (...): a thunk cannot forward a variable "
			              "argument list");
			static_assert(traits::has_first_parameter,
			              "member_thunk: Callback must have at least one parameter: the thunk replaces the first one "
			              "with the object pointer");
			if constexpr (traits::has_first_parameter && !traits::is_variadic)
			{
				using result = typename traits::result;
				static_assert(replaceable_first_parameter<typename traits::first>,
				              "member_thunk: the Callback's first parameter must be a pointer or a pointer-sized "
				              "integer (such as HWND or intptr_t): the thunk passes the object pointer in its place");
				static_assert(scalar_result<result>,
				              "member_thunk: the Callback must return void or a scalar (integer, floating-point, "
				              "enumeration or pointer): other types may be returned differently by a member function "
				              "and a plain function on some ABIs");
				// Only for scalars: a class result already has its error.
				if constexpr (scalar_result<result>)
					static_assert(
					    result_in_registers<result>,
					    "member_thunk: the Callback's result is returned through a hidden pointer on this ABI "
					    "(__float128 on i386 and Windows x64; long double on Windows x64 with MinGW and on i386 with "
					    "-mlong-double-128), or is not known to come back in registers; the caller passes that "
					    "pointer in the first argument's place, which the thunk replaces with the object pointer: "
					    "return double or an integer instead");
			}
		}
		return valid_callback<Callback>();
	}

	/// How the closure of the target's ABI keeps the parameters `A...` (arch/closures.hpp).
	template<class... A>
	consteval arch::closures::fit closure_fit(type_list<A...> /*parameters*/)
	{
		return arch::native_encoder::template closure_fit<A...>;
	}

	/// How many argument places the closure moves for the parameters `A...`.
	template<class... A>
	consteval std::size_t closure_shift(type_list<A...> /*parameters*/)
	{
		return arch::native_encoder::template closure_shift<A...>;
	}

	/// True when a closure can implement `Callback`.
	template<class Callback>
	consteval bool valid_closure_callback()
	{
		using traits = closure_traits<Callback>;
		if constexpr (traits::is_function_pointer && !traits::is_variadic)
			return scalar_result<typename traits::result> && result_in_registers<typename traits::result> &&
			       closure_fit(typename traits::parameters{}) == arch::closures::fit::exact;
		else
			return false;
	}

	/// Explains what is wrong with a callback type for a closure (as compile errors) and returns whether it is valid.
	template<class Callback>
	consteval bool check_closure_callback()
	{
		using traits = closure_traits<Callback>;
		using arch::closures::fit;
		static_assert(!has_other_calling_convention<Callback>,
		              "member_thunk: the Callback's calling convention must be the platform's default one (cdecl on "
		              "i386): a closure moves the arguments as the default convention passes them");
		static_assert(traits::is_function_pointer || has_other_calling_convention<Callback>,
		              "member_thunk: Callback must be a pointer to a function, such as int (*)(const void*, const "
		              "void*)");
		if constexpr (traits::is_function_pointer)
		{
			static_assert(!traits::is_variadic,
			              "member_thunk: Callback must not be variadic (...): a closure cannot forward a variable "
			              "argument list");
			if constexpr (!traits::is_variadic)
			{
				using result = typename traits::result;
				static_assert(scalar_result<result>,
				              "member_thunk: the Callback must return void or a scalar (integer, floating-point, "
				              "enumeration or pointer): other types may be returned differently by a member function "
				              "and a plain function on some ABIs");
				if constexpr (scalar_result<result>)
					static_assert(result_in_registers<result>,
					              "member_thunk: the Callback's result is returned through a hidden pointer on this "
					              "ABI, which the caller passes in the first argument's place: a closure would move it "
					              "and a member function would write the result through the wrong pointer: return "
					              "double or an integer instead");
				constexpr fit verdict = closure_fit(typename traits::parameters{});
				static_assert(verdict != fit::unsupported_architecture,
				              "member_thunk: closures are not possible on i386: every argument travels on the stack, "
				              "and putting the object pointer in front of them would need a stack frame, which a "
				              "thunk that only jumps does not have; use make_thunk with a Callback whose first "
				              "parameter can be replaced, or pass the object through the API's user-data parameter");
				static_assert(verdict != fit::too_many_integer_arguments,
				              "member_thunk: a closure's Callback may have at most 5 integer or pointer parameters on "
				              "x86-64 System V (7 on AArch64): with the object pointer in front they must all stay in "
				              "registers (float and double parameters do not count); pass a structure by pointer "
				              "instead");
				static_assert(verdict != fit::too_many_arguments,
				              "member_thunk: on Windows x64 a closure's Callback may have at most 3 parameters: the "
				              "object pointer takes the first of the four register positions");
				static_assert(verdict != fit::unsupported_argument_type,
				              "member_thunk: a closure's Callback parameters must be integers, enumerations, pointers, "
				              "float or double: class types, long double, 128-bit integers and vectors travel in ways "
				              "that moving each register one place up cannot follow; pass them by pointer");
			}
		}
		return valid_closure_callback<Callback>();
	}

	/// How a thunk passes its bound pointer to the target: in place of the callback's first argument (a thunk), or
	/// in front of all of them (a closure).
	enum class binding
	{
		replaces_first,
		prepends
	};

	/// The target's view of a valid callback for each binding: its result, the parameters after the bound pointer,
	/// the target's function pointer type.
	template<binding B, class Callback>
	struct bound_signature;

	template<class Callback>
	struct bound_signature<binding::replaces_first, Callback>
	{
		using traits = callback_traits<Callback>;
		using result = typename traits::result;
		using parameters = typename traits::rest;
		using target = typename traits::target;
		static constexpr bool is_noexcept = traits::is_noexcept;
	};

	template<class Callback>
	struct bound_signature<binding::prepends, Callback>
	{
		using traits = closure_traits<Callback>;
		using result = typename traits::result;
		using parameters = typename traits::parameters;
		using target = typename traits::target;
		static constexpr bool is_noexcept = traits::is_noexcept;
	};

	/// check_callback or check_closure_callback.
	template<binding B, class Callback>
	consteval bool check_bound_callback()
	{
		if constexpr (B == binding::replaces_first)
			return check_callback<Callback>();
		else
			return check_closure_callback<Callback>();
	}

	template<class T>
	struct member_function_traits
	{
		static constexpr bool is_member_function = false;
	};

	// The qualifiers of a member function: cv, ref and noexcept. Every combination is one specialisation.
#define MEMBER_THUNK_DETAIL_MEMBER_TRAITS(CV, REF, NOEXCEPT, IS_CONST, IS_VOLATILE, IS_RVALUE) \
	template<class R, class C, class... A>                                                     \
	struct member_function_traits<R (C::*)(A...) CV REF noexcept(NOEXCEPT)>                    \
	{                                                                                          \
		static constexpr bool is_member_function = true;                                       \
		static constexpr bool is_const = IS_CONST;                                             \
		static constexpr bool is_volatile = IS_VOLATILE;                                       \
		static constexpr bool is_rvalue_only = IS_RVALUE;                                      \
		using result = R;                                                                      \
		using class_type = C;                                                                  \
		using parameters = type_list<A...>;                                                    \
	};
#define MEMBER_THUNK_DETAIL_MEMBER_TRAITS_CV(REF, IS_RVALUE)                             \
	MEMBER_THUNK_DETAIL_MEMBER_TRAITS(, REF, false, false, false, IS_RVALUE)             \
	MEMBER_THUNK_DETAIL_MEMBER_TRAITS(, REF, true, false, false, IS_RVALUE)              \
	MEMBER_THUNK_DETAIL_MEMBER_TRAITS(const, REF, false, true, false, IS_RVALUE)         \
	MEMBER_THUNK_DETAIL_MEMBER_TRAITS(const, REF, true, true, false, IS_RVALUE)          \
	MEMBER_THUNK_DETAIL_MEMBER_TRAITS(volatile, REF, false, false, true, IS_RVALUE)      \
	MEMBER_THUNK_DETAIL_MEMBER_TRAITS(volatile, REF, true, false, true, IS_RVALUE)       \
	MEMBER_THUNK_DETAIL_MEMBER_TRAITS(const volatile, REF, false, true, true, IS_RVALUE) \
	MEMBER_THUNK_DETAIL_MEMBER_TRAITS(const volatile, REF, true, true, true, IS_RVALUE)
	MEMBER_THUNK_DETAIL_MEMBER_TRAITS_CV(, false)
	MEMBER_THUNK_DETAIL_MEMBER_TRAITS_CV(&, false)
	MEMBER_THUNK_DETAIL_MEMBER_TRAITS_CV(&&, true)
#undef MEMBER_THUNK_DETAIL_MEMBER_TRAITS_CV
#undef MEMBER_THUNK_DETAIL_MEMBER_TRAITS

	template<auto Value>
	struct constant
	{
	};

	/// Whether a member pointer template argument is null. Compared as template arguments, not with `==`: GCC cannot
	/// evaluate `&C::f != nullptr` at compile time under -fsanitize=null (which implies
	/// -fno-delete-null-pointer-checks), and that made every compile-time member thunk fail to compile with UBSan.
	template<auto MemberFn>
	inline constexpr bool is_null_member = std::is_same_v<constant<MemberFn>, constant<decltype(MemberFn){}>>;

	/// Checks that `MemberFn`, called on a `Class*`, fits `Callback` exactly: same result, same parameters after
	/// the first. Exactness keeps every conversion visible in the user's code instead of hidden in a thunk.
	template<class Callback, class Class, class MemberFn, binding B = binding::replaces_first>
	consteval bool check_member()
	{
		if (!check_bound_callback<B, Callback>())
			return false;
		using member = member_function_traits<MemberFn>;
		static_assert(member::is_member_function,
		              "member_thunk: MemberFn must be a pointer to a non-static member function, such as "
		              "&window::on_message");
		if constexpr (member::is_member_function)
		{
			using callback = bound_signature<B, Callback>;
			constexpr bool class_object = std::is_class_v<Class> || std::is_union_v<Class>;
			static_assert(class_object, "member_thunk: the object pointer must point to a class object");
			constexpr bool member_of_class = std::is_base_of_v<typename member::class_type, std::remove_cv_t<Class>>;
			static_assert(member_of_class,
			              "member_thunk: the object's class must be the member function's class or derive from it");
			constexpr bool const_fits = !std::is_const_v<Class> || member::is_const;
			static_assert(const_fits,
			              "member_thunk: the object pointer is to const but the member function is not const");
			constexpr bool volatile_fits = !std::is_volatile_v<Class> || member::is_volatile;
			static_assert(volatile_fits,
			              "member_thunk: the object pointer is to volatile but the member function is not volatile");
			constexpr bool callable_on_lvalue = !member::is_rvalue_only;
			static_assert(callable_on_lvalue,
			              "member_thunk: the member function is &&-qualified; a thunk calls it on an lvalue");
			constexpr bool same_parameters = std::is_same_v<typename member::parameters, typename callback::parameters>;
			static_assert(same_parameters || B != binding::replaces_first,
			              "member_thunk: the member function's parameters must be exactly the Callback's parameters "
			              "after the first one (the first is replaced by the object pointer)");
			static_assert(same_parameters || B != binding::prepends,
			              "member_thunk: the member function's parameters must be exactly the Callback's parameters "
			              "(a closure passes them all, with the object pointer in front)");
			constexpr bool same_result = std::is_same_v<typename member::result, typename callback::result>;
			static_assert(same_result,
			              "member_thunk: the member function must return exactly the Callback's return type");
			return class_object && member_of_class && const_fits && volatile_fits && callable_on_lvalue &&
			       same_parameters && same_result;
		}
		else
			return false;
	}

	template<class Callback, class Callable, binding B = binding::replaces_first>
	consteval bool invocable_with()
	{
		return []<class... A>(type_list<A...>) {
			return std::is_invocable_r_v<typename bound_signature<B, Callback>::result, Callable&, A...>;
		}(typename bound_signature<B, Callback>::parameters{});
	}

	/// Checks that a Callable object can be called with the Callback's parameters after the first.
	template<class Callback, class Callable, binding B = binding::replaces_first>
	consteval bool check_callable()
	{
		if (!check_bound_callback<B, Callback>())
			return false;
		static_assert(!std::is_pointer_v<Callable>,
		              "member_thunk: pass the callable object itself (by reference), not a pointer to it; for a "
		              "member function use make_thunk<Callback>(object, &Class::member) or "
		              "make_thunk<Callback, &Class::member>(object)");
		if constexpr (!std::is_pointer_v<Callable>)
		{
			constexpr bool object = std::is_object_v<Callable>;
			static_assert(object, "member_thunk: the callable must be an object");
			constexpr bool invocable = invocable_with<Callback, Callable, B>();
			static_assert(invocable || B != binding::replaces_first,
			              "member_thunk: the callable cannot be called with the Callback's parameters after the first "
			              "one, or its result does not convert to the Callback's return type");
			static_assert(invocable || B != binding::prepends,
			              "member_thunk: the callable cannot be called with the Callback's parameters (a closure "
			              "passes them all), or its result does not convert to the Callback's return type");
			return object && invocable;
		}
		else
			return false;
	}

	/// The three kinds of target. Each `call` is a real function with the callback's signature (first parameter
	/// void*). They are members of class templates, not function templates, because Clang cannot take the address
	/// of a function template specialisation whose noexcept depends on a template parameter.
	template<class R, bool NoExcept, class Rest>
	struct trampolines;

	template<class R, bool NoExcept, class... A>
	struct trampolines<R, NoExcept, type_list<A...>>
	{
		/// Compile-time member: the compiler sees the member, so this is a tail jump or the member's inlined body.
		template<class Class, auto MemberFn>
		struct member
		{
			static R call(void* object, A... args) noexcept(NoExcept)
			{
				return (static_cast<Class*>(object)->*MemberFn)(static_cast<A&&>(args)...);
			}
		};

		/// Run-time member: `block` is the object pointer and member pointer stored in the sealed page.
		template<class Block>
		struct bound_member
		{
			static R call(void* block, A... args) noexcept(NoExcept)
			{
				const auto* const b = static_cast<const Block*>(block);
				return (b->object->*(b->member))(static_cast<A&&>(args)...);
			}
		};

		/// Run-time member on a page of prebuilt stubs: the block's bytes are spread over the first words of
		/// consecutive data slots, `Stride` bytes apart, whose second words (the stubs' targets) keep pointing at the
		/// trap. `pieces` is the first of them.
		template<class Block, std::size_t Stride>
		struct scattered_member
		{
			static R call(void* pieces, A... args) noexcept(NoExcept)
			{
				constexpr std::size_t word = sizeof(std::uintptr_t);
				std::array<unsigned char, sizeof(Block)> bytes{};
				for (std::size_t at = 0; at < sizeof(Block); at += word)
					std::memcpy(bytes.data() + at, static_cast<const unsigned char*>(pieces) + at / word * Stride,
					            sizeof(Block) - at < word ? sizeof(Block) - at : word);
				const auto b = std::bit_cast<Block>(bytes);
				return (b.object->*(b.member))(static_cast<A&&>(args)...);
			}
		};

		/// Callable object.
		template<class Callable>
		struct callable
		{
			static R call(void* object, A... args) noexcept(NoExcept)
			{
				if constexpr (std::is_void_v<R>)
					std::invoke(*static_cast<Callable*>(object), static_cast<A&&>(args)...);
				else
					return std::invoke(*static_cast<Callable*>(object), static_cast<A&&>(args)...);
			}
		};
	};

	/// The trampolines of a thunk (binding::replaces_first) or a closure (binding::prepends) for `Callback`.
	template<class Callback, binding B = binding::replaces_first>
	using trampolines_for =
	    trampolines<typename bound_signature<B, Callback>::result, bound_signature<B, Callback>::is_noexcept,
	                typename bound_signature<B, Callback>::parameters>;

	/// The data a run-time member thunk needs, stored in the page next to the code and sealed with it.
	template<class Class, class MemberFn>
	struct bound_member_block
	{
		Class* object;
		MemberFn member;
	};
} // namespace member_thunk::detail
