// The floor under benchmark 3, without any allocator: each thread flips a private page read-execute and back to
// read-write (and writes to it, as code is written) in a loop for one second; prints the pairs per second of all
// threads together, for 1 and for 2 threads. A plain loop on purpose: nothing but the two system calls.
// Output (read by report.py): one line per thread count, "mprotect_pairs threads=<T> pairs_per_second=<N>".
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <thread>
#include <vector>

#include <sys/mman.h>
#include <unistd.h>

namespace
{
	bool flip_for_one_second(std::atomic<long>& pairs)
	{
		const auto size = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
		void* const mapped = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (mapped == MAP_FAILED)
			return false;
		auto* const page = static_cast<volatile unsigned char*>(mapped);
		const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(1);
		long count = 0;
		bool ok = true;
		while (ok && std::chrono::steady_clock::now() < end)
		{
			ok = ::mprotect(mapped, size, PROT_READ | PROT_EXEC) == 0 &&
			     ::mprotect(mapped, size, PROT_READ | PROT_WRITE) == 0;
			page[0] = 0xCC;
			++count;
		}
		::munmap(mapped, size);
		pairs += count;
		return ok;
	}
} // namespace

int main()
{
	for (const int threads : {1, 2})
	{
		std::atomic<long> pairs{0};
		std::atomic<bool> ok{true};
		std::vector<std::thread> workers;
		for (int i = 0; i < threads; ++i)
			workers.emplace_back([&] {
				if (!flip_for_one_second(pairs))
					ok = false;
			});
		for (auto& w : workers)
			w.join();
		if (!ok)
		{
			std::perror("mprotect_pairs");
			return 1;
		}
		std::printf("mprotect_pairs threads=%d pairs_per_second=%ld\n", threads, pairs.load());
	}
	return 0;
}
