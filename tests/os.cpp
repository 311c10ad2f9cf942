// Tests of the native OS back end (POSIX or Windows): each call leaves the protection it promises, seen in
// /proc/self/maps or through VirtualQuery (support/maps.hpp); failures name the call and carry the system's error.
#include <member_thunk/detail/arch/stub_tables.hpp>
#include <member_thunk/detail/os/native.hpp>
#include <member_thunk/detail/os/per_thread.hpp>

#include "support/maps.hpp"

#include <catch2/catch.hpp>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

using os = member_thunk::detail::os::native;

TEST_CASE("os::page and region sizes come from the system", "[os]")
{
	CHECK(os::page_size() == test::system_page_size());
	CHECK(os::region_size() % os::page_size() == 0);
	CHECK(os::region_size() / os::page_size() >= 1);
	CHECK(os::region_size() / os::page_size() <= 64);
}

TEST_CASE("os::the entries of set_call_targets are the set bits of a mask of slots, ascending, within the code", "[os]")
{
	const auto offsets = [](std::span<const std::uint64_t> entries, std::size_t stride, std::size_t size) {
		std::vector<std::size_t> found;
		member_thunk::detail::os::entry_offsets reader(entries, stride, size);
		for (std::size_t offset = 0; reader.next(offset);)
			found.push_back(offset);
		return found;
	};
	// Bit i % 64 of word i / 64 is slot i; the slots between entries (the rest of a closure's code) are skipped.
	const std::array<std::uint64_t, 2> code{0b1011, std::uint64_t{1} << 63};
	CHECK(offsets(code, 32, 4096) == std::vector<std::size_t>{0, 32, 96, 127 * 32});
	// Entries at or past the end of the code are not read, nor anything after them.
	CHECK(offsets(code, 32, 127 * 32) == std::vector<std::size_t>{0, 32, 96});
	const std::array<std::uint64_t, 3> stubs{0, ~std::uint64_t{0} << 60, 1};
	CHECK(offsets(stubs, 16, 4096) == std::vector<std::size_t>{124 * 16, 125 * 16, 126 * 16, 127 * 16, 128 * 16});
	CHECK(offsets({}, 32, 4096).empty());
	CHECK(offsets(std::array<std::uint64_t, 2>{}, 32, 4096).empty());
}

TEST_CASE("os::reserve, make_writable, make_executable, decommit, unreserve", "[os]")
{
	const std::size_t page = os::page_size();
	void* base = nullptr;
	REQUIRE(os::reserve(os::region_size(), nullptr, base).ok());
	REQUIRE(base != nullptr);
	auto* const bytes = static_cast<unsigned char*>(base);
	CHECK(reinterpret_cast<std::uintptr_t>(base) % page == 0);
	CHECK(test::protection_of(bytes) == "---");

	REQUIRE(os::make_writable(bytes + page, page).ok());
	CHECK(test::protection_of(bytes + page) == "rw-");
	CHECK(test::protection_of(bytes) == "---"); // neighbours untouched
	std::memset(bytes + page, 0xAB, page);

	REQUIRE(os::make_executable(bytes + page, page).ok());
	CHECK(test::protection_of(bytes + page) == "r-x");
	CHECK(bytes[page] == 0xAB);
	REQUIRE(os::flush_instruction_cache(bytes + page, page).ok());
	const std::array<std::uint64_t, 1> entries{0b1111};
	REQUIRE(os::set_call_targets(bytes + page, page, entries, 32, true).ok());

	REQUIRE(os::decommit(bytes + page, page).ok());
	CHECK(test::protection_of(bytes + page) == "---");
	// Decommitted memory is gone: committing again gives fresh zeroed memory, not the old bytes.
	REQUIRE(os::make_writable(bytes + page, page).ok());
	CHECK(bytes[page] == 0);
	CHECK(bytes[2 * page - 1] == 0);

	REQUIRE(os::unreserve(base, os::region_size()).ok());
	CHECK_FALSE(test::any_mapping_in(reinterpret_cast<std::uintptr_t>(base),
	                                 reinterpret_cast<std::uintptr_t>(base) + os::region_size()));
}

TEST_CASE("os::protect gives committed memory no access, read-only or read-write access, never execution", "[os]")
{
	const std::size_t page = os::page_size();
	void* base = nullptr;
	REQUIRE(os::reserve(os::region_size(), nullptr, base).ok());
	auto* const bytes = static_cast<unsigned char*>(base);
	REQUIRE(os::make_writable(bytes, page).ok());
	bytes[0] = 42;
	REQUIRE(os::protect(bytes, page, member_thunk::detail::os::access::read).ok());
	CHECK(test::protection_of(bytes) == "r--");
	CHECK(bytes[0] == 42);
	REQUIRE(os::protect(bytes, page, member_thunk::detail::os::access::none).ok());
	CHECK(test::protection_of(bytes) == "---");
	REQUIRE(os::protect(bytes, page, member_thunk::detail::os::access::read_write).ok());
	CHECK(test::protection_of(bytes) == "rw-");
	CHECK(bytes[0] == 42); // the contents survive every change
	CHECK(os::unreserve(base, os::region_size()).ok());
}

TEST_CASE("os::probe_executable leaves the page inaccessible, never writable and executable", "[os]")
{
	const std::size_t page = os::page_size();
	void* base = nullptr;
	REQUIRE(os::reserve(os::region_size(), nullptr, base).ok());
	const auto status = os::probe_executable(base, page);
	CHECK(status.ok()); // this process may make memory executable (hardened.cpp tests a policy that refuses)
	CHECK_FALSE(status.is_policy_refusal());
	CHECK(test::protection_of(base) == "---");
	CHECK(test::writable_executable_mappings().empty());
	CHECK(os::unreserve(base, os::region_size()).ok());
}

namespace
{
	/// A page-aligned block of the program's read-only data to map again (the stub template is one).
	const std::byte* template_bytes()
	{
		return member_thunk::detail::arch::stubs::template_tables();
	}
} // namespace

#if defined(_WIN32)
TEST_CASE("os::Windows maps no copy of the program's code: map_image_code and map_sealed_copy fail clearly",
          "[os][windows]")
{
	void* base = nullptr;
	REQUIRE(os::reserve(os::region_size(), nullptr, base).ok());
	const auto image = os::map_image_code(base, os::page_size(), template_bytes());
	CHECK_FALSE(image.ok());
	CHECK(image.error().value() == ERROR_NOT_SUPPORTED);
	CHECK_THAT(std::string(image.reason()), Catch::Contains("image loader"));
	const auto sealed = os::map_sealed_copy(base, os::page_size(), template_bytes());
	CHECK_FALSE(sealed.ok());
	CHECK(sealed.error().value() == ERROR_NOT_SUPPORTED);
	CHECK(os::unreserve(base, os::region_size()).ok());
}
#else
TEST_CASE("os::map_image_code maps the program's own bytes read-execute, private, from its file", "[os]")
{
	const std::size_t size = member_thunk::detail::arch::stubs::table_size;
	void* base = nullptr;
	REQUIRE(os::reserve(2 * size, nullptr, base).ok());
	const auto status = os::map_image_code(base, size, template_bytes());
	REQUIRE(status.ok());
	CHECK(std::memcmp(base, template_bytes(), size) == 0);
	const auto maps = test::read_maps();
	const auto* const m = test::find_mapping(maps, base);
	REQUIRE(m != nullptr);
	CHECK(m->protection() == "r-x");
	CHECK_FALSE(m->shared);
	CHECK(m->name.find('/') == 0); // a file, the program's: prebuilt.cpp checks which
	// The rest of the reservation is untouched.
	CHECK(test::protection_in(maps, static_cast<std::byte*>(base) + size) == "---");
	CHECK(os::unreserve(base, 2 * size).ok());
}

TEST_CASE("os::map_image_code refuses bytes that no loaded file holds", "[os]")
{
	void* base = nullptr;
	REQUIRE(os::reserve(os::region_size(), nullptr, base).ok());
	std::vector<std::byte> heap_bytes(os::page_size());
	const auto status = os::map_image_code(base, os::page_size(), heap_bytes.data());
	CHECK_FALSE(status.ok());
	CHECK(std::string(status.call()) == "dl_iterate_phdr");
	CHECK(test::protection_of(base) == "---");
	CHECK(os::unreserve(base, os::region_size()).ok());
}

TEST_CASE("os::map_sealed_copy maps a sealed memfd read-execute, shared, that nothing can make writable", "[os]")
{
	const std::size_t size = 2 * member_thunk::detail::arch::stubs::table_size; // the size the library always maps
	void* base = nullptr;
	REQUIRE(os::reserve(size, nullptr, base).ok());
	REQUIRE(os::map_sealed_copy(base, size, template_bytes()).ok());
	CHECK(std::memcmp(base, template_bytes(), size) == 0);
	const auto maps = test::read_maps();
	const auto* const m = test::find_mapping(maps, base);
	REQUIRE(m != nullptr);
	CHECK(m->protection() == "r-x");
	CHECK(m->shared);
	CHECK(m->name.rfind("/memfd:member_thunk stubs", 0) == 0);
	// Sealed: the mapping cannot become writable (F_SEAL_WRITE refuses a shared writable mapping).
	CHECK(os::make_writable(base, os::page_size()).error().value() == EACCES);
	CHECK(test::protection_of(base) == "r-x");
	// The memfd is made once per process, for tables of one size.
	void* other = nullptr;
	REQUIRE(os::reserve(size, nullptr, other).ok());
	const auto wrong_size = os::map_sealed_copy(other, size / 2, template_bytes());
	CHECK_FALSE(wrong_size.ok());
	CHECK(wrong_size.error().value() == EINVAL);
	CHECK(os::unreserve(other, size).ok());
	CHECK(os::unreserve(base, size).ok());
}
#endif

TEST_CASE("os::a failure is never ok, even with error code 0", "[os]")
{
	using member_thunk::detail::os::result;
	using member_thunk::detail::os::unreported_error_category;
	for (const std::error_code zero : {std::error_code(), std::error_code(0, std::system_category())})
	{
		const result r = result::failure(zero, "the call");
		CHECK_FALSE(r.ok());
		CHECK(r.error());
		CHECK(r.error().value() == unreported_error_category::code);
		CHECK(&r.error().category() == &unreported_error_category::instance());
		CHECK_THAT(r.error().message(), Catch::Contains("without an error code"));
		CHECK(std::string(r.call()) == "the call");
	}
	CHECK(result::success().ok());
	CHECK_FALSE(result::success().error());
}

namespace
{
	/// Counts its lives and records the thread that ended each.
	struct per_thread_probe
	{
		static inline std::atomic<int> made{0};
		static inline std::atomic<int> destroyed{0};
		static inline std::thread::id destroyed_on{};

		per_thread_probe() noexcept { ++made; }
		per_thread_probe(const per_thread_probe&) = delete;
		per_thread_probe& operator=(const per_thread_probe&) = delete;
		per_thread_probe(per_thread_probe&&) = delete;
		per_thread_probe& operator=(per_thread_probe&&) = delete;
		~per_thread_probe()
		{
			destroyed_on = std::this_thread::get_id();
			++destroyed;
		}
	};
	using probe_per_thread = member_thunk::detail::os::per_thread<per_thread_probe>;

	[[nodiscard]] per_thread_probe* this_thread_probe()
	{
		per_thread_probe* p = nullptr;
		const auto status = probe_per_thread::get(p);
		return status.ok() ? p : nullptr;
	}
} // namespace

TEST_CASE("os::per_thread gives each thread its own object, destroyed on that thread when it ends", "[os]")
{
	per_thread_probe* const mine = this_thread_probe();
	REQUIRE(mine != nullptr);
	CHECK(this_thread_probe() == mine);
	const int made = per_thread_probe::made;
	const int destroyed = per_thread_probe::destroyed;
	const per_thread_probe* theirs = nullptr;
	bool same_twice = false;
	std::thread::id their_id;
	std::thread([&] {
		theirs = this_thread_probe();
		same_twice = this_thread_probe() == theirs;
		their_id = std::this_thread::get_id();
	}).join();
	CHECK(theirs != nullptr);
	CHECK(theirs != mine);
	CHECK(same_twice);
	CHECK(per_thread_probe::made == made + 1);
	CHECK(per_thread_probe::destroyed == destroyed + 1);
	CHECK(per_thread_probe::destroyed_on == their_id);
	CHECK(this_thread_probe() == mine);
}

#if defined(_WIN32)
TEST_CASE("os::regions are whole allocation-granularity units", "[os][windows]")
{
	SYSTEM_INFO info;
	::GetSystemInfo(&info);
	CHECK(os::region_size() == info.dwAllocationGranularity);
}

TEST_CASE("os::regions are reserved for CFG with no valid targets, pages sealed without touching them",
          "[os][windows][cfg]")
{
	void* base = nullptr;
	REQUIRE(os::reserve(os::region_size(), nullptr, base).ok());
	MEMORY_BASIC_INFORMATION region{};
	REQUIRE(::VirtualQuery(base, &region, sizeof region) == sizeof region);
	CHECK(region.State == MEM_RESERVE);
	CHECK(region.AllocationBase == base);
	// Reserved executable (with PAGE_TARGETS_INVALID), so that under CFG the region has a bitmap, which starts
	// empty. Only the protection itself is checked: wine does not report the PAGE_TARGETS_* flags back.
	CHECK((region.AllocationProtect & 0xFFU) == PAGE_EXECUTE_READ);
	CHECK(region.RegionSize == os::region_size());

	auto* const page = static_cast<unsigned char*>(base);
	REQUIRE(os::make_writable(page, os::page_size()).ok());
	REQUIRE(::VirtualQuery(page, &region, sizeof region) == sizeof region);
	CHECK(region.State == MEM_COMMIT);
	CHECK(region.Protect == PAGE_READWRITE);
	REQUIRE(os::make_executable(page, os::page_size()).ok());
	REQUIRE(::VirtualQuery(page, &region, sizeof region) == sizeof region);
	CHECK((region.Protect & 0xFFU) == PAGE_EXECUTE_READ);
	REQUIRE(os::unreserve(base, os::region_size()).ok());
}

TEST_CASE("os::failures report the call and the GetLastError code", "[os][windows]")
{
	// Reserved but never committed memory cannot be made executable: VirtualProtect fails with
	// ERROR_INVALID_ADDRESS.
	void* base = nullptr;
	REQUIRE(os::reserve(os::region_size(), nullptr, base).ok());
	const auto status = os::make_executable(base, os::page_size());
	CHECK_FALSE(status.ok());
	CHECK(status.error().value() == ERROR_INVALID_ADDRESS);
	CHECK(status.error().category() == std::system_category());
	CHECK(std::string(status.call()) == "VirtualProtect(PAGE_EXECUTE_READ|PAGE_TARGETS_NO_UPDATE)");
	CHECK(status.reason() == nullptr);
	REQUIRE(os::unreserve(base, os::region_size()).ok());
}

TEST_CASE("os::a refused address hint is retried anywhere", "[os][windows]")
{
	void* taken = nullptr;
	REQUIRE(os::reserve(os::region_size(), nullptr, taken).ok());
	void* other = nullptr;
	REQUIRE(os::reserve(os::region_size(), taken, other).ok()); // the hint is in use: VirtualAlloc refuses it
	CHECK(other != nullptr);
	CHECK(other != taken);
	REQUIRE(os::unreserve(other, os::region_size()).ok());
	REQUIRE(os::unreserve(taken, os::region_size()).ok());
}

TEST_CASE("os::Control Flow Guard is detected the way the process reports it", "[os][windows][cfg]")
{
	PROCESS_MITIGATION_CONTROL_FLOW_GUARD_POLICY policy{};
	const bool queried =
	    ::GetProcessMitigationPolicy(::GetCurrentProcess(), ProcessControlFlowGuardPolicy, &policy, sizeof policy) != 0;
	CHECK(os::cfg_enforced() == (queried && policy.EnableControlFlowGuard != 0));
	if (!os::cfg_enforced())
	{
		// Nothing to register: the call succeeds without touching the (absent) bitmap, even for memory that is not
		// executable.
		std::vector<unsigned char> not_code(4096);
		const std::array<std::uint64_t, 1> entries{0b1111};
		CHECK(os::set_call_targets(not_code.data(), not_code.size(), entries, 32, true).ok());
	}
}

namespace
{
	struct recorded_call_targets
	{
		static inline std::vector<std::vector<CFG_CALL_TARGET_INFO>> batches;
		static inline void* page = nullptr;
		static inline SIZE_T size = 0;
		static inline bool fail = false;
		/// The call (counted from 1, with the ones recorded in `batches`) that fails, if not 0.
		static inline std::size_t fail_call = 0;

		static BOOL WINAPI set(HANDLE process, PVOID address, SIZE_T length, ULONG count, PCFG_CALL_TARGET_INFO targets)
		{
			if (process != ::GetCurrentProcess() || address != page || length != size)
				return FALSE;
			batches.emplace_back(targets, targets + count);
			if (fail || batches.size() == fail_call)
			{
				::SetLastError(ERROR_ACCESS_DENIED);
				return FALSE;
			}
			return TRUE;
		}
	};
} // namespace

namespace
{
	/// The bitmask of the slots of `slots` for which `is_entry(i)` holds, as set_call_targets takes it.
	template<std::size_t Words, class Predicate>
	[[nodiscard]] std::array<std::uint64_t, Words> entry_mask(std::size_t slots, Predicate is_entry)
	{
		std::array<std::uint64_t, Words> mask{};
		for (std::size_t i = 0; i < slots; ++i)
			if (is_entry(i))
				mask.at(i / 64) |= std::uint64_t{1} << (i % 64);
		return mask;
	}

	[[nodiscard]] std::vector<std::size_t> offsets_of(const std::vector<CFG_CALL_TARGET_INFO>& batch)
	{
		std::vector<std::size_t> offsets;
		for (const auto& target : batch)
			offsets.push_back(target.Offset);
		return offsets;
	}
} // namespace

TEST_CASE("os::with CFG enforced, exactly the entries are registered, in ascending, aligned batches",
          "[os][windows][cfg]")
{
	recorded_call_targets::batches.clear();
	recorded_call_targets::fail = false;
	alignas(4096) static unsigned char page[4096];
	recorded_call_targets::page = page;
	recorded_call_targets::size = sizeof page;
	// Slots of 16 bytes (stubs), every fourth one not an entry (the middle of some code): 192 entries, three
	// batches. The mask's fifth word would be past the page: ignored.
	constexpr std::size_t stride = 16;
	auto entries = entry_mask<5>(256, [](std::size_t i) { return i % 4 != 1; });
	entries[4] = ~std::uint64_t{0};
	std::vector<std::size_t> expected;
	for (std::size_t i = 0; i < 256; ++i)
		if (i % 4 != 1)
			expected.push_back(i * stride);
	REQUIRE(os::set_call_targets_with(recorded_call_targets::set, page, sizeof page, entries, stride, true).ok());
	REQUIRE(recorded_call_targets::batches.size() == 3);
	std::vector<std::size_t> registered;
	for (const auto& batch : recorded_call_targets::batches)
	{
		CHECK(batch.size() == 64);
		for (const auto& target : batch)
		{
			CHECK(target.Offset % 16 == 0);
			CHECK(target.Flags == CFG_CALL_TARGET_VALID);
			registered.push_back(target.Offset);
		}
	}
	CHECK(registered == expected);

	// Withdrawn before the page is freed: the same offsets, flagged invalid. Slots of 32 bytes (code), the second
	// slot of a closure of two left out.
	recorded_call_targets::batches.clear();
	const std::array<std::uint64_t, 2> code_entries{0b1011, std::uint64_t{1} << 63};
	REQUIRE(os::set_call_targets_with(recorded_call_targets::set, page, sizeof page, code_entries, 32, false).ok());
	REQUIRE(recorded_call_targets::batches.size() == 1);
	CHECK(offsets_of(recorded_call_targets::batches[0]) == std::vector<std::size_t>{0, 32, 96, 127 * 32});
	for (const auto& target : recorded_call_targets::batches[0])
		CHECK(target.Flags == 0);

	// No entries, no call.
	recorded_call_targets::batches.clear();
	const std::array<std::uint64_t, 2> none{};
	REQUIRE(os::set_call_targets_with(recorded_call_targets::set, page, sizeof page, none, 32, true).ok());
	REQUIRE(os::set_call_targets_with(recorded_call_targets::set, page, sizeof page, {}, 32, true).ok());
	CHECK(recorded_call_targets::batches.empty());
}

TEST_CASE("os::with CFG enforced, a missing or failing SetProcessValidCallTargets is an error", "[os][windows][cfg]")
{
	alignas(4096) static unsigned char page[4096];
	const std::array<std::uint64_t, 1> one{1};
	const auto missing = os::set_call_targets_with(nullptr, page, sizeof page, one, 32, true);
	CHECK_FALSE(missing.ok());
	CHECK(missing.error().value() == ERROR_PROC_NOT_FOUND);
	CHECK(std::string(missing.call()) == "GetProcAddress(SetProcessValidCallTargets)");
	REQUIRE(missing.reason() != nullptr);
	CHECK_THAT(std::string(missing.reason()), Catch::Contains("Control Flow Guard"));

	recorded_call_targets::batches.clear();
	recorded_call_targets::fail = true;
	recorded_call_targets::page = page;
	recorded_call_targets::size = sizeof page;
	const auto failed = os::set_call_targets_with(recorded_call_targets::set, page, sizeof page, one, 32, true);
	recorded_call_targets::fail = false;
	CHECK_FALSE(failed.ok());
	CHECK(failed.error().value() == ERROR_ACCESS_DENIED);
	CHECK(std::string(failed.call()) == "SetProcessValidCallTargets");
}

TEST_CASE("os::with CFG enforced, a registration that fails part-way withdraws exactly the entries it had marked",
          "[os][windows][cfg]")
{
	alignas(4096) static unsigned char page[4096];
	recorded_call_targets::batches.clear();
	recorded_call_targets::fail = false;
	recorded_call_targets::fail_call = 2; // the first batch is marked valid, the second is refused
	recorded_call_targets::page = page;
	recorded_call_targets::size = sizeof page;
	// 128 slots of 32 bytes, every third one the second slot of a closure: 86 entries, two batches (64 and 22).
	constexpr std::size_t stride = 32;
	const auto entries = entry_mask<2>(128, [](std::size_t i) { return i % 3 != 2; });
	const auto failed = os::set_call_targets_with(recorded_call_targets::set, page, sizeof page, entries, stride, true);
	recorded_call_targets::fail_call = 0;
	CHECK_FALSE(failed.ok());
	CHECK(failed.error().value() == ERROR_ACCESS_DENIED);
	CHECK(std::string(failed.call()) == "SetProcessValidCallTargets");
	// Marked valid, refused, then the first batch's entries marked invalid again, and nothing else.
	REQUIRE(recorded_call_targets::batches.size() == 3);
	const auto& marked = recorded_call_targets::batches[0];
	const auto& withdrawn = recorded_call_targets::batches[2];
	REQUIRE(marked.size() == 64);
	CHECK(recorded_call_targets::batches[1].size() == 86 - 64);
	std::vector<std::size_t> first_entries;
	for (std::size_t i = 0; first_entries.size() < 64; ++i)
		if (i % 3 != 2)
			first_entries.push_back(i * stride);
	CHECK(offsets_of(marked) == first_entries);
	CHECK(offsets_of(withdrawn) == first_entries);
	for (const auto& target : marked)
		CHECK(target.Flags == CFG_CALL_TARGET_VALID);
	for (const auto& target : withdrawn)
		CHECK(target.Flags == 0);
}

namespace
{
	/// Records, in the order they happen, the ends of a thread's objects: its thread_local object (which uses the
	/// thread's per-thread object once more in its destructor) and its per-thread object (which asks for itself again
	/// in its destructor, when the thread has retired it).
	struct exit_order
	{
		static inline std::vector<std::string> events;
		static inline bool late_get_ok = false;
		static inline const void* late_get = nullptr;
	};

	struct ordered_object
	{
		ordered_object() noexcept = default;
		ordered_object(const ordered_object&) = delete;
		ordered_object& operator=(const ordered_object&) = delete;
		ordered_object(ordered_object&&) = delete;
		ordered_object& operator=(ordered_object&&) = delete;
		~ordered_object();
	};
	using ordered_per_thread = member_thunk::detail::os::per_thread<ordered_object>;

	ordered_object::~ordered_object()
	{
		exit_order::events.emplace_back("per-thread object destroyed");
		ordered_object* again = this;
		exit_order::late_get_ok = ordered_per_thread::get(again).ok();
		exit_order::late_get = again;
	}

	struct uses_per_thread_at_exit
	{
		uses_per_thread_at_exit() = default;
		uses_per_thread_at_exit(const uses_per_thread_at_exit&) = delete;
		uses_per_thread_at_exit& operator=(const uses_per_thread_at_exit&) = delete;
		uses_per_thread_at_exit(uses_per_thread_at_exit&&) = delete;
		uses_per_thread_at_exit& operator=(uses_per_thread_at_exit&&) = delete;
		~uses_per_thread_at_exit()
		{
			ordered_object* o = nullptr;
			const bool ok = ordered_per_thread::get(o).ok();
			exit_order::events.emplace_back(ok && o != nullptr ? "thread_local destroyed, per-thread object alive"
			                                                   : "thread_local destroyed, per-thread object gone");
		}
	};

	void use_both()
	{
		thread_local uses_per_thread_at_exit user;
		static_cast<void>(user);
		ordered_object* o = nullptr;
		static_cast<void>(ordered_per_thread::get(o));
	}

	DWORD WINAPI use_both_on_win32_thread(void*)
	{
		use_both();
		return 0;
	}

	void check_exit_order()
	{
		REQUIRE(exit_order::events.size() == 2);
		CHECK(exit_order::events[0] == "thread_local destroyed, per-thread object alive");
		CHECK(exit_order::events[1] == "per-thread object destroyed");
		// Asked for again in its own destructor: retired, so no new object.
		CHECK(exit_order::late_get_ok);
		CHECK(exit_order::late_get == nullptr);
	}

	struct fiber_context
	{
		void* primary = nullptr;
		ordered_object* made = nullptr;
	};

	void WINAPI make_on_fiber(void* parameter)
	{
		auto& context = *static_cast<fiber_context*>(parameter);
		static_cast<void>(ordered_per_thread::get(context.made));
		::SwitchToFiber(context.primary);
	}
} // namespace

TEST_CASE("os::per_thread objects end after the thread's thread_local objects, then stay retired",
          "[os][windows][threads]")
{
	SECTION("a std::thread (thread_local destructors run before the thread function returns)")
	{
		exit_order::events.clear();
		std::thread(use_both).join();
		check_exit_order();
	}
	SECTION("a CreateThread thread (thread_local destructors run in winpthreads' PE TLS callback)")
	{
		exit_order::events.clear();
		HANDLE thread = ::CreateThread(nullptr, 0, &use_both_on_win32_thread, nullptr, 0, nullptr);
		REQUIRE(thread != nullptr);
		REQUIRE(::WaitForSingleObject(thread, INFINITE) == WAIT_OBJECT_0);
		::CloseHandle(thread);
		check_exit_order();
	}
}

TEST_CASE("os::per_thread objects belong to the thread, not to the fiber that made them", "[os][windows][threads]")
{
	exit_order::events.clear();
	bool converted = false;
	const ordered_object* made = nullptr;
	const ordered_object* after = nullptr;
	std::size_t events_while_running = 0;
	std::thread([&] {
		fiber_context context;
		context.primary = ::ConvertThreadToFiber(nullptr);
		void* const fiber = context.primary != nullptr ? ::CreateFiber(0, &make_on_fiber, &context) : nullptr;
		if (fiber == nullptr)
			return;
		converted = true;
		::SwitchToFiber(fiber);
		::DeleteFiber(fiber);
		made = context.made;
		ordered_object* o = nullptr;
		static_cast<void>(ordered_per_thread::get(o));
		after = o;
		events_while_running = exit_order::events.size();
		::ConvertFiberToThread();
	}).join();
	REQUIRE(converted);
	CHECK(made != nullptr);
	CHECK(after == made);
	CHECK(events_while_running == 0); // not destroyed with the fiber
	REQUIRE(exit_order::events.size() == 1);
	CHECK(exit_order::events[0] == "per-thread object destroyed");
}
#else
TEST_CASE("os::failures report the call and errno", "[os]")
{
	// An unaligned address makes mprotect fail with EINVAL.
	void* base = nullptr;
	REQUIRE(os::reserve(os::region_size(), nullptr, base).ok());
	const auto status = os::make_writable(static_cast<char*>(base) + 1, os::page_size());
	CHECK_FALSE(status.ok());
	CHECK(status.error().value() == EINVAL);
	CHECK(std::string(status.call()) == "mprotect(PROT_READ|PROT_WRITE)");
	REQUIRE(os::unreserve(base, os::region_size()).ok());
}
#endif
