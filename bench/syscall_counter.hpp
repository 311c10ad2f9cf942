// Benchmarks: counts the system calls the calling thread makes, every one of them (the library's, malloc's, a lock's
// futex), with the kernel's own count: the tracepoint raw_syscalls:sys_enter read through perf_event_open. Linux
// only, and only where the tracepoint may be used (tracefs mounted, and root or CAP_PERFMON with a permissive
// perf_event_paranoid); elsewhere available() is false and the benchmarks report -1.
//
// The count of a window [start(), stop()] includes the one call that stop() makes to disable the counter;
// stop() subtracts it (measured once, on an empty window, when the counter is opened).
#pragma once

#include <cstdint>
#include <fstream>
#include <string>

#if defined(__linux__)
#include <linux/perf_event.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace bench
{
	class syscall_counter
	{
	public:
		syscall_counter() noexcept
		{
#if defined(__linux__)
			const long id = tracepoint_id();
			if (id < 0)
				return;
			perf_event_attr attr{};
			attr.type = PERF_TYPE_TRACEPOINT;
			attr.size = sizeof attr;
			attr.config = static_cast<std::uint64_t>(id);
			attr.disabled = 1;
			// This thread only (pid 0, any CPU), not its children.
			fd_ = static_cast<int>(::syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0UL));
			if (fd_ < 0)
				return;
			start();
			own_calls_ = raw_stop();
#endif
		}

		syscall_counter(const syscall_counter&) = delete;
		syscall_counter& operator=(const syscall_counter&) = delete;
		syscall_counter(syscall_counter&&) = delete;
		syscall_counter& operator=(syscall_counter&&) = delete;

		~syscall_counter()
		{
#if defined(__linux__)
			if (fd_ >= 0)
				::close(fd_);
#endif
		}

		[[nodiscard]] bool available() const noexcept
		{
			return fd_ >= 0 && own_calls_ >= 0;
		}

		void start() noexcept
		{
#if defined(__linux__)
			if (fd_ < 0)
				return;
			::ioctl(fd_, PERF_EVENT_IOC_RESET, 0);
			::ioctl(fd_, PERF_EVENT_IOC_ENABLE, 0);
#endif
		}

		/// System calls of this thread since start(), or -1 if the counter is not available.
		[[nodiscard]] std::int64_t stop() noexcept
		{
			if (!available())
				return -1;
			return raw_stop() - own_calls_;
		}

	private:
		std::int64_t raw_stop() noexcept
		{
#if defined(__linux__)
			::ioctl(fd_, PERF_EVENT_IOC_DISABLE, 0);
			std::uint64_t count = 0;
			if (::read(fd_, &count, sizeof count) != static_cast<ssize_t>(sizeof count))
				return -1;
			return static_cast<std::int64_t>(count);
#else
			return -1;
#endif
		}

		static long tracepoint_id()
		{
			for (const char* path : {"/sys/kernel/tracing/events/raw_syscalls/sys_enter/id",
			                         "/sys/kernel/debug/tracing/events/raw_syscalls/sys_enter/id"})
			{
				std::ifstream in(path);
				long id = -1;
				if (in >> id)
					return id;
			}
			return -1;
		}

		int fd_ = -1;
		std::int64_t own_calls_ = -1;
	};
} // namespace bench
