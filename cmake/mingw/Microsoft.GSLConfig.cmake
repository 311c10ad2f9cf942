# GSL for a mingw-w64 build: Debian's header-only GSL, without the rest of /usr/include (see x86_64-w64-mingw32.cmake).
include("${CMAKE_CURRENT_LIST_DIR}/headers-only.cmake")
member_thunk_headers_only(Microsoft.GSL::GSL gsl /usr/include/gsl)
set(Microsoft.GSL_FOUND TRUE)
