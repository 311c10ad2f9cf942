// member_thunk: the prebuilt stubs of x86-64 (System V and Windows x64), as GNU assembler (AT&T syntax). Included by
// stub_tables.hpp only, which defines the section macros and documents the layout.
//
// Thunk stub (16 bytes), chunk header: the shared tail
//   endbr64                          f3 0f 1e fa       CET IBT landing pad: stubs are reached by indirect calls
//   lea r11, [rip + data - 11]       4c 8d 1d <rel32>  r11 <- this stub's data slot {bound, target}
//   jmp tail                         e9 <rel32>        (rel32 forced: every stub is exactly 16 bytes)
// tail:
//   mov rdi|rcx, [r11]               the first argument <- bound
//   jmp [r11 + 8]                    an indirect jump to the target (a compiled trampoline: it has its landing pad)
//
// A closure stub is the same, with a tail that first moves each argument register one place up (System V: rdi..r8 to
// rsi..r9; Windows x64: rcx, rdx, r8 to rdx, r8, r9 and xmm0-2 to xmm1-3) and then puts `bound` in the first.
// r11 is scratch on both ABIs and carries no argument; rax (AL: vector-register count of variadic calls) is untouched.
#pragma once

#if defined(_WIN32)
#define MEMBER_THUNK_DETAIL_X64_FIRST "%rcx"
#define MEMBER_THUNK_DETAIL_X64_SHIFT                                                                \
	"movq %r8, %r9\n movq %rdx, %r8\n movq %rcx, %rdx\n movaps %xmm2, %xmm3\n movaps %xmm1, %xmm2\n" \
	"movaps %xmm0, %xmm1\n"
#else
#define MEMBER_THUNK_DETAIL_X64_FIRST "%rdi"
#define MEMBER_THUNK_DETAIL_X64_SHIFT \
	"movq %r8, %r9\n movq %rcx, %r8\n movq %rdx, %rcx\n movq %rsi, %rdx\n movq %rdi, %rsi\n"
#endif

// One chunk's header: the tail its stubs jump to (label 0), padded with int3 to header_slots slots (64 bytes).
#define MEMBER_THUNK_DETAIL_X64_THUNK_TAIL \
	"0: movq (%r11), " MEMBER_THUNK_DETAIL_X64_FIRST "\n jmpq *8(%r11)\n .balign 64, 0xcc\n"
#define MEMBER_THUNK_DETAIL_X64_CLOSURE_TAIL                                                                \
	"0: " MEMBER_THUNK_DETAIL_X64_SHIFT " movq (%r11), " MEMBER_THUNK_DETAIL_X64_FIRST "\n jmpq *8(%r11)\n" \
	" .balign 64, 0xcc\n"

// A stub whose data slot is `data` (an expression of the assembler), then its forced rel32 jump to the chunk's tail.
#define MEMBER_THUNK_DETAIL_X64_STUB(data) "endbr64\n leaq " data "(%rip), %r11\n .byte 0xe9\n .long 0b - . - 4\n"

// A template table: each stub's data slot is `distance` bytes after the stub.
#define MEMBER_THUNK_DETAIL_X64_TEMPLATE_TABLE(tail, distance) \
	".rept " MEMBER_THUNK_DETAIL_STUB_TABLE_STR "/4096\n" tail \
	".rept 252\n" MEMBER_THUNK_DETAIL_X64_STUB(distance "-11") ".endr\n.endr\n"

// A pool table: stub i's data slot is member_thunk_stub_pool_data_v1 + (its offset in the table).
#define MEMBER_THUNK_DETAIL_X64_POOL_TABLE(tail)                                                             \
	".set member_thunk_stub_offset_v1, 0\n"                                                                  \
	".rept " MEMBER_THUNK_DETAIL_STUB_POOL_STR "/4096\n" tail                                                \
	".set member_thunk_stub_offset_v1, member_thunk_stub_offset_v1 + 64\n"                                   \
	".rept 252\n" MEMBER_THUNK_DETAIL_X64_STUB(                                                              \
	    "member_thunk_stub_pool_data_v1 + member_thunk_stub_offset_v1") ".set member_thunk_stub_offset_v1, " \
	                                                                    "member_thunk_stub_offset_v1 + 16\n" \
	                                                                    ".endr\n.endr\n"

__asm__(MEMBER_THUNK_DETAIL_TEMPLATE_SECTION
        ".balign " MEMBER_THUNK_DETAIL_TEMPLATE_ALIGNMENT
        "\n" MEMBER_THUNK_DETAIL_STUB_SYMBOL("member_thunk_stub_template_v1")
            MEMBER_THUNK_DETAIL_X64_TEMPLATE_TABLE(MEMBER_THUNK_DETAIL_X64_THUNK_TAIL,
                                                   "2*" MEMBER_THUNK_DETAIL_STUB_TABLE_STR)
                MEMBER_THUNK_DETAIL_X64_TEMPLATE_TABLE(MEMBER_THUNK_DETAIL_X64_CLOSURE_TAIL,
                                                       MEMBER_THUNK_DETAIL_STUB_TABLE_STR)
                    MEMBER_THUNK_DETAIL_POP_SECTION
                        // The pool; the trap every empty slot points to.
                        MEMBER_THUNK_DETAIL_POOL_CODE_SECTION
        ".balign 4096\n" MEMBER_THUNK_DETAIL_STUB_SYMBOL("member_thunk_stub_pool_v1")
            MEMBER_THUNK_DETAIL_X64_POOL_TABLE(MEMBER_THUNK_DETAIL_X64_THUNK_TAIL)
                MEMBER_THUNK_DETAIL_X64_POOL_TABLE(MEMBER_THUNK_DETAIL_X64_CLOSURE_TAIL)
                    MEMBER_THUNK_DETAIL_POP_SECTION MEMBER_THUNK_DETAIL_TRAP_SECTION
        ".balign 16\n" MEMBER_THUNK_DETAIL_STUB_FUNCTION(
            "member_thunk_stub_trap_v1") "endbr64\n int3\n ud2\n" MEMBER_THUNK_DETAIL_POP_SECTION
            MEMBER_THUNK_DETAIL_POOL_DATA_SECTION ".balign 4096\n" MEMBER_THUNK_DETAIL_STUB_SYMBOL(
                "member_thunk_stub_pool_data_v1") ".zero " MEMBER_THUNK_DETAIL_STUB_POOL_STR
                                                  "\n" MEMBER_THUNK_DETAIL_POP_SECTION);
