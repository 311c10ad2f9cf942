// Benchmark 2, creation and destruction: thunks per second (a) batched, filling whole pages and sealing each once,
// (b) one thunk per page, (c) libffi closures (ffi_closure_alloc + ffi_prep_closure_loc); and what freeing each costs.
// Each iteration creates a batch and times only the part its name says (manual timing), so creation and
// destruction are measured separately; items are thunks. A batch of 16 pages is what the heap's page cache holds:
// this is the steady state of a program that keeps creating and freeing callbacks. cycle/one_per_page times the whole
// round trip without splitting it. Names: create/<how>, destroy/<how>, cycle/<how>.
#include "contenders.hpp"

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstddef>
#include <memory>
#include <vector>

namespace
{
	using namespace bench;
	using clock_type = std::chrono::steady_clock;

	constexpr std::size_t batch_pages = 16;
	constexpr std::size_t batch_closures = 1024;

	double seconds_since(clock_type::time_point start)
	{
		return std::chrono::duration<double>(clock_type::now() - start).count();
	}

	/// `thunks_per_page` thunks (0: as many as fit) on each of `batch_pages` sealed pages.
	void fill(std::vector<member_thunk::page>& pages, accumulator& a, std::size_t thunks_per_page)
	{
		for (std::size_t p = 0; p < batch_pages; ++p)
		{
			member_thunk::page page = member_thunk::allocate_page();
			const std::size_t count = thunks_per_page == 0 ? page.capacity() : thunks_per_page;
			for (std::size_t i = 0; i < count; ++i)
				benchmark::DoNotOptimize(page.make_thunk<callback2, &accumulator::add2>(&a));
			page.mark_executable();
			pages.push_back(std::move(page));
		}
	}

	std::size_t thunks_in(const std::vector<member_thunk::page>& pages)
	{
		std::size_t count = 0;
		for (const auto& p : pages)
			count += p.size();
		return count;
	}

	void create_pages(benchmark::State& state, std::size_t thunks_per_page)
	{
		accumulator a;
		std::vector<member_thunk::page> pages;
		pages.reserve(batch_pages);
		std::size_t items = 0;
		for (auto _ : state)
		{
			const auto start = clock_type::now();
			fill(pages, a, thunks_per_page);
			state.SetIterationTime(seconds_since(start));
			items += thunks_in(pages);
			pages.clear();
		}
		state.SetItemsProcessed(static_cast<std::int64_t>(items));
	}

	void destroy_pages(benchmark::State& state, std::size_t thunks_per_page)
	{
		accumulator a;
		std::vector<member_thunk::page> pages;
		pages.reserve(batch_pages);
		std::size_t items = 0;
		for (auto _ : state)
		{
			fill(pages, a, thunks_per_page);
			items += thunks_in(pages);
			const auto start = clock_type::now();
			pages.clear();
			state.SetIterationTime(seconds_since(start));
		}
		state.SetItemsProcessed(static_cast<std::int64_t>(items));
	}

	void create_batched(benchmark::State& state)
	{
		create_pages(state, 0);
	}
	void destroy_batched(benchmark::State& state)
	{
		destroy_pages(state, 0);
	}
	void create_one_per_page(benchmark::State& state)
	{
		create_pages(state, 1);
	}
	void destroy_one_per_page(benchmark::State& state)
	{
		destroy_pages(state, 1);
	}

	void cycle_one_per_page(benchmark::State& state)
	{
		accumulator a;
		for (auto _ : state)
		{
			member_thunk::page page = member_thunk::allocate_page();
			benchmark::DoNotOptimize(page.make_thunk<callback2, &accumulator::add2>(&a));
			page.mark_executable();
		}
		state.SetItemsProcessed(state.iterations());
	}

	using closures = std::vector<std::unique_ptr<ffi_callback<2>>>;

	void create_libffi(benchmark::State& state)
	{
		accumulator a;
		closures batch;
		batch.reserve(batch_closures);
		for (auto _ : state)
		{
			const auto start = clock_type::now();
			for (std::size_t i = 0; i < batch_closures; ++i)
				batch.push_back(std::make_unique<ffi_callback<2>>(a));
			state.SetIterationTime(seconds_since(start));
			batch.clear();
		}
		state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * batch_closures));
	}

	void destroy_libffi(benchmark::State& state)
	{
		accumulator a;
		closures batch;
		batch.reserve(batch_closures);
		for (auto _ : state)
		{
			for (std::size_t i = 0; i < batch_closures; ++i)
				batch.push_back(std::make_unique<ffi_callback<2>>(a));
			const auto start = clock_type::now();
			batch.clear();
			state.SetIterationTime(seconds_since(start));
		}
		state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * batch_closures));
	}

	void cycle_libffi(benchmark::State& state)
	{
		accumulator a;
		for (auto _ : state)
		{
			const ffi_callback<2> closure(a);
			benchmark::DoNotOptimize(closure.code());
		}
		state.SetItemsProcessed(state.iterations());
	}
} // namespace

BENCHMARK(create_batched)->Name("create/batched")->UseManualTime();
BENCHMARK(create_one_per_page)->Name("create/one_per_page")->UseManualTime();
BENCHMARK(create_libffi)->Name("create/libffi")->UseManualTime();
BENCHMARK(destroy_batched)->Name("destroy/batched")->UseManualTime();
BENCHMARK(destroy_one_per_page)->Name("destroy/one_per_page")->UseManualTime();
BENCHMARK(destroy_libffi)->Name("destroy/libffi")->UseManualTime();
BENCHMARK(cycle_one_per_page)->Name("cycle/one_per_page");
BENCHMARK(cycle_libffi)->Name("cycle/libffi");

BENCHMARK_MAIN();
