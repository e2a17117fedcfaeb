# Driver for the packaging tests, run as `cmake -DMODE=... -P run_consumer.cmake`.
#   install           stage `cmake --install BUFEV_BINARY_DIR` into BUFEV_STAGE
#   find_package      configure, build and run find_package/ against BUFEV_STAGE only
#   add_subdirectory  configure, build and run add_subdirectory/ against BUFEV_SOURCE_DIR
#   pkg_config        compile consumer.cpp with `pkg-config --cflags --libs bufev`
#                     from BUFEV_STAGE, then run it
cmake_minimum_required(VERSION 3.20)
set(_here "${CMAKE_CURRENT_LIST_DIR}")

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    list(JOIN ARGN " " cmd)
    message(FATAL_ERROR "command failed (${rc}): ${cmd}")
  endif()
endfunction()

if(MODE STREQUAL "install")
  file(REMOVE_RECURSE "${BUFEV_STAGE}")
  run(${CMAKE_COMMAND} --install "${BUFEV_BINARY_DIR}" --prefix "${BUFEV_STAGE}")
  foreach(f include/bufev/error.hpp share/cmake/bufev/bufevConfig.cmake
            share/cmake/bufev/bufevConfigVersion.cmake share/cmake/bufev/bufevTargets.cmake
            share/cmake/bufev/FindAsio.cmake share/pkgconfig/bufev.pc)
    if(NOT EXISTS "${BUFEV_STAGE}/${f}")
      message(FATAL_ERROR "install did not produce ${f}")
    endif()
  endforeach()
  return()
endif()

set(_build "${BUFEV_WORK}/${MODE}-build")
file(REMOVE_RECURSE "${_build}")
file(MAKE_DIRECTORY "${_build}")
if(NOT CONSUMER_BUILD_TYPE)
  set(CONSUMER_BUILD_TYPE Debug)
endif()

if(MODE STREQUAL "find_package" OR MODE STREQUAL "add_subdirectory")
  set(_gen -G "${CONSUMER_GENERATOR}")
  if(CONSUMER_MAKE_PROGRAM)
    list(APPEND _gen "-DCMAKE_MAKE_PROGRAM=${CONSUMER_MAKE_PROGRAM}")
  endif()
  # Only the staged prefix may satisfy find_package: no user package registry, and
  # the consumer checks bufev_DIR lies inside BUFEV_STAGE.
  run(${CMAKE_COMMAND} -S "${_here}/${MODE}" -B "${_build}" ${_gen}
      "-DCMAKE_CXX_COMPILER=${CONSUMER_CXX}"
      "-DCMAKE_CXX_FLAGS=${CONSUMER_CXX_FLAGS}"
      "-DCMAKE_BUILD_TYPE=${CONSUMER_BUILD_TYPE}"
      "-DCMAKE_PREFIX_PATH=${BUFEV_STAGE}"
      -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
      "-DBUFEV_EXPECTED_PREFIX=${BUFEV_STAGE}"
      "-DBUFEV_SOURCE_DIR=${BUFEV_SOURCE_DIR}")
  run(${CMAKE_COMMAND} --build "${_build}")
  run("${_build}/consumer")
elseif(MODE STREQUAL "pkg_config")
  set(ENV{PKG_CONFIG_PATH} "${BUFEV_STAGE}/share/pkgconfig")
  execute_process(COMMAND "${PKG_CONFIG}" --variable=pcfiledir bufev
                  OUTPUT_VARIABLE _pcdir OUTPUT_STRIP_TRAILING_WHITESPACE
                  COMMAND_ERROR_IS_FATAL ANY)
  file(REAL_PATH "${_pcdir}" _pcdir)
  file(REAL_PATH "${BUFEV_STAGE}/share/pkgconfig" _want)
  if(NOT _pcdir STREQUAL _want)
    message(FATAL_ERROR "pkg-config found bufev.pc in ${_pcdir}, expected ${_want}")
  endif()
  execute_process(COMMAND "${PKG_CONFIG}" --cflags --libs bufev
                  OUTPUT_VARIABLE _flags OUTPUT_STRIP_TRAILING_WHITESPACE
                  COMMAND_ERROR_IS_FATAL ANY)
  message(STATUS "pkg-config --cflags --libs bufev: ${_flags}")
  separate_arguments(_flags UNIX_COMMAND "${_flags}")
  separate_arguments(_cxxflags UNIX_COMMAND "${CONSUMER_CXX_FLAGS}")
  run("${CONSUMER_CXX}" ${_cxxflags} -Wall -Wextra -Werror
      "${_here}/consumer.cpp" ${_flags} -o "${_build}/consumer")
  run("${_build}/consumer")
else()
  message(FATAL_ERROR "unknown MODE '${MODE}'")
endif()
