# Catch2 for a mingw-w64 build: Debian's single-header Catch2 v2 without the rest of /usr/include, and its CMake test
# discovery module (see x86_64-w64-mingw32.cmake).
include("${CMAKE_CURRENT_LIST_DIR}/headers-only.cmake")
member_thunk_headers_only(Catch2::Catch2 catch2 /usr/include/catch2)
list(APPEND CMAKE_MODULE_PATH /usr/lib/cmake/Catch2)
set(Catch2_FOUND TRUE)
