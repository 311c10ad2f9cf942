# Toolchain: Linux AArch64 with Debian's g++-aarch64-linux-gnu; binaries run under qemu-user.
#
# The emulator is `qemu-aarch64 -L /usr/aarch64-linux-gnu` (the cross libraries); the test presets choose the CPU
# and the page size with QEMU_CPU and QEMU_PAGESIZE in the environment, so one build runs with 4, 16 and 64 KiB
# pages (test discovery at build time runs with qemu's defaults). The emulator command also tells the tests that
# qemu-user runs them (MEMBER_THUNK_TEST_EMULATOR): its /proc/self/maps is inexact, so tests/support/maps.hpp asks
# qemu for a page's protection instead.
# Header-only dependencies (GSL, Catch2, RapidCheck's headers) come from /usr/include, which Debian's cross
# compilers search after their own; RapidCheck's arm64 library from multiarch (librapidcheck-dev:arm64).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_CROSSCOMPILING_EMULATOR env MEMBER_THUNK_TEST_EMULATOR=qemu-user qemu-aarch64 -L /usr/aarch64-linux-gnu)

# Branch protection (BTI landing pads, PAC return signing) in everything built here, as a hardened distribution
# builds. (Debian's start files carry no BTI note, so the executables themselves are not marked BTI; the thunk
# pages are guarded regardless: the library maps them with PROT_BTI whenever the CPU has BTI.)
set(CMAKE_CXX_FLAGS_INIT "-mbranch-protection=standard")

set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)
