# Toolchain: Windows x64 with Debian's mingw-w64 (posix thread model, for std::thread and std::mutex); the binaries
# run under wine.
#
# The emulator is cmake/wine-run, which keeps one wine prefix per build directory (created on first use, set up for
# unattended runs) and a wineserver that outlives each process, so that each test starts in milliseconds.
# Executables are linked statically (libstdc++, libgcc, winpthread): nothing has to be copied next to them.
# GSL and Catch2 are header-only and come from /usr/include, which a Windows compiler must not search as a whole
# (it holds glibc's headers): cmake/mingw/ provides package configurations that expose only those two libraries.
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)
set(CMAKE_C_COMPILER x86_64-w64-mingw32-gcc-posix)
set(CMAKE_CXX_COMPILER x86_64-w64-mingw32-g++-posix)
set(CMAKE_RC_COMPILER x86_64-w64-mingw32-windres)
set(CMAKE_CROSSCOMPILING_EMULATOR "${CMAKE_CURRENT_LIST_DIR}/wine-run;${CMAKE_BINARY_DIR}/wineprefix")
set(CMAKE_EXE_LINKER_FLAGS_INIT "-static")

set(CMAKE_FIND_ROOT_PATH /usr/x86_64-w64-mingw32)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
set(Microsoft.GSL_DIR "${CMAKE_CURRENT_LIST_DIR}/mingw" CACHE PATH "GSL's headers only, for mingw")
set(Catch2_DIR "${CMAKE_CURRENT_LIST_DIR}/mingw" CACHE PATH "Catch2's headers only, for mingw")
