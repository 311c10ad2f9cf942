// Benchmark 4, memory: bytes of committed memory per live callback with 1, 128 and 10000 of them alive, for thunks
// (compile-time form, which needs one slot; run-time form, which also stores the member pointer) and for libffi
// closures. Not a timing: each runs once and reports counters.
//
//   bytes_per_thunk   what the process gained, divided by the count: the size of every mapping that is accessible
//                     (any of r, w, x; reservations that are inaccessible hold no memory) read from /proc/self/maps,
//                     plus the bytes malloc handed out (mallinfo2), measured before and after creating them
//   heap_bytes_per_thunk   (member_thunk only) the heap's own account: statistics().committed_bytes / count
//
// Names: memory/<contender>/<count>.
#include "contenders.hpp"

#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <malloc.h>

namespace
{
	using namespace bench;

	/// Accessible mapped bytes plus malloc's bytes in use.
	std::size_t committed_bytes()
	{
		std::size_t total = 0;
		std::ifstream maps("/proc/self/maps");
		std::string line;
		while (std::getline(maps, line))
		{
			std::istringstream in(line);
			std::string range;
			std::string perms;
			in >> range >> perms;
			if (perms.size() < 3 || perms.compare(0, 3, "---") == 0)
				continue;
			const auto dash = range.find('-');
			total += static_cast<std::size_t>(std::stoull(range.substr(dash + 1), nullptr, 16) -
			                                  std::stoull(range.substr(0, dash), nullptr, 16));
		}
		const auto info = ::mallinfo2();
		return total + info.uordblks + info.hblkhd;
	}

	void report(benchmark::State& state, std::size_t before, std::size_t count)
	{
		const std::size_t after = committed_bytes();
		state.counters["bytes_per_thunk"] =
		    static_cast<double>(after > before ? after - before : 0) / static_cast<double>(count);
	}

	template<bool RunTimeForm>
	void thunks(benchmark::State& state)
	{
		const auto count = static_cast<std::size_t>(state.range(0));
		accumulator a;
		for (auto _ : state)
		{
			std::vector<member_thunk::page> pages;
			pages.reserve(count); // at most one page per thunk: allocated before the first measurement
			member_thunk::heap<> heap;
			const std::size_t before = committed_bytes();
			for (std::size_t made = 0; made < count;)
			{
				member_thunk::page page = heap.allocate_page();
				for (; made < count && !page.full(); ++made)
				{
					if constexpr (RunTimeForm)
						benchmark::DoNotOptimize(page.make_thunk<callback2>(&a, &accumulator::add2));
					else
						benchmark::DoNotOptimize(page.make_thunk<callback2, &accumulator::add2>(&a));
				}
				page.mark_executable();
				pages.push_back(std::move(page));
			}
			report(state, before, count);
			state.counters["heap_bytes_per_thunk"] =
			    static_cast<double>(heap.statistics().committed_bytes) / static_cast<double>(count);
			state.counters["thunks_per_page"] = static_cast<double>(pages.front().size());
			pages.clear();
		}
	}

	void libffi(benchmark::State& state)
	{
		const auto count = static_cast<std::size_t>(state.range(0));
		accumulator a;
		for (auto _ : state)
		{
			std::vector<std::unique_ptr<ffi_callback<2>>> closures;
			closures.reserve(count);
			const std::size_t before = committed_bytes();
			for (std::size_t i = 0; i < count; ++i)
				closures.push_back(std::make_unique<ffi_callback<2>>(a));
			report(state, before, count);
		}
	}
} // namespace

BENCHMARK(thunks<false>)->Name("memory/thunk_compile_time")->Arg(1)->Arg(128)->Arg(10000)->Iterations(1);
BENCHMARK(thunks<true>)->Name("memory/thunk_run_time")->Arg(1)->Arg(128)->Arg(10000)->Iterations(1);
BENCHMARK(libffi)->Name("memory/libffi")->Arg(1)->Arg(128)->Arg(10000)->Iterations(1);

BENCHMARK_MAIN();
