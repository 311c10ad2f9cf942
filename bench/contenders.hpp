// Benchmarks: the member function every contender calls, and the ways of turning it into a C callback that takes a
// context pointer first (the pointer a C API passes, e.g. an HWND or a user-data argument).
//
//   floor          a plain function that casts its context pointer to the object (what a C API with a user-data
//                  parameter allows; the fastest possible call, and the baseline of every ratio)
//   member_thunk   a thunk in each of its three forms (compile-time member, run-time member, callable)
//   libffi         a closure (ffi_closure_alloc + ffi_prep_closure_loc) whose handler unpacks the arguments
//   std::function  a user-data trampoline that calls a std::function bound to the member
//
// Closures (call.cpp's closure/ rows) keep every argument and have no context pointer: their callbacks are
// closure_callback<N>, and libffi's peer is the same ffi_callback without the pointer parameter (its user data is the
// object, which is what a closure is).
#pragma once

#include <member_thunk/member_thunk.hpp>

#include <ffi.h>

#include <array>
#include <cstddef>
#include <functional>
#include <stdexcept>
#include <string>

namespace bench
{
	/// The callee. Its members are out of line, so every contender pays for exactly one call of the same body.
	struct accumulator
	{
		long total = 0;

		[[gnu::noinline]] long add0() { return ++total; }
		[[gnu::noinline]] long add2(long a, long b)
		{
			total += a ^ b;
			return total;
		}
		[[gnu::noinline]] long add4(long a, long b, long c, long d)
		{
			total += (a ^ b) + (c ^ d);
			return total;
		}
	};

	using callback0 = long (*)(void*);
	using callback2 = long (*)(void*, long, long);
	using callback4 = long (*)(void*, long, long, long, long);

	// The callbacks of closures: the same arguments, no context pointer.
	using closure_callback0 = long (*)();
	using closure_callback2 = long (*)(long, long);
	using closure_callback4 = long (*)(long, long, long, long);

	// The floor: the context pointer is the object.
	[[gnu::noinline]] inline long floor0(void* context)
	{
		return static_cast<accumulator*>(context)->add0();
	}
	[[gnu::noinline]] inline long floor2(void* context, long a, long b)
	{
		return static_cast<accumulator*>(context)->add2(a, b);
	}
	[[gnu::noinline]] inline long floor4(void* context, long a, long b, long c, long d)
	{
		return static_cast<accumulator*>(context)->add4(a, b, c, d);
	}

	// std::function behind a user-data trampoline.
	using function0 = std::function<long()>;
	using function2 = std::function<long(long, long)>;
	using function4 = std::function<long(long, long, long, long)>;
	[[gnu::noinline]] inline long function_trampoline0(void* user)
	{
		return (*static_cast<function0*>(user))();
	}
	[[gnu::noinline]] inline long function_trampoline2(void* user, long a, long b)
	{
		return (*static_cast<function2*>(user))(a, b);
	}
	[[gnu::noinline]] inline long function_trampoline4(void* user, long a, long b, long c, long d)
	{
		return (*static_cast<function4*>(user))(a, b, c, d);
	}

	/// A libffi closure with `Arguments` long arguments, after a pointer it ignores (ContextFirst: the shape of a
	/// thunk's callback) or alone (the shape of a closure's callback), calling accumulator::add<Arguments>.
	template<std::size_t Arguments, bool ContextFirst = true>
	class ffi_callback
	{
	public:
		explicit ffi_callback(accumulator& target) : target_(&target)
		{
			if constexpr (ContextFirst)
				types_[0] = &ffi_type_pointer;
			for (std::size_t i = first; i < types_.size(); ++i)
				types_[i] = &ffi_type_slong;
			if (ffi_prep_cif(&cif_, FFI_DEFAULT_ABI, static_cast<unsigned>(types_.size()), &ffi_type_slong,
			                 types_.data()) != FFI_OK)
				throw std::runtime_error("ffi_prep_cif failed");
			closure_ = static_cast<ffi_closure*>(ffi_closure_alloc(sizeof(ffi_closure), &code_));
			if (closure_ == nullptr)
				throw std::runtime_error("ffi_closure_alloc failed");
			if (ffi_prep_closure_loc(closure_, &cif_, &handler, this, code_) != FFI_OK)
			{
				ffi_closure_free(closure_);
				throw std::runtime_error("ffi_prep_closure_loc failed");
			}
		}

		ffi_callback(const ffi_callback&) = delete;
		ffi_callback& operator=(const ffi_callback&) = delete;
		ffi_callback(ffi_callback&&) = delete;
		ffi_callback& operator=(ffi_callback&&) = delete;
		~ffi_callback() { ffi_closure_free(closure_); }

		[[nodiscard]] void* code() const noexcept { return code_; }

	private:
		/// The index of the first long argument.
		static constexpr std::size_t first = ContextFirst ? 1 : 0;

		static void handler(ffi_cif*, void* result, void** arguments, void* user)
		{
			auto& target = *static_cast<ffi_callback*>(user)->target_;
			const auto arg = [arguments](std::size_t i) { return *static_cast<long*>(arguments[first + i]); };
			long value = 0;
			if constexpr (Arguments == 0)
				value = target.add0();
			else if constexpr (Arguments == 2)
				value = target.add2(arg(0), arg(1));
			else
				value = target.add4(arg(0), arg(1), arg(2), arg(3));
			*static_cast<ffi_arg*>(result) = static_cast<ffi_arg>(value);
		}

		accumulator* target_;
		ffi_cif cif_{};
		std::array<ffi_type*, first + Arguments> types_{};
		ffi_closure* closure_ = nullptr;
		void* code_ = nullptr;
	};
} // namespace bench
