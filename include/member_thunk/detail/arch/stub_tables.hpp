// member_thunk: prebuilt stubs, the code of thunks that are never written at run time.
//
// A prebuilt thunk is a fixed stub plus a 16-byte data slot {bound, target}: the stub finds its slot PC-relatively,
// puts `bound` where the callback's first argument travels (a thunk) or in front of the arguments (a closure), and
// jumps to `target`. Making a thunk is writing two words; no code is written, so it works where the OS forbids making
// memory executable (prctl(PR_SET_MDWE), systemd's MemoryDenyWriteExecute, SELinux, Windows ACG).
//
// The stubs are emitted into the user's program by file-scope assembly (stubs_<arch>.hpp), once however many
// translation units include this header (COMDAT groups on ELF, .linkonce on PE):
//
//   template   2 tables of table_size bytes, in read-only data: thunk stubs, then closure stubs. Each stub reaches its
//              data slot at a constant distance: the thunk table's stub i at +2*table_size, the closure table's at
//              +table_size. A region of prebuilt thunks maps (or copies) the template at its start, followed by its
//              data pages: [thunk stubs][closure stubs][data]. The template itself is never executed where it is.
//   pool       the same two tables in the program's code, reaching a data array in .bss: stubs that are part of the
//              image, for when no copy of the template can be mapped (Windows ACG; Linux without a mappable file).
//   trap       the target of every empty data slot: a landing pad followed by a trap instruction.
//
// Tables are cut into chunks of chunk_size bytes; the first header_slots slots of each chunk hold the code the stubs
// of that chunk share (or traps), so slot j of a chunk is a stub only for j >= header_slots.
#pragma once

#include "../config.hpp"

#include <array>
#include <cstddef>
#include <cstdint>

// The size of the image pool, in stub tables (MEMBER_THUNK_IMAGE_POOL_TABLES, default 1: 1008 thunks on x86,
// 4032 on AArch64). Define it the same way in every translation unit.
#ifndef MEMBER_THUNK_IMAGE_POOL_TABLES
#define MEMBER_THUNK_IMAGE_POOL_TABLES 1
#endif
#if MEMBER_THUNK_IMAGE_POOL_TABLES < 1 || MEMBER_THUNK_IMAGE_POOL_TABLES > 64
#error "MEMBER_THUNK_IMAGE_POOL_TABLES must be between 1 and 64"
#endif

// The size of one table, a multiple of every page size the architecture's systems use: 16 KiB on x86 (4 KiB pages),
// 64 KiB on AArch64 (4, 16 or 64 KiB pages). A string for the assembly and a number for C++.
#if defined(MEMBER_THUNK_ARCH_AARCH64)
#define MEMBER_THUNK_DETAIL_STUB_TABLE 65536
#else
#define MEMBER_THUNK_DETAIL_STUB_TABLE 16384
#endif

#define MEMBER_THUNK_DETAIL_STR2(x) #x
#define MEMBER_THUNK_DETAIL_STR(x) MEMBER_THUNK_DETAIL_STR2(x)
#define MEMBER_THUNK_DETAIL_STUB_TABLE_STR MEMBER_THUNK_DETAIL_STR(MEMBER_THUNK_DETAIL_STUB_TABLE)
#define MEMBER_THUNK_DETAIL_STUB_POOL_STR \
	MEMBER_THUNK_DETAIL_STR(MEMBER_THUNK_IMAGE_POOL_TABLES) "*" MEMBER_THUNK_DETAIL_STR(MEMBER_THUNK_DETAIL_STUB_TABLE)

// Sections, by object format. ELF: COMDAT groups (one copy per link), hidden symbols (one copy per shared object).
// PE: .linkonce discard sections. The template goes with read-only data, the pool with code, its data with .bss.
#if defined(__ELF__)
#define MEMBER_THUNK_DETAIL_STUB_SYMBOL(name) ".weak " name "\n.hidden " name "\n.type " name ",@object\n" name ":\n"
#define MEMBER_THUNK_DETAIL_STUB_FUNCTION(name) \
	".weak " name "\n.hidden " name "\n.type " name ",@function\n" name ":\n"
#define MEMBER_THUNK_DETAIL_TEMPLATE_SECTION \
	".pushsection .rodata.member_thunk_stub_template_v1,\"aG\",@progbits,member_thunk_stub_template_v1,comdat\n"
#define MEMBER_THUNK_DETAIL_POOL_CODE_SECTION \
	".pushsection .text.member_thunk_stub_pool_v1,\"axG\",@progbits,member_thunk_stub_pool_v1,comdat\n"
#define MEMBER_THUNK_DETAIL_POOL_DATA_SECTION \
	".pushsection .bss.member_thunk_stub_pool_v1,\"awG\",@nobits,member_thunk_stub_pool_v1,comdat\n"
#define MEMBER_THUNK_DETAIL_TRAP_SECTION \
	".pushsection .text.member_thunk_stub_trap_v1,\"axG\",@progbits,member_thunk_stub_trap_v1,comdat\n"
#define MEMBER_THUNK_DETAIL_POP_SECTION ".popsection\n"
// Mapped again from the program's file, so aligned to its own size (a multiple of every page size).
#define MEMBER_THUNK_DETAIL_TEMPLATE_ALIGNMENT MEMBER_THUNK_DETAIL_STUB_TABLE_STR
#elif defined(_WIN32)
#define MEMBER_THUNK_DETAIL_STUB_SYMBOL(name) ".globl " name "\n" name ":\n"
#define MEMBER_THUNK_DETAIL_STUB_FUNCTION(name) ".globl " name "\n" name ":\n"
// The PE assembler has no .pushsection: the compiler forgets which section it was in after a top-level asm statement
// and names the next one itself.
#define MEMBER_THUNK_DETAIL_TEMPLATE_SECTION ".section .rdata$member_thunk_stub_template_v1,\"dr\"\n.linkonce discard\n"
#define MEMBER_THUNK_DETAIL_POOL_CODE_SECTION ".section .text$member_thunk_stub_pool_v1,\"xr\"\n.linkonce discard\n"
#define MEMBER_THUNK_DETAIL_POOL_DATA_SECTION ".section .bss$member_thunk_stub_pool_v1,\"bw\"\n.linkonce discard\n"
// Every symbol starts its own section: the PE linker resolved a reference to a symbol at a non-zero offset of a
// .linkonce section to the wrong address.
#define MEMBER_THUNK_DETAIL_TRAP_SECTION ".section .text$member_thunk_stub_trap_v1,\"xr\"\n.linkonce discard\n"
#define MEMBER_THUNK_DETAIL_POP_SECTION ".text\n"
// Only ever copied on Windows (COFF cannot express an alignment beyond 8 KiB).
#define MEMBER_THUNK_DETAIL_TEMPLATE_ALIGNMENT "4096"
#else
#error "member_thunk: prebuilt stubs need an ELF or PE toolchain (GNU assembler syntax)"
#endif

#if defined(MEMBER_THUNK_ARCH_X86_64)
#include "stubs_x86_64.hpp"
#elif defined(MEMBER_THUNK_ARCH_X86_32)
#include "stubs_x86_32.hpp"
#elif defined(MEMBER_THUNK_ARCH_AARCH64)
#include "stubs_aarch64.hpp"
#endif

extern "C"
{
	// Declared here, defined by the assembly above. Arrays of unknown bound: only their addresses are used.
	extern const unsigned char member_thunk_stub_template_v1[];
	extern const unsigned char member_thunk_stub_pool_v1[];
	// The pool's data slots: written by the library (never executable), so not const.
	extern unsigned char member_thunk_stub_pool_data_v1[]; // NOLINT(cppcoreguidelines-avoid-non-const-global-variables)
	void member_thunk_stub_trap_v1();
}

namespace member_thunk::detail::arch::stubs
{
	/// Bytes per data slot, and per stub.
	inline constexpr std::size_t slot_size = 16;
	/// Bytes per chunk of a table; the first header_slots slots of each hold shared code, not stubs.
	inline constexpr std::size_t chunk_size = 4096;
	inline constexpr std::size_t header_slots = 4;
	inline constexpr std::size_t slots_per_chunk = chunk_size / slot_size;
	/// Bytes per table (thunk table, closure table, data).
	inline constexpr std::size_t table_size = MEMBER_THUNK_DETAIL_STUB_TABLE;
	/// Bytes of the image pool's data (and of each of its tables).
	inline constexpr std::size_t pool_size = MEMBER_THUNK_IMAGE_POOL_TABLES * table_size;

	static_assert(table_size % chunk_size == 0);
	static_assert(slots_per_chunk > header_slots);

	/// Whether slot `index` (counted from the start of a table or of a data page) is a stub, not header code.
	[[nodiscard]] constexpr bool is_stub_slot(std::size_t index) noexcept
	{
		return index % slots_per_chunk >= header_slots;
	}

	/// The stubs of the template's two tables, as a bitmask of its slots (bit i % 64 of word i / 64 set: slot i is a
	/// stub), the form in which the OS back end registers call targets: a copy of the template registers its stubs
	/// and never its chunk headers, whose shared code the stubs reach by direct jumps only.
	inline constexpr auto template_stubs = [] {
		constexpr std::size_t slots = 2 * table_size / slot_size;
		std::array<std::uint64_t, (slots + 63) / 64> mask{};
		for (std::size_t i = 0; i < slots; ++i)
			if (is_stub_slot(i))
				mask[i / 64] |= std::uint64_t{1} << (i % 64);
		return mask;
	}();

	/// The template of the tables (2 * table_size bytes: thunk stubs, then closure stubs).
	[[nodiscard]] inline const std::byte* template_tables() noexcept
	{
		return reinterpret_cast<const std::byte*>(member_thunk_stub_template_v1);
	}

	/// The image pool: its thunk table (its closure table follows it) and its data.
	[[nodiscard]] inline const std::byte* pool_tables() noexcept
	{
		return reinterpret_cast<const std::byte*>(member_thunk_stub_pool_v1);
	}
	[[nodiscard]] inline std::byte* pool_data() noexcept
	{
		return reinterpret_cast<std::byte*>(member_thunk_stub_pool_data_v1);
	}

	/// The target of an empty slot: a call through it traps.
	[[nodiscard]] inline std::uintptr_t trap_target() noexcept
	{
		return reinterpret_cast<std::uintptr_t>(&member_thunk_stub_trap_v1);
	}
} // namespace member_thunk::detail::arch::stubs
