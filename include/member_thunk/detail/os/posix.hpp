// member_thunk: the POSIX OS back end (Linux, the BSDs, macOS). Thin wrappers over mmap/mprotect/munmap that report
// failures as values; policy and messages live in the layers above.
#pragma once

#include "result.hpp"

#include <cerrno>
#include <cstddef>
#include <system_error>

#include <sys/mman.h>
#include <unistd.h>

#if defined(__linux__) && defined(__aarch64__)
#include <sys/auxv.h>
#endif

namespace member_thunk::detail::os
{
	struct posix
	{
		/// Pages per region: a region is the unit of address-space reservation. 16 keeps a region's page bitmap in
		/// one word and the number of kernel mappings small.
		static constexpr std::size_t pages_per_region = 16;

		[[nodiscard]] static std::size_t page_size() noexcept
		{
			static const std::size_t size = [] {
				const long value = ::sysconf(_SC_PAGESIZE);
				return value > 0 ? static_cast<std::size_t>(value) : std::size_t{4096};
			}();
			return size;
		}

		[[nodiscard]] static std::size_t region_size() noexcept { return pages_per_region * page_size(); }

		/// Reserves inaccessible address space, at `preferred` if that range is free (a wish only: without MAP_FIXED
		/// the kernel never replaces an existing mapping and places the reservation elsewhere instead).
		static result reserve(std::size_t size, void* preferred, void*& out) noexcept
		{
			void* const address =
			    ::mmap(preferred, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | map_noreserve, -1, 0);
			if (address == MAP_FAILED)
				return last_error("mmap(PROT_NONE)");
			out = address;
			return result::success();
		}

		static result make_writable(void* address, std::size_t size) noexcept
		{
			if (::mprotect(address, size, PROT_READ | PROT_WRITE) != 0)
				return last_error("mprotect(PROT_READ|PROT_WRITE)");
			return result::success();
		}

		static result make_executable(void* address, std::size_t size) noexcept
		{
			if (::mprotect(address, size, PROT_READ | PROT_EXEC | branch_protection()) == 0)
				return result::success();
			const int error = errno;
			return result::failure(std::error_code(error, std::system_category()),
			                       branch_protection() != 0 ? "mprotect(PROT_READ|PROT_EXEC|PROT_BTI)"
			                                                : "mprotect(PROT_READ|PROT_EXEC)",
			                       error == EACCES || error == EPERM
			                           ? "the system forbids making memory executable (a W^X policy such as "
			                             "prctl(PR_SET_MDWE), systemd's MemoryDenyWriteExecute, SELinux deny_execmem "
			                             "or PaX MPROTECT is in force)"
			                           : nullptr);
		}

		static result flush_instruction_cache(void* address, std::size_t size) noexcept
		{
			// x86 keeps instruction fetch coherent with stores; AArch64 needs the clean+invalidate this emits.
			auto* const begin = static_cast<char*>(address);
			__builtin___clear_cache(begin, begin + size);
			return result::success();
		}

		static result set_call_targets([[maybe_unused]] void* page, [[maybe_unused]] std::size_t size,
		                               [[maybe_unused]] std::size_t count, [[maybe_unused]] std::size_t stride,
		                               [[maybe_unused]] bool valid) noexcept
		{
			// POSIX systems have no call-target bitmap: IBT/BTI landing pads are in the thunk's code itself.
			return result::success();
		}

		static result decommit(void* address, std::size_t size) noexcept
		{
			// Mapping fresh inaccessible pages over the range drops its contents and memory in one atomic step;
			// a stale call into it faults at once.
			void* const replaced =
			    ::mmap(address, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | map_noreserve, -1, 0);
			if (replaced == MAP_FAILED)
				return last_error("mmap(MAP_FIXED, PROT_NONE)");
			return result::success();
		}

		static result unreserve(void* address, std::size_t size) noexcept
		{
			if (::munmap(address, size) != 0)
				return last_error("munmap");
			return result::success();
		}

	private:
#ifdef MAP_NORESERVE
		static constexpr int map_noreserve = MAP_NORESERVE;
#else
		static constexpr int map_noreserve = 0;
#endif

		static result last_error(const char* call) noexcept
		{
			return result::failure(std::error_code(errno, std::system_category()), call);
		}

		// PROT_BTI guards the page when the CPU implements BTI: indirect branches into it must land on `bti`.
		[[nodiscard]] static int branch_protection() noexcept
		{
#if defined(__linux__) && defined(__aarch64__)
			constexpr int prot_bti = 0x10;                  // PROT_BTI (asm/mman.h)
			constexpr unsigned long hwcap2_bti = 1UL << 17; // HWCAP2_BTI (asm/hwcap.h)
			static const int flag = (::getauxval(AT_HWCAP2) & hwcap2_bti) != 0 ? prot_bti : 0;
			return flag;
#else
			return 0;
#endif
		}
	};

	static_assert(backend<posix>);
} // namespace member_thunk::detail::os
