# Installs the build tree into a fresh prefix: cmake -DBUILD_DIR=... -DPREFIX=... [-DCONFIG=...] -P install.cmake
# The prefix is emptied first, so a file the install rules no longer provide cannot linger and hide the fact.
foreach(var BUILD_DIR PREFIX)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "install.cmake: ${var} is not set")
  endif()
endforeach()
file(REMOVE_RECURSE "${PREFIX}")
set(config_args)
if(CONFIG)
  set(config_args --config "${CONFIG}")
endif()
execute_process(COMMAND "${CMAKE_COMMAND}" --install "${BUILD_DIR}" --prefix "${PREFIX}" ${config_args}
                COMMAND_ECHO STDOUT
                COMMAND_ERROR_IS_FATAL ANY)
