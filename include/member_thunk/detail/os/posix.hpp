// member_thunk: the POSIX OS back end (Linux, the BSDs, macOS). Thin wrappers over mmap/mprotect/munmap that report
// failures as values; policy and messages live in the layers above.
#pragma once

#include "result.hpp"

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <system_error>

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(__linux__)
#include <link.h>
#include <sys/syscall.h>
#endif

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
			return exec_refusal(branch_protection() != 0 ? "mprotect(PROT_READ|PROT_EXEC|PROT_BTI)"
			                                             : "mprotect(PROT_READ|PROT_EXEC)");
		}

		static result protect(void* address, std::size_t size, access a) noexcept
		{
			switch (a)
			{
			case access::none:
				if (::mprotect(address, size, PROT_NONE) != 0)
					return last_error("mprotect(PROT_NONE)");
				break;
			case access::read:
				if (::mprotect(address, size, PROT_READ) != 0)
					return last_error("mprotect(PROT_READ)");
				break;
			case access::read_write:
				if (::mprotect(address, size, PROT_READ | PROT_WRITE) != 0)
					return last_error("mprotect(PROT_READ|PROT_WRITE)");
				break;
			}
			return result::success();
		}

		/// Read-execute, then inaccessible again: the page never holds anything and is never writable meanwhile.
		static result probe_executable(void* address, std::size_t size) noexcept
		{
			if (::mprotect(address, size, PROT_READ | PROT_EXEC) != 0)
				return exec_refusal("mprotect(PROT_READ|PROT_EXEC)");
			if (::mprotect(address, size, PROT_NONE) != 0)
				return last_error("mprotect(PROT_NONE)");
			return result::success();
		}

		/// Maps the program file (or shared library) that holds `code` read-execute over [at, at + size), and checks
		/// that what it mapped is what the process runs (the file may have been replaced on disk since it started).
		static result map_image_code(void* at, std::size_t size, const void* code) noexcept
		{
#if defined(__linux__)
			image_location where{reinterpret_cast<std::uintptr_t>(code), size};
			::dl_iterate_phdr(&find_image, &where);
			if (!where.found)
				return result::failure(std::error_code(ENOENT, std::system_category()), "dl_iterate_phdr",
				                       "no loaded file holds the stub tables");
			if (where.offset % page_size() != 0)
				return result::failure(std::error_code(EINVAL, std::system_category()), "dl_iterate_phdr",
				                       "the stub tables are not page-aligned in the program's file");
			// The main program is listed without a name: /proc/self/exe opens it, even if it was deleted since.
			const char* const path = where.name != nullptr && where.name[0] != '\0' ? where.name : "/proc/self/exe";
			const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
			if (fd < 0)
				return last_error("open(the program's file)");
			void* const mapped = ::mmap(at, size, PROT_READ | PROT_EXEC | branch_protection(), MAP_PRIVATE | MAP_FIXED,
			                            fd, static_cast<off_t>(where.offset));
			const int map_error = errno;
			static_cast<void>(::close(fd));
			if (mapped == MAP_FAILED)
				return exec_refusal("mmap(PROT_READ|PROT_EXEC, the program's file)", map_error);
			return verify_mapping(at, size, code, "the program's file on disk differs from the running program");
#else
			static_cast<void>(at);
			static_cast<void>(size);
			static_cast<void>(code);
			return result::failure(std::error_code(ENOSYS, std::system_category()), "dl_iterate_phdr",
			                       "this system has no way to find the program's file");
#endif
		}

		/// Maps a sealed memfd holding a copy of the bytes at `code` read-execute over [at, at + size). The memfd is
		/// made once per process (never writable again: F_SEAL_WRITE, F_SEAL_GROW, F_SEAL_SHRINK, F_SEAL_SEAL) and
		/// mapped shared, so no mapping of it can ever be made writable.
		static result map_sealed_copy(void* at, std::size_t size, const void* code) noexcept
		{
#if defined(__linux__) && defined(SYS_memfd_create)
			static const sealed_file file = make_sealed_file(code, size);
			if (file.fd < 0)
				return file.failure;
			if (file.size != size)
				return result::failure(std::error_code(EINVAL, std::system_category()), "memfd_create",
				                       "the sealed copy was made for tables of another size");
			void* const mapped =
			    ::mmap(at, size, PROT_READ | PROT_EXEC | branch_protection(), MAP_SHARED | MAP_FIXED, file.fd, 0);
			if (mapped == MAP_FAILED)
				return exec_refusal("mmap(PROT_READ|PROT_EXEC, a sealed memfd)");
			return verify_mapping(at, size, code, "the sealed copy differs from the program's stub tables");
#else
			static_cast<void>(at);
			static_cast<void>(size);
			static_cast<void>(code);
			return result::failure(std::error_code(ENOSYS, std::system_category()), "memfd_create",
			                       "this system has no sealed in-memory files");
#endif
		}

		static result flush_instruction_cache(void* address, std::size_t size) noexcept
		{
			// x86 keeps instruction fetch coherent with stores; AArch64 needs the clean+invalidate this emits.
			auto* const begin = static_cast<char*>(address);
			__builtin___clear_cache(begin, begin + size);
			return result::success();
		}

		static result set_call_targets([[maybe_unused]] void* code, [[maybe_unused]] std::size_t size,
		                               [[maybe_unused]] std::span<const std::uint64_t> entries,
		                               [[maybe_unused]] std::size_t stride, [[maybe_unused]] bool valid) noexcept
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

		/// A refusal to make memory executable: EACCES and EPERM mean a W^X policy said no.
		static result exec_refusal(const char* call, int error = errno) noexcept
		{
			const std::error_code code(error, std::system_category());
			if (error == EACCES || error == EPERM)
				return result::refused_by_policy(code, call,
				                                 "the system forbids making memory executable (a W^X policy such as "
				                                 "prctl(PR_SET_MDWE), systemd's MemoryDenyWriteExecute, SELinux "
				                                 "deny_execmem or PaX MPROTECT is in force)");
			return result::failure(code, call);
		}

		/// After mapping a copy of `code` at `at`: the same bytes, or the mapping is replaced by an inaccessible one.
		static result verify_mapping(void* at, std::size_t size, const void* code, const char* mismatch) noexcept
		{
			if (std::memcmp(at, code, size) == 0)
				return result::success();
			static_cast<void>(decommit(at, size));
			return result::failure(std::error_code(EINVAL, std::system_category()), "memcmp", mismatch);
		}

#if defined(__linux__)
		struct image_location
		{
			std::uintptr_t address = 0;
			std::size_t size = 0;
			const char* name = nullptr;
			std::uint64_t offset = 0;
			bool found = false;
		};

		/// dl_iterate_phdr's callback: the loaded object and file offset of `address` (a loadable segment holds it).
		static int find_image(dl_phdr_info* info, [[maybe_unused]] std::size_t info_size, void* data) noexcept
		{
			auto& where = *static_cast<image_location*>(data);
			for (std::size_t i = 0; i < info->dlpi_phnum; ++i)
			{
				const auto& segment = info->dlpi_phdr[i];
				if (segment.p_type != PT_LOAD)
					continue;
				const std::uintptr_t start = info->dlpi_addr + segment.p_vaddr;
				if (where.address >= start && where.address + where.size <= start + segment.p_filesz)
				{
					where.name = info->dlpi_name;
					where.offset = segment.p_offset + (where.address - start);
					where.found = true;
					return 1;
				}
			}
			return 0;
		}

		struct sealed_file
		{
			int fd = -1;
			std::size_t size = 0;
			result failure = result::success();
		};

#if defined(SYS_memfd_create)
		static sealed_file make_sealed_file(const void* code, std::size_t size) noexcept
		{
			constexpr unsigned int mfd_cloexec = 1U;       // MFD_CLOEXEC
			constexpr unsigned int mfd_allow_sealing = 2U; // MFD_ALLOW_SEALING
			constexpr unsigned int mfd_exec = 0x10U;       // MFD_EXEC (Linux 6.3): executable even if
			                                               // vm.memfd_noexec asks otherwise
			constexpr int f_add_seals = 1033;              // F_ADD_SEALS
			constexpr int seals = 0x1 | 0x2 | 0x4 | 0x8;   // F_SEAL_SEAL, SHRINK, GROW, WRITE
			sealed_file file;
			const char* const name = "member_thunk stubs";
			auto fd = static_cast<int>(::syscall(SYS_memfd_create, name, mfd_cloexec | mfd_allow_sealing | mfd_exec));
			if (fd < 0 && errno == EINVAL) // a kernel older than MFD_EXEC
				fd = static_cast<int>(::syscall(SYS_memfd_create, name, mfd_cloexec | mfd_allow_sealing));
			if (fd < 0)
			{
				file.failure = last_error("memfd_create");
				return file;
			}
			const auto* bytes = static_cast<const char*>(code);
			for (std::size_t done = 0; done < size;)
			{
				const ssize_t n = ::write(fd, bytes + done, size - done);
				if (n <= 0)
				{
					file.failure = last_error("write(a memfd)");
					static_cast<void>(::close(fd));
					return file;
				}
				done += static_cast<std::size_t>(n);
			}
			if (::fcntl(fd, f_add_seals, seals) != 0)
			{
				file.failure = last_error("fcntl(F_ADD_SEALS)");
				static_cast<void>(::close(fd));
				return file;
			}
			file.fd = fd; // kept open for the life of the process: every stub region maps it
			file.size = size;
			return file;
		}
#endif
#endif

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
