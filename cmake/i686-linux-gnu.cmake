# Toolchain: Linux i386 with Debian's g++-i686-linux-gnu. The executables are linked against the cross toolchain's
# own C and C++ libraries (/usr/i686-linux-gnu/lib: its dynamic loader and a run path), so they run without
# libc6-i386 or lib32stdc++6.
# Header-only dependencies (GSL, Catch2, RapidCheck's headers) come from /usr/include, which Debian's cross compilers
# search after their own; RapidCheck's i386 library from multiarch (librapidcheck-dev:i386).
#
# Who runs the tests: an x86-64 kernel built with IA-32 emulation runs i386 executables natively, but not every
# kernel is (CONFIG_IA32_EMULATION off, or ia32_emulation=0 on the command line: exec then fails with "Exec format
# error"). At configure time a tiny i386 program is built and started; if the kernel refuses it, the tests run under
# qemu-i386 (package qemu-user) instead. MEMBER_THUNK_I386_RUNNER=native|qemu in the environment forces the choice;
# the cache variable MEMBER_THUNK_I386_RUNNER records which one was used.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR i686)
set(CMAKE_C_COMPILER i686-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER i686-linux-gnu-g++)

# CET landing pads (endbr32) and shadow-stack notes in everything built here, as a hardened distribution builds:
# every indirect-branch target, the thunks included, starts with endbr32.
set(CMAKE_CXX_FLAGS_INIT "-fcf-protection=full")
set(member_thunk_i686_libs /usr/i686-linux-gnu/lib)
set(member_thunk_i686_link_flags
    "-Wl,--dynamic-linker=${member_thunk_i686_libs}/ld-linux.so.2 -Wl,-rpath,${member_thunk_i686_libs}")
set(CMAKE_EXE_LINKER_FLAGS_INIT "${member_thunk_i686_link_flags}")

set(CMAKE_FIND_ROOT_PATH /usr/i686-linux-gnu)
# Debian's multiarch directory for i386 is i386-linux-gnu, not the cross triplet i686-linux-gnu.
list(APPEND CMAKE_PREFIX_PATH /usr/lib/i386-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)

# The toolchain file is read again for every try_compile project; the probe runs once, in the main project.
get_property(member_thunk_in_try_compile GLOBAL PROPERTY IN_TRY_COMPILE)
if(NOT DEFINED CACHE{MEMBER_THUNK_I386_RUNNER} AND NOT member_thunk_in_try_compile)
  set(member_thunk_runner "$ENV{MEMBER_THUNK_I386_RUNNER}")
  if(member_thunk_runner STREQUAL "")
    set(probe_dir "${CMAKE_BINARY_DIR}/CMakeFiles/member_thunk_i386_probe")
    file(MAKE_DIRECTORY "${probe_dir}")
    file(WRITE "${probe_dir}/probe.c" "int main(void) { return 42; }\n")
    separate_arguments(probe_link_flags UNIX_COMMAND "${member_thunk_i686_link_flags}")
    execute_process(COMMAND "${CMAKE_C_COMPILER}" "${probe_dir}/probe.c" -o "${probe_dir}/probe" ${probe_link_flags}
                    RESULT_VARIABLE probe_built OUTPUT_QUIET ERROR_VARIABLE probe_build_error)
    if(NOT probe_built EQUAL 0)
      message(FATAL_ERROR "i386 toolchain: could not build the probe program with ${CMAKE_C_COMPILER}:\n"
                          "${probe_build_error}")
    endif()
    execute_process(COMMAND "${probe_dir}/probe" RESULT_VARIABLE probe_status OUTPUT_QUIET ERROR_VARIABLE probe_error)
    if(probe_status STREQUAL "42")
      set(member_thunk_runner native)
    else()
      set(member_thunk_runner qemu)
      message(STATUS "i386: this kernel does not run i386 executables (${probe_status} ${probe_error})")
    endif()
  endif()
  if(NOT member_thunk_runner MATCHES "^(native|qemu)$")
    message(FATAL_ERROR "MEMBER_THUNK_I386_RUNNER must be 'native' or 'qemu', not '${member_thunk_runner}'")
  endif()
  set(MEMBER_THUNK_I386_RUNNER "${member_thunk_runner}" CACHE STRING
      "Who runs the i386 tests: native (the kernel) or qemu (qemu-i386)" FORCE)
endif()
if(MEMBER_THUNK_I386_RUNNER STREQUAL "qemu")
  find_program(member_thunk_qemu_i386 qemu-i386 REQUIRED)
  # The tests learn from MEMBER_THUNK_TEST_EMULATOR that qemu-user runs them: its /proc/self/maps is inexact, so
  # tests/support/maps.hpp asks qemu for a page's protection instead.
  set(CMAKE_CROSSCOMPILING_EMULATOR env MEMBER_THUNK_TEST_EMULATOR=qemu-user "${member_thunk_qemu_i386}")
  if(NOT member_thunk_in_try_compile)
    message(STATUS "i386: tests run under qemu-i386")
    # Emulated, the tests take several times longer: the sizes of the other emulated presets (CMakePresets.json,
    # mixin "cross"). Decided here, on every configure, because the preset cannot know who will run its tests.
    set(MEMBER_THUNK_TEST_TIMEOUT 900 CACHE STRING "Timeout of each unit test, in seconds" FORCE)
    set(MEMBER_THUNK_PROPERTY_CASES 100 CACHE STRING "Successful cases each property test runs under ctest" FORCE)
    set(MEMBER_THUNK_PROPERTY_SIZE 40 CACHE STRING "Largest size of a property test case under ctest" FORCE)
  endif()
elseif(NOT member_thunk_in_try_compile)
  message(STATUS "i386: tests run natively (the kernel executes i386 programs)")
endif()
