# Toolchain: Linux i386 with Debian's g++-i686-linux-gnu. An x86-64 kernel runs i386 executables natively, so no
# emulator is needed; the executables are linked against the cross toolchain's own C and C++ libraries
# (/usr/i686-linux-gnu/lib: its dynamic loader and a run path), so they run without libc6-i386 or lib32stdc++6.
# Header-only dependencies (GSL, Catch2, RapidCheck's headers) come from /usr/include, which Debian's cross compilers
# search after their own; RapidCheck's i386 library from multiarch (librapidcheck-dev:i386).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR i686)
set(CMAKE_C_COMPILER i686-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER i686-linux-gnu-g++)

# CET landing pads (endbr32) and shadow-stack notes in everything built here, as a hardened distribution builds:
# every indirect-branch target, the thunks included, starts with endbr32.
set(CMAKE_CXX_FLAGS_INIT "-fcf-protection=full")
set(member_thunk_i686_libs /usr/i686-linux-gnu/lib)
set(CMAKE_EXE_LINKER_FLAGS_INIT
    "-Wl,--dynamic-linker=${member_thunk_i686_libs}/ld-linux.so.2 -Wl,-rpath,${member_thunk_i686_libs}")

set(CMAKE_FIND_ROOT_PATH /usr/i686-linux-gnu)
# Debian's multiarch directory for i386 is i386-linux-gnu, not the cross triplet i686-linux-gnu.
list(APPEND CMAKE_PREFIX_PATH /usr/lib/i386-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)
