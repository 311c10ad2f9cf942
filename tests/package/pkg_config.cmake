# Uses the installed member_thunk.pc the way a Makefile would: pkg-config, told where the prefix's .pc files are
# through PKG_CONFIG_PATH, gives the version and the compile flags; the consumer is compiled with those and
# -std=c++20 alone, then run.
#   cmake -DPKG_CONFIG=... -DPC_DIR=... -DINCLUDE_DIR=... -DCXX=... -DSOURCE=... -DBINARY_DIR=...
#         -DVERSION=... -P pkg_config.cmake
foreach(var PC_DIR INCLUDE_DIR CXX SOURCE BINARY_DIR VERSION)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "pkg_config.cmake: ${var} is not set")
  endif()
endforeach()
if(NOT PKG_CONFIG)
  message(FATAL_ERROR "pkg-config was not found when this build was configured (Debian package pkg-config)")
endif()
if(NOT EXISTS "${PC_DIR}/member_thunk.pc")
  message(FATAL_ERROR "the install has no ${PC_DIR}/member_thunk.pc")
endif()
set(ENV{PKG_CONFIG_PATH} "${PC_DIR}")

# pkg_config(<out> <args>...): pkg-config's answer, stripped.
function(pkg_config out)
  execute_process(COMMAND "${PKG_CONFIG}" ${ARGN} member_thunk
                  OUTPUT_VARIABLE answer OUTPUT_STRIP_TRAILING_WHITESPACE COMMAND_ECHO STDOUT COMMAND_ERROR_IS_FATAL ANY)
  message(STATUS "${answer}")
  set(${out} "${answer}" PARENT_SCOPE)
endfunction()

pkg_config(version --modversion)
if(NOT version STREQUAL VERSION)
  message(FATAL_ERROR "member_thunk.pc says version '${version}', the project is ${VERSION}")
endif()
pkg_config(cflags --cflags)
separate_arguments(cflags UNIX_COMMAND "${cflags}")
# The headers must be the install's, not the source tree's.
cmake_path(NORMAL_PATH INCLUDE_DIR OUTPUT_VARIABLE expected)
set(found FALSE)
foreach(flag IN LISTS cflags)
  if(flag MATCHES "^-I(.+)$")
    set(dir "${CMAKE_MATCH_1}")
    cmake_path(NORMAL_PATH dir)
    if(dir STREQUAL expected)
      set(found TRUE)
    endif()
  endif()
endforeach()
if(NOT found)
  message(FATAL_ERROR "pkg-config --cflags member_thunk should name ${expected}")
endif()

# The consumer checks that the installed version.hpp agrees with the version pkg-config reports.
string(REPLACE "." ";" parts "${version}")
list(GET parts 0 major)
list(GET parts 1 minor)
list(GET parts 2 patch)
file(REMOVE_RECURSE "${BINARY_DIR}")
file(MAKE_DIRECTORY "${BINARY_DIR}")
execute_process(COMMAND "${CXX}" -std=c++20 ${cflags} -DMEMBER_THUNK_CONSUMER_EXPECT_VERSION=1
                        -DMEMBER_THUNK_CONSUMER_MAJOR=${major} -DMEMBER_THUNK_CONSUMER_MINOR=${minor}
                        -DMEMBER_THUNK_CONSUMER_PATCH=${patch} "${SOURCE}" -o "${BINARY_DIR}/member_thunk_consumer"
                COMMAND_ECHO STDOUT COMMAND_ERROR_IS_FATAL ANY)
execute_process(COMMAND "${BINARY_DIR}/member_thunk_consumer" COMMAND_ECHO STDOUT COMMAND_ERROR_IS_FATAL ANY)
