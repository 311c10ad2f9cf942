// member_thunk: the prebuilt stubs of i386 (cdecl), as GNU assembler (AT&T syntax). Included by stub_tables.hpp only,
// which defines the section macros and documents the layout.
//
// i386 has no PC-relative data addressing, so a stub passes its offset in its chunk and the chunk's tail finds the
// data slot from its own address, taken with a call/ret pair that returns (a shadow stack sees a balanced pair):
//   stub (16 bytes):  endbr32; mov eax, offset; jmp tail (rel32 forced); int3; int3
//   tail:             call pc; pc_return: lea eax, [eax + ecx + data - pc_return]   (ecx = pc_return)
//                     mov ecx, [eax]; mov [esp+4], ecx                              the first argument <- bound
//                     jmp [eax+4]                                                    to the target
//   pc:               mov ecx, [esp]; ret
// eax and ecx are scratch in cdecl and carry no argument of a default-convention callback. There are no closures on
// i386 (every argument is on the stack): the closure tables are traps.
#pragma once

// One chunk's header; `data` is where the chunk's data slots start, as an expression the assembler can resolve
// relative to label 1 (the return address of the call).
#define MEMBER_THUNK_DETAIL_X86_TAIL(data)                                                          \
	"0: call 2f\n1: leal " data " - 1b(%eax,%ecx), %eax\n movl (%eax), %ecx\n movl %ecx, 4(%esp)\n" \
	" jmpl *4(%eax)\n2: movl (%esp), %ecx\n ret\n .balign 64, 0xcc\n"

// The 252 stubs of a chunk.
#define MEMBER_THUNK_DETAIL_X86_STUBS                                                                       \
	".set member_thunk_stub_offset_v1, 64\n.rept 252\n endbr32\n movl $member_thunk_stub_offset_v1, %eax\n" \
	" .byte 0xe9\n .long 0b - . - 4\n int3\n int3\n"                                                        \
	".set member_thunk_stub_offset_v1, member_thunk_stub_offset_v1 + 16\n.endr\n"

__asm__(MEMBER_THUNK_DETAIL_TEMPLATE_SECTION ".balign " MEMBER_THUNK_DETAIL_TEMPLATE_ALIGNMENT
                                             "\n" MEMBER_THUNK_DETAIL_STUB_SYMBOL("member_thunk_stub_template_v1")
        // Thunk table: a chunk's data is 2 tables after the chunk (label 0), which is 1b - 5.
        ".rept " MEMBER_THUNK_DETAIL_STUB_TABLE_STR
        "/4096\n" MEMBER_THUNK_DETAIL_X86_TAIL("1b - 5 + 2*" MEMBER_THUNK_DETAIL_STUB_TABLE_STR)
            MEMBER_THUNK_DETAIL_X86_STUBS
        ".endr\n"
        ".fill " MEMBER_THUNK_DETAIL_STUB_TABLE_STR ", 1, 0xcc\n" // closure table: traps
        MEMBER_THUNK_DETAIL_POP_SECTION MEMBER_THUNK_DETAIL_POOL_CODE_SECTION
        ".balign 4096\n" MEMBER_THUNK_DETAIL_STUB_SYMBOL(
            "member_thunk_stub_pool_v1") ".set member_thunk_stub_chunk_v1, 0\n"
                                         ".rept " MEMBER_THUNK_DETAIL_STUB_POOL_STR
                                         "/4096\n" MEMBER_THUNK_DETAIL_X86_TAIL(
                                             "member_thunk_stub_pool_data_v1 + member_thunk_stub_chunk_v1")
                                             MEMBER_THUNK_DETAIL_X86_STUBS
        ".set member_thunk_stub_chunk_v1, member_thunk_stub_chunk_v1 + 4096\n"
        ".endr\n"
        ".fill " MEMBER_THUNK_DETAIL_STUB_POOL_STR ", 1, 0xcc\n" // closure table: traps
        MEMBER_THUNK_DETAIL_POP_SECTION MEMBER_THUNK_DETAIL_TRAP_SECTION
        ".balign 16\n" MEMBER_THUNK_DETAIL_STUB_FUNCTION(
            "member_thunk_stub_trap_v1") "endbr32\n int3\n ud2\n" MEMBER_THUNK_DETAIL_POP_SECTION
            MEMBER_THUNK_DETAIL_POOL_DATA_SECTION ".balign 4096\n" MEMBER_THUNK_DETAIL_STUB_SYMBOL(
                "member_thunk_stub_pool_data_v1") ".zero " MEMBER_THUNK_DETAIL_STUB_POOL_STR
                                                  "\n" MEMBER_THUNK_DETAIL_POP_SECTION);
