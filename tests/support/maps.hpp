// Test support: the process's memory mappings, as a list of address ranges with their protection.
//
// Linux: read from /proc/self/maps. The property tests take a snapshot after every operation, tens of thousands of
// times per run, so the reader reads the file with one read() loop into a reused per-thread buffer and parses it by
// hand (several times faster than iostreams, which matters most under the sanitizers).
// Windows: the address space walked with VirtualQuery. Reserved but uncommitted memory is listed with no access
// ("---"), as a PROT_NONE reservation is on Linux, so that the same assertions hold on both systems.
//
// Under qemu-user (the emulator command of the qemu toolchains sets MEMBER_THUNK_TEST_EMULATOR=qemu-user),
// /proc/self/maps is qemu's rendering of the guest's pages, built from the host mappings of the qemu process, and it
// is not exact (qemu 7.2, linux-user/syscall.c, open_self_maps):
// - each host mapping is listed with the protection of its first guest page, and left out if another of its pages
//   lacks a read or write right of the first. qemu maps guest code read-only on the host, so neighbouring r-x and
//   r-- pages (or rw- and rwx pages) are one host mapping, listed with the first page's execute right;
// - for a 32-bit guest, qemu reserves the whole 4 GiB as one PROT_NONE host mapping: a PROT_NONE guest page next to
//   free guest space merges with it and is not listed at all, as if it were unmapped;
// - the host mappings and the guest page flags are read at different times, without a lock: when another thread
//   changes a page in between, a whole host mapping disappears from the listing or takes that page's protection.
// So there the protection of a page (protection_in, is_mapped, any_mapping_in) is asked of qemu itself, which checks
// the guest page flags: see qemu_user below. Only the execute right still comes from the listing; the snapshot
// functions (writable_executable_in, mapping_count) read the listing as it is.
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#if defined(_WIN32)
#include <member_thunk/detail/os/windows_sdk.hpp>
#else
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>
#endif

// The parser touches every byte of the file: under a sanitizer each access would be checked, which made the property
// tests spend most of their time here. It reads only its own buffer, so it opts out of the instrumentation.
#if defined(__GNUC__) || defined(__clang__)
#define TEST_MAPS_UNINSTRUMENTED __attribute__((no_sanitize("address", "thread", "undefined")))
#else
#define TEST_MAPS_UNINSTRUMENTED
#endif

namespace test
{
	struct mapping
	{
		std::uintptr_t begin = 0;
		std::uintptr_t end = 0;
		bool read = false;
		bool write = false;
		bool execute = false;
		bool shared = false;       ///< Linux: a shared mapping ("s"); a private one ("p") is copied on write
		std::uintptr_t offset = 0; ///< Linux: the offset in the mapped file
		std::string name;

		[[nodiscard]] std::string protection() const
		{
			return std::string(read ? "r" : "-") + (write ? "w" : "-") + (execute ? "x" : "-");
		}

		[[nodiscard]] bool contains(std::uintptr_t address) const noexcept { return address >= begin && address < end; }
	};

#if defined(_WIN32)
	/// The size of a memory page.
	[[nodiscard]] inline std::size_t system_page_size() noexcept
	{
		SYSTEM_INFO info;
		::GetSystemInfo(&info);
		return info.dwPageSize;
	}

	/// A snapshot of the process's address space: every range that is reserved or committed.
	[[nodiscard]] inline std::vector<mapping> read_maps()
	{
		SYSTEM_INFO info;
		::GetSystemInfo(&info);
		std::vector<mapping> result;
		result.reserve(256);
		auto address = reinterpret_cast<std::uintptr_t>(info.lpMinimumApplicationAddress);
		const auto last = reinterpret_cast<std::uintptr_t>(info.lpMaximumApplicationAddress);
		MEMORY_BASIC_INFORMATION region;
		while (address < last &&
		       ::VirtualQuery(reinterpret_cast<const void*>(address), &region, sizeof region) == sizeof region)
		{
			mapping m;
			m.begin = reinterpret_cast<std::uintptr_t>(region.BaseAddress);
			m.end = m.begin + region.RegionSize;
			if (region.State == MEM_COMMIT && (region.Protect & (PAGE_NOACCESS | PAGE_GUARD)) == 0)
			{
				const DWORD access = region.Protect & 0xFFU; // without PAGE_TARGETS_*, PAGE_NOCACHE and the like
				m.execute = (access &
				             (PAGE_EXECUTE | PAGE_EXECUTE_READ | PAGE_EXECUTE_READWRITE | PAGE_EXECUTE_WRITECOPY)) != 0;
				m.write =
				    (access & (PAGE_READWRITE | PAGE_WRITECOPY | PAGE_EXECUTE_READWRITE | PAGE_EXECUTE_WRITECOPY)) != 0;
				m.read = m.write || (access & (PAGE_READONLY | PAGE_EXECUTE_READ)) != 0;
			}
			m.name = region.Type == MEM_IMAGE ? "image" : region.Type == MEM_MAPPED ? "mapped" : "private";
			address = m.end;
			if (region.State != MEM_FREE)
				result.push_back(std::move(m));
		}
		return result;
	}
#else
	/// The size of a memory page.
	[[nodiscard]] inline std::size_t system_page_size() noexcept
	{
		return static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
	}

	namespace maps_detail
	{
		/// Lowercase hexadecimal digits at `p`; false if there are none.
		[[nodiscard]] TEST_MAPS_UNINSTRUMENTED inline bool parse_hex(const char*& p, const char* end,
		                                                             std::uintptr_t& value) noexcept
		{
			const char* const start = p;
			value = 0;
			for (; p < end; ++p)
			{
				const char c = *p;
				if (c >= '0' && c <= '9')
					value = value * 16 + static_cast<std::uintptr_t>(c - '0');
				else if (c >= 'a' && c <= 'f')
					value = value * 16 + static_cast<std::uintptr_t>(c - 'a' + 10);
				else
					break;
			}
			return p != start;
		}

		/// Skips `count` blank-separated fields.
		TEST_MAPS_UNINSTRUMENTED inline void skip_fields(const char*& p, const char* end, int count) noexcept
		{
			for (int i = 0; i < count; ++i)
			{
				while (p < end && *p == ' ')
					++p;
				while (p < end && *p != ' ')
					++p;
			}
			while (p < end && *p == ' ')
				++p;
		}

		/// The whole of /proc/self/maps, in a buffer reused by the calling thread.
		[[nodiscard]] inline std::string_view read_file()
		{
			thread_local std::vector<char> text(std::size_t{1} << 16);
			const int fd = ::open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
			if (fd < 0)
				throw std::runtime_error("test: cannot open /proc/self/maps");
			std::size_t size = 0;
			for (;;)
			{
				if (size == text.size())
					text.resize(text.size() * 2);
				const ssize_t n = ::read(fd, text.data() + size, text.size() - size);
				if (n <= 0)
					break;
				size += static_cast<std::size_t>(n);
			}
			::close(fd);
			return {text.data(), size};
		}
	} // namespace maps_detail

	/// A snapshot of the process's mappings. The kernel writes each line as
	/// `begin-end perms offset device inode [name]`.
	[[nodiscard]] TEST_MAPS_UNINSTRUMENTED inline std::vector<mapping> read_maps()
	{
		const std::string_view text = maps_detail::read_file();
		std::vector<mapping> result;
		result.reserve(256);
		const char* p = text.data();
		const char* const text_end = text.data() + text.size();
		while (p < text_end)
		{
			const char* line_end = p;
			while (line_end < text_end && *line_end != '\n')
				++line_end;
			mapping m;
			if (!maps_detail::parse_hex(p, line_end, m.begin) || p == line_end || *p++ != '-' ||
			    !maps_detail::parse_hex(p, line_end, m.end) || line_end - p < 4)
				throw std::runtime_error("test: unexpected line in /proc/self/maps: " +
				                         std::string(text.substr(0, 200)));
			++p;
			m.read = p[0] == 'r';
			m.write = p[1] == 'w';
			m.execute = p[2] == 'x';
			m.shared = p[3] == 's';
			maps_detail::skip_fields(p, line_end, 1); // perms
			if (!maps_detail::parse_hex(p, line_end, m.offset))
				throw std::runtime_error("test: unexpected offset in /proc/self/maps");
			maps_detail::skip_fields(p, line_end, 2); // device inode
			m.name.assign(p, line_end);
			result.push_back(std::move(m));
			p = line_end + 1;
		}
		return result;
	}

#endif

#if !defined(_WIN32)
	/// Whether the tests run under qemu-user, whose /proc/self/maps is inexact (see the top of this file).
	[[nodiscard]] inline bool under_qemu_user()
	{
		static const bool emulated = [] {
			const char* const emulator = std::getenv("MEMBER_THUNK_TEST_EMULATOR");
			return emulator != nullptr && std::string_view(emulator) == "qemu-user";
		}();
		return emulated;
	}

	/// Questions about one page that qemu-user answers from the guest page flags, where its /proc/self/maps cannot.
	/// Each one is a system call whose outcome depends on those flags alone; none changes what is mapped, and only
	/// `occupied` maps anything (a probe page, at once unmapped again).
	namespace qemu_user
	{
		/// The start of the page that holds `address`.
		[[nodiscard]] inline void* page_start(const void* address)
		{
			const auto size = static_cast<std::uintptr_t>(system_page_size());
			const auto a = reinterpret_cast<std::uintptr_t>(address);
			return reinterpret_cast<void*>(a - a % size);
		}

		/// Whether anything is mapped at `page`, inaccessible or not: a mapping hint is honoured only where the
		/// address space is free (qemu searches the guest page flags for free space from the hint; the kernel does
		/// the same natively).
		[[nodiscard]] inline bool occupied(void* page)
		{
			const std::size_t size = system_page_size();
			void* const probe = ::mmap(page, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
			if (probe == MAP_FAILED)
				throw std::runtime_error("test: mmap of a probe page failed");
			::munmap(probe, size);
			return probe != page;
		}

		struct rights
		{
			bool read = false;
			bool write = false;
		};

		/// Read and write rights of a mapped `page`. qemu checks a system call's buffer against the guest page flags
		/// before the call: write() from an unreadable buffer and read() into an unwritable one fail with EFAULT.
		/// The read is from an empty non-blocking pipe, so it never stores anything (natively it would return
		/// EAGAIN without looking at the buffer: this probe tells only under qemu).
		[[nodiscard]] inline rights rights_of(void* page)
		{
			int ends[2] = {-1, -1};
			if (::pipe2(ends, O_NONBLOCK | O_CLOEXEC) != 0)
				throw std::runtime_error("test: pipe2 failed");
			struct closer
			{
				int* fds;
				~closer()
				{
					::close(fds[0]);
					::close(fds[1]);
				}
			} const close_both{ends};
			rights result;
			if (::write(ends[1], page, 1) == 1)
			{
				char drained = 0;
				if (::read(ends[0], &drained, 1) != 1) // leave the pipe empty for the write probe
					throw std::runtime_error("test: could not drain the probe pipe");
				result.read = true;
			}
			else if (errno != EFAULT)
				throw std::runtime_error("test: write() probe failed with errno " + std::to_string(errno));
			if (::read(ends[0], page, 1) >= 0)
				throw std::runtime_error("test: read() probe returned data from an empty pipe");
			if (errno == EAGAIN)
				result.write = true;
			else if (errno != EFAULT)
				throw std::runtime_error("test: read() probe failed with errno " + std::to_string(errno));
			return result;
		}
	} // namespace qemu_user
#endif

	/// The mapping of the snapshot `maps` that contains `address`, if any.
	[[nodiscard]] inline const mapping* find_mapping(const std::vector<mapping>& maps, const void* address) noexcept
	{
		const auto a = reinterpret_cast<std::uintptr_t>(address);
		for (const auto& m : maps)
			if (m.contains(a))
				return &m;
		return nullptr;
	}

	/// The mapping that contains `address`, if any.
	[[nodiscard]] inline std::optional<mapping> mapping_of(const void* address)
	{
		const auto maps = read_maps();
		if (const auto* m = find_mapping(maps, address))
			return *m;
		return std::nullopt;
	}

	/// Whether `address` lies in one of `maps` (a snapshot: taking one per address would let the allocator reuse a
	/// released range between two reads, as sanitizer runtimes do).
	/// Under qemu-user, whether the page is mapped now.
	[[nodiscard]] inline bool is_mapped(const std::vector<mapping>& maps, const void* address)
	{
#if !defined(_WIN32)
		if (under_qemu_user())
			return qemu_user::occupied(qemu_user::page_start(address));
#endif
		return find_mapping(maps, address) != nullptr;
	}

#if !defined(_WIN32)
	namespace qemu_user
	{
		/// The protection of the page of `address` now: mapped, read and write rights asked of qemu, the execute
		/// right from a listing that agrees with them on reading and writing (the snapshot `maps` first, then fresh
		/// ones, since another thread may have changed a neighbour while qemu made one). A page that is mapped
		/// but inaccessible and not listed is "---": qemu gives the host page some access whenever the guest page
		/// has any, execute included, so such a page's host mapping is one of the inaccessible ones it leaves out.
		/// An accessible page that no listing shows with its rights has "?" for the execute right.
		[[nodiscard]] inline std::string protection_in(const std::vector<mapping>& maps, const void* address)
		{
			void* const page = page_start(address);
			if (!occupied(page))
				return "unmapped";
			const rights now = rights_of(page);
			const std::string rw = std::string(now.read ? "r" : "-") + (now.write ? "w" : "-");
			const auto agrees = [&](const std::vector<mapping>& listing) {
				const auto* m = find_mapping(listing, page);
				return m != nullptr && m->read == now.read && m->write == now.write ? m : nullptr;
			};
			if (const auto* m = agrees(maps))
				return rw + (m->execute ? "x" : "-");
			for (int attempt = 0; attempt < 8; ++attempt)
				if (const auto* m = agrees(read_maps()))
					return rw + (m->execute ? "x" : "-");
			return rw + (now.read || now.write ? "?" : "-");
		}
	} // namespace qemu_user
#endif

	/// The protection of `address` in the snapshot `maps` ("r-x", "rw-", "---"), or "unmapped". Under qemu-user, the
	/// protection now (qemu_user::protection_in).
	[[nodiscard]] inline std::string protection_in(const std::vector<mapping>& maps, const void* address)
	{
#if !defined(_WIN32)
		if (under_qemu_user())
			return qemu_user::protection_in(maps, address);
#endif
		const auto* m = find_mapping(maps, address);
		return m ? m->protection() : std::string("unmapped");
	}

	/// "r-x", "rw-", "---", or "unmapped".
	[[nodiscard]] inline std::string protection_of(const void* address)
	{
		return protection_in(read_maps(), address);
	}

	/// Mappings of the snapshot `maps` that are writable and executable at once (there must never be any of ours; the
	/// test process itself has none either).
	[[nodiscard]] inline std::vector<mapping> writable_executable_in(const std::vector<mapping>& maps)
	{
		std::vector<mapping> result;
		for (const auto& m : maps)
			if (m.write && m.execute)
				result.push_back(m);
		return result;
	}

	[[nodiscard]] inline std::vector<mapping> writable_executable_mappings()
	{
		return writable_executable_in(read_maps());
	}

	/// "begin-end perms name", for failure messages.
	[[nodiscard]] inline std::string describe(const mapping& m)
	{
		return std::to_string(m.begin) + "-" + std::to_string(m.end) + " " + m.protection() + " " + m.name;
	}

	[[nodiscard]] inline std::size_t mapping_count()
	{
		return read_maps().size();
	}

	/// Address space mapped anywhere inside [begin, end) (under qemu-user, asked page by page).
	[[nodiscard]] inline bool any_mapping_in(std::uintptr_t begin, std::uintptr_t end)
	{
		for (const auto& m : read_maps())
			if (m.begin < end && begin < m.end)
				return true;
#if !defined(_WIN32)
		if (under_qemu_user())
			for (std::uintptr_t a = begin; a < end; a += system_page_size())
				if (qemu_user::occupied(qemu_user::page_start(reinterpret_cast<const void*>(a))))
					return true;
#endif
		return false;
	}
} // namespace test
