// member_thunk: the prebuilt stubs of AArch64 (AAPCS64), as GNU assembler. Included by stub_tables.hpp only, which
// defines the section macros and documents the layout.
//
// Template thunk stub (16 bytes, no shared tail):
//   bti c                          BTI landing pad (the stub pages are mapped PROT_BTI where the CPU has BTI)
//   ldr x0, [pc + data]            the first argument <- bound
//   ldr x16, [pc + data + 8]       IP0 <- target; x16/x17 are the registers a guarded target accepts from `br`
//   br x16
// Closure stub: bti c; adr x17, data; b tail; brk, with the tail: x1..x7 <- x0..x6, ldr x0, [x17];
// ldr x16, [x17, #8]; br x16. Pool stubs reach their data with adrp/add (the pool's data may lie far from its code)
// and share a tail. x8 (indirect result) and x18 (platform register) are never touched.
#pragma once

#define MEMBER_THUNK_DETAIL_A64_BRK(n) ".rept " #n "\n brk #0xf000\n.endr\n"
#define MEMBER_THUNK_DETAIL_A64_LOAD_AND_BRANCH "ldr x0, [x17]\n ldr x16, [x17, #8]\n br x16\n"
#define MEMBER_THUNK_DETAIL_A64_CLOSURE_TAIL                                                    \
	"0: mov x7, x6\n mov x6, x5\n mov x5, x4\n mov x4, x3\n mov x3, x2\n mov x2, x1\n mov x1, " \
	"x0\n" MEMBER_THUNK_DETAIL_A64_LOAD_AND_BRANCH MEMBER_THUNK_DETAIL_A64_BRK(6)
#define MEMBER_THUNK_DETAIL_A64_THUNK_TAIL "0: " MEMBER_THUNK_DETAIL_A64_LOAD_AND_BRANCH MEMBER_THUNK_DETAIL_A64_BRK(13)

// Pool stubs of one table: stub i's data slot is member_thunk_stub_pool_data_v1 + (its offset in the table).
#define MEMBER_THUNK_DETAIL_A64_POOL_TABLE(tail)                                                   \
	".set member_thunk_stub_offset_v1, 0\n"                                                        \
	".rept " MEMBER_THUNK_DETAIL_STUB_POOL_STR "/4096\n" tail                                      \
	".set member_thunk_stub_offset_v1, member_thunk_stub_offset_v1 + 64\n"                         \
	".rept 252\n bti c\n adrp x17, member_thunk_stub_pool_data_v1 + member_thunk_stub_offset_v1\n" \
	" add x17, x17, :lo12:member_thunk_stub_pool_data_v1 + member_thunk_stub_offset_v1\n b 0b\n"   \
	".set member_thunk_stub_offset_v1, member_thunk_stub_offset_v1 + 16\n.endr\n.endr\n"

__asm__(MEMBER_THUNK_DETAIL_TEMPLATE_SECTION ".balign " MEMBER_THUNK_DETAIL_TEMPLATE_ALIGNMENT
                                             "\n" MEMBER_THUNK_DETAIL_STUB_SYMBOL("member_thunk_stub_template_v1")
        // Thunk table: data two tables on.
        ".rept " MEMBER_THUNK_DETAIL_STUB_TABLE_STR "/4096\n" MEMBER_THUNK_DETAIL_A64_BRK(
            16) ".rept 252\n bti c\n ldr x0, . + 2*" MEMBER_THUNK_DETAIL_STUB_TABLE_STR " - 4\n"
                " ldr x16, . + 2*" MEMBER_THUNK_DETAIL_STUB_TABLE_STR "\n br x16\n.endr\n.endr\n"
                // Closure table: data one table on.
                ".rept " MEMBER_THUNK_DETAIL_STUB_TABLE_STR "/4096\n" MEMBER_THUNK_DETAIL_A64_CLOSURE_TAIL
                ".rept 252\n bti c\n adr x17, . + " MEMBER_THUNK_DETAIL_STUB_TABLE_STR " - 4\n b 0b\n brk #0xf000\n"
                ".endr\n.endr\n" MEMBER_THUNK_DETAIL_POP_SECTION MEMBER_THUNK_DETAIL_POOL_CODE_SECTION
                ".balign 4096\n" MEMBER_THUNK_DETAIL_STUB_SYMBOL("member_thunk_stub_pool_v1")
                    MEMBER_THUNK_DETAIL_A64_POOL_TABLE(MEMBER_THUNK_DETAIL_A64_THUNK_TAIL)
                        MEMBER_THUNK_DETAIL_A64_POOL_TABLE(MEMBER_THUNK_DETAIL_A64_CLOSURE_TAIL)
                            MEMBER_THUNK_DETAIL_POP_SECTION MEMBER_THUNK_DETAIL_TRAP_SECTION
        ".balign 16\n" MEMBER_THUNK_DETAIL_STUB_FUNCTION(
            "member_thunk_stub_trap_v1") "bti c\n brk #0xf000\n" MEMBER_THUNK_DETAIL_POP_SECTION
            MEMBER_THUNK_DETAIL_POOL_DATA_SECTION ".balign 65536\n" MEMBER_THUNK_DETAIL_STUB_SYMBOL(
                "member_thunk_stub_pool_data_v1") ".zero " MEMBER_THUNK_DETAIL_STUB_POOL_STR
                                                  "\n" MEMBER_THUNK_DETAIL_POP_SECTION);
