// Benchmark 3, the heap under contention: allocate_page + make_thunk + mark_executable + destroy, from 1 and 2
// threads at once, on the default heap. Built twice: MEMBER_THUNK_DEFAULT_HEAP_SAFETY=3 (one heap, one lock) and =2
// (one heap per thread). items_per_second is the throughput of all threads together (real time), so the scaling
// ratio is its value at 2 threads over its value at 1. Names: heap/mode<N>/threads:<T>.
#include "contenders.hpp"

#include <benchmark/benchmark.h>

#include <string>

namespace
{
	void cycle(benchmark::State& state)
	{
		bench::accumulator a;
		for (auto _ : state)
		{
			member_thunk::page page = member_thunk::allocate_page();
			benchmark::DoNotOptimize(page.make_thunk<bench::callback2, &bench::accumulator::add2>(&a));
			page.mark_executable();
		}
		state.SetItemsProcessed(state.iterations());
	}

	const auto registered =
	    benchmark::RegisterBenchmark(("heap/mode" + std::to_string(MEMBER_THUNK_DEFAULT_HEAP_SAFETY)).c_str(), cycle)
	        -> Threads(1) -> Threads(2) -> UseRealTime();
} // namespace

BENCHMARK_MAIN();
