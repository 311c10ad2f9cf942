# Gives the tests that catch_discover_tests finds in a Catch2 v2 executable their Catch tags as ctest labels, so that
# presets and `ctest -L`/`-LE` select tests by tag, never by a fragment of their names. (Catch2 v3's module has
# ADD_TAGS_AS_LABELS for this; the module of Catch2 v2.13, Debian 12's, has no such option.)
#
# Run after each build of a test executable, in script mode, the way the Catch module runs CatchAddTests.cmake:
#   cmake -D TEST_EXECUTABLE=<exe> -D TEST_EXECUTOR=<emulator;args> -D TEST_PREFIX=<prefix> -D CTEST_FILE=<out>
#         [-D EXTRA_LABELS=<label|...>] -P catch_tag_labels.cmake
# EXTRA_LABELS go to every test of the executable (e.g. the back end a suite was built for: `runtime`, `prebuilt`).
# It asks the executable for its tags (--list-tags), then for the tests of each tag (--list-test-names-only "[tag]"),
# and writes CTEST_FILE: one set_tests_properties(<TEST_PREFIX><test name> PROPERTIES LABELS <tags>) per tagged test.
# Tags with a special meaning to Catch ([.], [!mayfail], [#file], ...) are not labels.
foreach(var TEST_EXECUTABLE CTEST_FILE)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "catch_tag_labels.cmake: ${var} is not set")
  endif()
endforeach()

# Runs the executable with ARGN; its standard output, split into lines, goes to `out`. Catch's listing options exit
# with the number of items listed, so any count is success; a crash or a failure to start is not.
function(run_listing out)
  execute_process(COMMAND ${TEST_EXECUTOR} "${TEST_EXECUTABLE}" ${ARGN}
                  OUTPUT_VARIABLE output ERROR_VARIABLE errors RESULT_VARIABLE result)
  if(NOT result MATCHES "^[0-9]+$")
    message(FATAL_ERROR "catch_tag_labels.cmake: '${TEST_EXECUTABLE} ${ARGN}' failed (${result}):\n${output}${errors}")
  endif()
  string(REPLACE "\r" "" output "${output}")
  string(REPLACE "\n" ";" output "${output}")
  set(${out} "${output}" PARENT_SCOPE)
endfunction()

run_listing(tag_lines --list-tags)
set(tags)
foreach(line IN LISTS tag_lines)
  # "   3  [threads]": a count, then the tag (and its other spellings, if any).
  if(line MATCHES "^ *[0-9]+ +\\[([^]]+)\\]")
    list(APPEND tags "${CMAKE_MATCH_1}")
  endif()
endforeach()

set(tests)
string(REPLACE "|" ";" EXTRA_LABELS "${EXTRA_LABELS}") # a list passed as a|b
if(NOT "${EXTRA_LABELS}" STREQUAL "")
  run_listing(names --list-test-names-only)
  foreach(name IN LISTS names)
    if(NOT name STREQUAL "")
      string(MD5 key "${name}")
      list(APPEND tests "${name}")
      set(labels_${key} ${EXTRA_LABELS})
    endif()
  endforeach()
endif()
foreach(tag IN LISTS tags)
  if(tag MATCHES "^[.!#]")
    continue()
  endif()
  run_listing(names --list-test-names-only "[${tag}]")
  foreach(name IN LISTS names)
    if(name STREQUAL "")
      continue()
    endif()
    string(MD5 key "${name}")
    if(NOT DEFINED labels_${key})
      list(APPEND tests "${name}")
      set(labels_${key})
    endif()
    list(APPEND labels_${key} "${tag}")
  endforeach()
endforeach()

set(script "")
foreach(name IN LISTS tests)
  string(MD5 key "${name}")
  string(APPEND script
         "set_tests_properties([==[${TEST_PREFIX}${name}]==] PROPERTIES LABELS [==[${labels_${key}}]==])\n")
endforeach()
file(WRITE "${CTEST_FILE}" "${script}")
