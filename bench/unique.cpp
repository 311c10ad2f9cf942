// Benchmark 5, unique thunks (prebuilt stubs, no run-time code): make_unique_thunk + destroy as one cycle, in each of
// its three forms, against the libffi closure cycle in the same process; the same cycle from 1 and 2 threads at once;
// and the system calls the cycle makes once warm (it should make none). Built once per safety mode of the default
// heap (MEMBER_THUNK_DEFAULT_HEAP_SAFETY=1, 2, 3) and per state of the process:
//   bench_unique_mode<N>          never starts a thread: cycle and syscalls rows (heap<slim_lock> rows in mode 3 only:
//                                 they do not depend on the mode)
//   bench_unique_threads_mode<N>  (N = 2, 3; BENCH_UNIQUE_THREADS) starts and joins a thread before anything else:
//                                 threads rows, and the cycle rows of the default heap and libffi again.
// The state matters to the peers, not to the library: once a process has started a thread, glibc's malloc and locks
// leave their single-threaded fast paths for good, and libffi's cycle (and the run-time form's operator new) slows down
// (19 ns to 29 ns here). A benchmark process that starts threads for some rows only would time the others in either
// state depending on the random order.
//
//   cycle      make_unique_thunk + destroy, one per iteration; items are cycles. libffi's cycle is what a program pays
//              per closure once it has its call interface: ffi_closure_alloc + ffi_prep_closure_loc + ffi_closure_free
//              (ffi_prep_cif is done once, outside the loop).
//   threads    the same cycle on the default heap from 1 and 2 threads at once; items_per_second is the throughput of
//              all threads together (real time). threads/independent is the machine's own scaling: each thread runs
//              a private arithmetic loop of about the same length, sharing nothing.
//   syscalls   not a timing: 4096 cycles to warm up, then 100000 counted. Counters (per cycle of the counted part):
//              syscalls_per_cycle   every system call of the thread, counted by the kernel (syscall_counter.hpp;
//                                   -1 where the tracepoint cannot be used)
//              os_calls_per_cycle   every call into the library's OS back end, on a heap<slim_lock, test::failing_os>
//                                   (the native back end, counting each call; -1 for heaps on the native back end)
//              and the same totals for the warm-up (the first slab pages, the region: what steady state avoids).
//
// Names: unique/cycle/<heap>/<form>, unique/cycle/libffi, unique/threads/mode<N>/<form>,
// unique/syscalls/<heap>/<form>; <heap> is mode<N> (the default heap) or slim_lock, <form> is compile_time,
// run_time or callable.
#include "contenders.hpp"
#include "syscall_counter.hpp"

#include <failing_os.hpp>

#include <benchmark/benchmark.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <stdexcept>
#include <string>
#include <thread>

namespace
{
	using namespace bench;
	using thunk = member_thunk::unique_thunk<callback2>;

	enum class form
	{
		compile_time,
		run_time,
		callable
	};

	constexpr const char* name_of(form f)
	{
		switch (f)
		{
		case form::compile_time:
			return "compile_time";
		case form::run_time:
			return "run_time";
		default:
			return "callable";
		}
	}

	/// The callable form's callable.
	struct add2_callable
	{
		accumulator* target;
		long operator()(long x, long y) const { return target->add2(x, y); }
	};

	/// Unique thunks from the default heap.
	struct default_heap_source
	{
		template<form F>
		static thunk make(accumulator& a, add2_callable& c)
		{
			if constexpr (F == form::compile_time)
				return member_thunk::make_unique_thunk<callback2, &accumulator::add2>(&a);
			else if constexpr (F == form::run_time)
				return member_thunk::make_unique_thunk<callback2>(&a, &accumulator::add2);
			else
				return member_thunk::make_unique_thunk<callback2>(c);
		}
		static std::int64_t os_calls() { return -1; }
	};

	/// Unique thunks from a heap<Lock, Os>, made on first use and never destroyed.
	template<class Heap, bool CountsOsCalls = false>
	struct heap_source
	{
		static Heap& the()
		{
			static Heap* const heap = new Heap; // NOLINT(cppcoreguidelines-owning-memory): lives as long as the process
			return *heap;
		}

		template<form F>
		static thunk make(accumulator& a, add2_callable& c)
		{
			if constexpr (F == form::compile_time)
				return the().template make_unique_thunk<callback2, &accumulator::add2>(&a);
			else if constexpr (F == form::run_time)
				return the().template make_unique_thunk<callback2>(&a, &accumulator::add2);
			else
				return the().template make_unique_thunk<callback2>(c);
		}

		static std::int64_t os_calls()
		{
			if constexpr (CountsOsCalls)
			{
				const auto& calls = test::os_faults::calls;
				return static_cast<std::int64_t>(std::accumulate(calls.begin(), calls.end(), std::size_t{0}));
			}
			else
				return -1;
		}
	};

	using slim_heap = heap_source<member_thunk::heap<member_thunk::slim_lock>>;
	using counting_heap = heap_source<member_thunk::heap<member_thunk::slim_lock, test::failing_os>, true>;

	template<class Source, form F>
	void cycle(benchmark::State& state)
	{
		accumulator a;
		add2_callable c{&a};
		for (auto _ : state)
		{
			const thunk t = Source::template make<F>(a, c);
			benchmark::DoNotOptimize(t.get());
		}
		state.SetItemsProcessed(state.iterations());
	}

	/// libffi's side: the call interface of callback2 (prepared once) and a handler that calls accumulator::add2.
	struct ffi_add2
	{
		ffi_cif cif{};
		std::array<ffi_type*, 3> types{&ffi_type_pointer, &ffi_type_slong, &ffi_type_slong};

		ffi_add2()
		{
			if (ffi_prep_cif(&cif, FFI_DEFAULT_ABI, 3, &ffi_type_slong, types.data()) != FFI_OK)
				throw std::runtime_error("ffi_prep_cif failed");
		}

		static void handler(ffi_cif*, void* result, void** arguments, void* user)
		{
			const auto arg = [arguments](std::size_t i) { return *static_cast<long*>(arguments[i]); };
			*static_cast<ffi_arg*>(result) =
			    static_cast<ffi_arg>(static_cast<accumulator*>(user)->add2(arg(1), arg(2)));
		}
	};

	void cycle_libffi(benchmark::State& state)
	{
		static ffi_add2 signature;
		accumulator a;
		for (auto _ : state)
		{
			void* code = nullptr;
			auto* const closure = static_cast<ffi_closure*>(ffi_closure_alloc(sizeof(ffi_closure), &code));
			if (closure == nullptr ||
			    ffi_prep_closure_loc(closure, &signature.cif, &ffi_add2::handler, &a, code) != FFI_OK)
			{
				state.SkipWithError("libffi refused a closure");
				break;
			}
			benchmark::DoNotOptimize(code);
			ffi_closure_free(closure);
		}
		state.SetItemsProcessed(state.iterations());
	}

	/// Work that shares nothing between threads, about as long as a cycle: what the machine gives a second thread.
	[[maybe_unused]] void independent_work(benchmark::State& state)
	{
		std::uint64_t x = 0x9E3779B97F4A7C15U ^ static_cast<std::uint64_t>(state.thread_index());
		for (auto _ : state)
		{
			for (int i = 0; i < 8; ++i)
			{
				x ^= x << 13;
				x ^= x >> 7;
				x ^= x << 17;
				benchmark::DoNotOptimize(x);
			}
		}
		state.SetItemsProcessed(state.iterations());
	}

	template<class Source, form F>
	void syscalls(benchmark::State& state)
	{
		constexpr std::size_t warmup = 4096;
		constexpr std::size_t counted = 100000;
		accumulator a;
		add2_callable c{&a};
		syscall_counter counter;
		const auto run = [&](std::size_t cycles) {
			for (std::size_t i = 0; i < cycles; ++i)
			{
				const thunk t = Source::template make<F>(a, c);
				benchmark::DoNotOptimize(t.get());
			}
		};
		for (auto _ : state)
		{
			const std::int64_t os_before = Source::os_calls();
			counter.start();
			run(warmup);
			const std::int64_t warm_syscalls = counter.stop();
			const std::int64_t os_warm = Source::os_calls();
			counter.start();
			run(counted);
			const std::int64_t steady_syscalls = counter.stop();
			const std::int64_t os_after = Source::os_calls();

			const auto per_cycle = [](std::int64_t count) {
				return count < 0 ? -1.0 : static_cast<double>(count) / static_cast<double>(counted);
			};
			state.counters["syscalls_per_cycle"] = per_cycle(steady_syscalls);
			state.counters["syscalls_warmup"] = static_cast<double>(warm_syscalls);
			state.counters["os_calls_per_cycle"] = per_cycle(os_before < 0 ? -1 : os_after - os_warm);
			state.counters["os_calls_warmup"] = os_before < 0 ? -1.0 : static_cast<double>(os_warm - os_before);
		}
		state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * (warmup + counted)));
	}

	template<class Source, form F>
	void register_form(const std::string& heap, bool count_syscalls)
	{
		const std::string suffix = heap + "/" + name_of(F);
		benchmark::RegisterBenchmark(("unique/cycle/" + suffix).c_str(), cycle<Source, F>);
		if (count_syscalls)
			benchmark::RegisterBenchmark(("unique/syscalls/" + suffix).c_str(), syscalls<Source, F>)->Iterations(1);
	}

	template<class Source>
	void register_heap(const std::string& heap, bool count_syscalls)
	{
		register_form<Source, form::compile_time>(heap, count_syscalls);
		register_form<Source, form::run_time>(heap, count_syscalls);
		register_form<Source, form::callable>(heap, count_syscalls);
	}

#if !defined(BENCH_UNIQUE_THREADS)
	void register_all()
	{
		const std::string mode = "mode" + std::to_string(MEMBER_THUNK_DEFAULT_HEAP_SAFETY);
		register_heap<default_heap_source>(mode, true);
#if MEMBER_THUNK_DEFAULT_HEAP_SAFETY == MEMBER_THUNK_THREAD_SAFE_HEAP
		register_heap<slim_heap>("slim_lock", true);
		// The syscall rows of the counting heap: the same heap<slim_lock>, on a back end that counts its calls.
		benchmark::RegisterBenchmark("unique/syscalls/slim_lock_counting/compile_time",
		                             syscalls<counting_heap, form::compile_time>)
		    ->Iterations(1);
		benchmark::RegisterBenchmark("unique/syscalls/slim_lock_counting/run_time",
		                             syscalls<counting_heap, form::run_time>)
		    ->Iterations(1);
		benchmark::RegisterBenchmark("unique/syscalls/slim_lock_counting/callable",
		                             syscalls<counting_heap, form::callable>)
		    ->Iterations(1);
#endif
		benchmark::RegisterBenchmark("unique/cycle/libffi", cycle_libffi);
	}
#else
	static_assert(MEMBER_THUNK_DEFAULT_HEAP_SAFETY != MEMBER_THUNK_SINGLE_THREADED_HEAP,
	              "the single-threaded default heap cannot be used from two threads");

	void register_all()
	{
		const std::string mode = "mode" + std::to_string(MEMBER_THUNK_DEFAULT_HEAP_SAFETY);
		register_heap<default_heap_source>(mode, false);
		benchmark::RegisterBenchmark("unique/cycle/libffi", cycle_libffi);
		const std::string threads = "unique/threads/" + mode + "/";
		benchmark::RegisterBenchmark((threads + "compile_time").c_str(), cycle<default_heap_source, form::compile_time>)
		    ->Threads(1)
		    ->Threads(2)
		    ->UseRealTime();
		benchmark::RegisterBenchmark((threads + "run_time").c_str(), cycle<default_heap_source, form::run_time>)
		    ->Threads(1)
		    ->Threads(2)
		    ->UseRealTime();
		benchmark::RegisterBenchmark("unique/threads/independent", independent_work)
		    ->Threads(1)
		    ->Threads(2)
		    ->UseRealTime();
	}
#endif
} // namespace

int main(int argc, char** argv)
{
#if defined(BENCH_UNIQUE_THREADS)
	// Every row of this executable runs in a process that has had a second thread (see the top of this file).
	std::thread([] {}).join();
#endif
	register_all();
	benchmark::Initialize(&argc, argv);
	if (benchmark::ReportUnrecognizedArguments(argc, argv))
		return 1;
	benchmark::RunSpecifiedBenchmarks();
	benchmark::Shutdown();
	return 0;
}
