// Benchmark 4, memory: bytes of committed memory per live callback with 1, 128 and 10000 of them alive, for thunks
// (compile-time form, which needs one slot; run-time form, which also stores the member pointer) and for libffi
// closures. Not a timing: each runs once and reports counters.
//
//   bytes_per_thunk   what the process gained, divided by the count: the size of every mapping that is accessible
//                     (any of r, w, x; reservations that are inaccessible hold no memory) read from /proc/self/maps,
//                     plus the bytes malloc handed out (mallinfo2), measured before and after creating them
//   heap_bytes_per_thunk   (member_thunk only) the heap's own account: statistics().committed_bytes / count
//
// Unique thunks (prebuilt stubs), for each way the stubs' code can come from (forced with stub_sources::force, one
// fresh heap<> each), compile-time form; counters per thunk:
//   heap_bytes_per_thunk     the heap's statistics().committed_bytes / count (its data pages: slab pages of slots)
//   private_dirty_per_thunk  growth of Private_Dirty in /proc/self/smaps_rollup: memory only this process has written
//                            (data pages, a private copy of the stubs' code, the heap's bookkeeping)
//   pss_dirty_per_thunk      growth of Pss_Dirty: the same, plus dirty shared pages divided among their mappings (the
//                            sealed memfd, mapped once per region); -1 if the kernel does not report it
//   rss_per_thunk            growth of Rss: every page mapped, counted once per mapping, shared or not (the file and
//                            memfd mappings of the code count here though they hold no memory of their own)
// The image pool holds MEMBER_THUNK_IMAGE_POOL_TABLES tables of stubs (set to 10 for this executable: 10080 thunks on
// x86, so that 10000 fit).
//
// Names: memory/<contender>/<count>, memory/unique/<way>/<count>.
#include "contenders.hpp"

#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <map>
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

namespace
{
	using member_thunk::detail::stub_source;
	using member_thunk::detail::stub_sources;

	/// The fields of /proc/self/smaps_rollup, in bytes (absent fields read as -1).
	struct rollup
	{
		std::map<std::string, double> fields;

		static rollup read()
		{
			rollup r;
			std::ifstream in("/proc/self/smaps_rollup");
			std::string line;
			while (std::getline(in, line))
			{
				std::istringstream fields(line);
				std::string name;
				double kib = 0;
				if (fields >> name >> kib && !name.empty() && name.back() == ':')
					r.fields[name.substr(0, name.size() - 1)] = kib * 1024;
			}
			return r;
		}

		[[nodiscard]] double get(const std::string& name) const
		{
			const auto found = fields.find(name);
			return found == fields.end() ? -1 : found->second;
		}
	};

	template<stub_source Way>
	void unique_thunks(benchmark::State& state)
	{
		const auto count = static_cast<std::size_t>(state.range(0));
		accumulator a;
		for (auto _ : state)
		{
			stub_sources::force(Way);
			{
				member_thunk::heap<> heap;
				// Made (and its memory written) before the first measurement.
				std::vector<member_thunk::unique_thunk<callback2>> made(count);
				const rollup before = rollup::read();
				for (auto& t : made)
					t = heap.make_unique_thunk<callback2, &accumulator::add2>(&a);
				const rollup after = rollup::read();
				const auto per_thunk = [&](const char* field) {
					const double b = before.get(field);
					const double f = after.get(field);
					return b < 0 || f < 0 ? -1.0 : (f - b) / static_cast<double>(count);
				};
				state.counters["heap_bytes_per_thunk"] =
				    static_cast<double>(heap.statistics().committed_bytes) / static_cast<double>(count);
				state.counters["private_dirty_per_thunk"] = per_thunk("Private_Dirty");
				state.counters["pss_dirty_per_thunk"] = per_thunk("Pss_Dirty");
				state.counters["rss_per_thunk"] = per_thunk("Rss");
				state.counters["regions"] = static_cast<double>(heap.statistics().regions);
				made.clear(); // before their heap
			}
			stub_sources::reset();
		}
	}
} // namespace

BENCHMARK(thunks<false>)->Name("memory/thunk_compile_time")->Arg(1)->Arg(128)->Arg(10000)->Iterations(1);
BENCHMARK(thunks<true>)->Name("memory/thunk_run_time")->Arg(1)->Arg(128)->Arg(10000)->Iterations(1);
BENCHMARK(libffi)->Name("memory/libffi")->Arg(1)->Arg(128)->Arg(10000)->Iterations(1);
BENCHMARK(unique_thunks<stub_source::image_file>)
    ->Name("memory/unique/image_file")
    ->Arg(1)
    ->Arg(128)
    ->Arg(10000)
    ->Iterations(1);
BENCHMARK(unique_thunks<stub_source::sealed_copy>)
    ->Name("memory/unique/sealed_copy")
    ->Arg(1)
    ->Arg(128)
    ->Arg(10000)
    ->Iterations(1);
BENCHMARK(unique_thunks<stub_source::runtime_copy>)
    ->Name("memory/unique/runtime_copy")
    ->Arg(1)
    ->Arg(128)
    ->Arg(10000)
    ->Iterations(1);
BENCHMARK(unique_thunks<stub_source::image_pool>)
    ->Name("memory/unique/image_pool")
    ->Arg(1)
    ->Arg(128)
    ->Arg(10000)
    ->Iterations(1);

BENCHMARK_MAIN();
