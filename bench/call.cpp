// Benchmark 1, call overhead: one C callback called in a tight loop through each contender, with 0, 2 and 4
// arguments after the context pointer. Every contender ends in the same out-of-line member function, so the
// differences are what each way of reaching it costs. Names: call/<arguments>/<contender>.
//
// Built twice: bench_call (pages of run-time code) and bench_call_prebuilt (MEMBER_THUNK_NO_RUNTIME_CODE: the page
// contenders are pages of prebuilt stubs, and the unique thunks of the default heap, unique_<form>, join them). Each
// executable has its own floor, so every ratio compares numbers of the same process.
//
// Closures (closure/<arguments>/<contender>): the same members called through callbacks that have no context pointer
// (closure_callback<N>: every argument is kept and the closure puts the object in front of them), from a page in each
// form (of run-time code in bench_call, of prebuilt stubs in bench_call_prebuilt), as a unique closure (compile-time
// member, in bench_call_prebuilt with the other unique rows), and as a libffi closure of the same shape. Their floor
// is call/<arguments>/floor: the context-pointer function with the same arguments, in the same process.
#include "contenders.hpp"

#include <benchmark/benchmark.h>

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

namespace
{
	using namespace bench;

	template<std::size_t Arguments>
	struct signature;
	template<>
	struct signature<0>
	{
		using callback = callback0;
		using function = function0;
		static constexpr auto floor = &floor0;
		static constexpr auto member = &accumulator::add0;
		static constexpr auto trampoline = &function_trampoline0;
		static function bind(accumulator& a)
		{
			return [&a] { return a.add0(); };
		}
		static long call(callback f, void* context, long /*i*/) { return f(context); }
	};
	template<>
	struct signature<2>
	{
		using callback = callback2;
		using function = function2;
		static constexpr auto floor = &floor2;
		static constexpr auto member = &accumulator::add2;
		static constexpr auto trampoline = &function_trampoline2;
		static function bind(accumulator& a)
		{
			return [&a](long x, long y) { return a.add2(x, y); };
		}
		static long call(callback f, void* context, long i) { return f(context, i, i + 1); }
	};
	template<>
	struct signature<4>
	{
		using callback = callback4;
		using function = function4;
		static constexpr auto floor = &floor4;
		static constexpr auto member = &accumulator::add4;
		static constexpr auto trampoline = &function_trampoline4;
		static function bind(accumulator& a)
		{
			return [&a](long x, long y, long z, long w) { return a.add4(x, y, z, w); };
		}
		static long call(callback f, void* context, long i) { return f(context, i, i + 1, i + 2, i + 3); }
	};

	/// The callback of a closure with the same arguments as signature<Arguments>, and how the loop calls it.
	template<std::size_t Arguments>
	struct closure_signature;
	template<>
	struct closure_signature<0>
	{
		using callback = closure_callback0;
		static long call(callback f, long /*i*/) { return f(); }
	};
	template<>
	struct closure_signature<2>
	{
		using callback = closure_callback2;
		static long call(callback f, long i) { return f(i, i + 1); }
	};
	template<>
	struct closure_signature<4>
	{
		using callback = closure_callback4;
		static long call(callback f, long i) { return f(i, i + 1, i + 2, i + 3); }
	};

	/// The measured loop, the same for every contender: the callback pointer is opaque to the compiler (it could
	/// change at every iteration), as a callback stored by a C library is.
	template<std::size_t Arguments>
	void run(benchmark::State& state, typename signature<Arguments>::callback f, void* context)
	{
		long i = 0;
		for (auto _ : state)
		{
			benchmark::DoNotOptimize(f);
			benchmark::DoNotOptimize(signature<Arguments>::call(f, context, i++));
		}
		state.SetItemsProcessed(state.iterations());
	}

	/// The same loop for a closure's callback (no context pointer).
	template<std::size_t Arguments>
	void run_closure(benchmark::State& state, typename closure_signature<Arguments>::callback f)
	{
		long i = 0;
		for (auto _ : state)
		{
			benchmark::DoNotOptimize(f);
			benchmark::DoNotOptimize(closure_signature<Arguments>::call(f, i++));
		}
		state.SetItemsProcessed(state.iterations());
	}

	template<std::size_t Arguments>
	void floor(benchmark::State& state)
	{
		accumulator a;
		run<Arguments>(state, signature<Arguments>::floor, &a);
	}

	template<std::size_t Arguments>
	void thunk_compile_time(benchmark::State& state)
	{
		using sig = signature<Arguments>;
		accumulator a;
		member_thunk::page page = member_thunk::allocate_page();
		const auto f = page.make_thunk<typename sig::callback, sig::member>(&a);
		page.mark_executable();
		state.counters["prebuilt"] = page.prebuilt() ? 1 : 0;
		run<Arguments>(state, f, nullptr);
	}

	template<std::size_t Arguments>
	void thunk_run_time(benchmark::State& state)
	{
		using sig = signature<Arguments>;
		accumulator a;
		member_thunk::page page = member_thunk::allocate_page();
		const auto f = page.make_thunk<typename sig::callback>(&a, sig::member);
		page.mark_executable();
		state.counters["prebuilt"] = page.prebuilt() ? 1 : 0;
		run<Arguments>(state, f, nullptr);
	}

	template<std::size_t Arguments>
	void thunk_callable(benchmark::State& state)
	{
		using sig = signature<Arguments>;
		accumulator a;
		member_thunk::page page = member_thunk::allocate_page();
		auto lambda = [&a](auto... args) {
			if constexpr (Arguments == 0)
				return a.add0(args...);
			else if constexpr (Arguments == 2)
				return a.add2(args...);
			else
				return a.add4(args...);
		};
		const auto f = page.make_thunk<typename sig::callback>(lambda);
		page.mark_executable();
		state.counters["prebuilt"] = page.prebuilt() ? 1 : 0;
		run<Arguments>(state, f, nullptr);
	}

	/// The callable of the callable forms (a lambda for pages; a named type for unique thunks, which reference it).
	template<std::size_t Arguments>
	struct forwarding_callable
	{
		accumulator* a;
		template<class... Args>
		long operator()(Args... args) const
		{
			if constexpr (Arguments == 0)
				return a->add0(args...);
			else if constexpr (Arguments == 2)
				return a->add2(args...);
			else
				return a->add4(args...);
		}
	};

	template<std::size_t Arguments>
	void unique_compile_time(benchmark::State& state)
	{
		using sig = signature<Arguments>;
		accumulator a;
		const auto t = member_thunk::make_unique_thunk<typename sig::callback, sig::member>(&a);
		run<Arguments>(state, t.get(), nullptr);
	}

	template<std::size_t Arguments>
	void unique_run_time(benchmark::State& state)
	{
		using sig = signature<Arguments>;
		accumulator a;
		const auto t = member_thunk::make_unique_thunk<typename sig::callback>(&a, sig::member);
		run<Arguments>(state, t.get(), nullptr);
	}

	template<std::size_t Arguments>
	void unique_callable(benchmark::State& state)
	{
		using sig = signature<Arguments>;
		accumulator a;
		forwarding_callable<Arguments> callable{&a};
		const auto t = member_thunk::make_unique_thunk<typename sig::callback>(callable);
		run<Arguments>(state, t.get(), nullptr);
	}

	template<std::size_t Arguments>
	void libffi(benchmark::State& state)
	{
		accumulator a;
		const ffi_callback<Arguments> closure(a);
		run<Arguments>(state, reinterpret_cast<typename signature<Arguments>::callback>(closure.code()), nullptr);
	}

	template<std::size_t Arguments>
	void std_function(benchmark::State& state)
	{
		accumulator a;
		auto bound = signature<Arguments>::bind(a);
		run<Arguments>(state, signature<Arguments>::trampoline, &bound);
	}

	template<std::size_t Arguments>
	void closure_page_compile_time(benchmark::State& state)
	{
		accumulator a;
		member_thunk::page page = member_thunk::allocate_page();
		const auto f =
		    page.make_closure<typename closure_signature<Arguments>::callback, signature<Arguments>::member>(&a);
		page.mark_executable();
		state.counters["prebuilt"] = page.prebuilt() ? 1 : 0;
		run_closure<Arguments>(state, f);
	}

	template<std::size_t Arguments>
	void closure_page_run_time(benchmark::State& state)
	{
		accumulator a;
		member_thunk::page page = member_thunk::allocate_page();
		const auto f =
		    page.make_closure<typename closure_signature<Arguments>::callback>(&a, signature<Arguments>::member);
		page.mark_executable();
		state.counters["prebuilt"] = page.prebuilt() ? 1 : 0;
		run_closure<Arguments>(state, f);
	}

	template<std::size_t Arguments>
	void closure_page_callable(benchmark::State& state)
	{
		accumulator a;
		forwarding_callable<Arguments> callable{&a};
		member_thunk::page page = member_thunk::allocate_page();
		const auto f = page.make_closure<typename closure_signature<Arguments>::callback>(callable);
		page.mark_executable();
		state.counters["prebuilt"] = page.prebuilt() ? 1 : 0;
		run_closure<Arguments>(state, f);
	}

	template<std::size_t Arguments>
	void closure_unique_compile_time(benchmark::State& state)
	{
		accumulator a;
		const auto t = member_thunk::make_unique_closure<typename closure_signature<Arguments>::callback,
		                                                 signature<Arguments>::member>(&a);
		run_closure<Arguments>(state, t.get());
	}

	template<std::size_t Arguments>
	void closure_libffi(benchmark::State& state)
	{
		accumulator a;
		const ffi_callback<Arguments, false> closure(a);
		run_closure<Arguments>(state,
		                       reinterpret_cast<typename closure_signature<Arguments>::callback>(closure.code()));
	}

	template<std::size_t Arguments>
	void register_all()
	{
		const std::string prefix = "call/" + std::to_string(Arguments) + "/";
		benchmark::RegisterBenchmark((prefix + "floor").c_str(), floor<Arguments>);
		benchmark::RegisterBenchmark((prefix + "thunk_compile_time").c_str(), thunk_compile_time<Arguments>);
		benchmark::RegisterBenchmark((prefix + "thunk_run_time").c_str(), thunk_run_time<Arguments>);
		benchmark::RegisterBenchmark((prefix + "thunk_callable").c_str(), thunk_callable<Arguments>);
		benchmark::RegisterBenchmark((prefix + "libffi").c_str(), libffi<Arguments>);
		benchmark::RegisterBenchmark((prefix + "std_function").c_str(), std_function<Arguments>);
#if defined(MEMBER_THUNK_NO_RUNTIME_CODE)
		benchmark::RegisterBenchmark((prefix + "unique_compile_time").c_str(), unique_compile_time<Arguments>);
		benchmark::RegisterBenchmark((prefix + "unique_run_time").c_str(), unique_run_time<Arguments>);
		benchmark::RegisterBenchmark((prefix + "unique_callable").c_str(), unique_callable<Arguments>);
#endif
		const std::string closure = "closure/" + std::to_string(Arguments) + "/";
		benchmark::RegisterBenchmark((closure + "page_compile_time").c_str(), closure_page_compile_time<Arguments>);
		benchmark::RegisterBenchmark((closure + "page_run_time").c_str(), closure_page_run_time<Arguments>);
		benchmark::RegisterBenchmark((closure + "page_callable").c_str(), closure_page_callable<Arguments>);
		benchmark::RegisterBenchmark((closure + "libffi").c_str(), closure_libffi<Arguments>);
#if defined(MEMBER_THUNK_NO_RUNTIME_CODE)
		benchmark::RegisterBenchmark((closure + "unique_compile_time").c_str(), closure_unique_compile_time<Arguments>);
#endif
	}
} // namespace

int main(int argc, char** argv)
{
	register_all<0>();
	register_all<2>();
	register_all<4>();
	benchmark::Initialize(&argc, argv);
	if (benchmark::ReportUnrecognizedArguments(argc, argv))
		return 1;
	benchmark::RunSpecifiedBenchmarks();
	benchmark::Shutdown();
	return 0;
}
