# Cross-compiles bufev for Windows (x86-64) with Debian's mingw-w64, posix thread
# model (std::thread, std::mutex), and runs the results under wine:
#
#   apt-get install g++-mingw-w64-x86-64-posix wine
#   cmake --preset windows && cmake --build --preset windows && ctest --preset windows
#
# On Windows Asio uses IOCP, so completion_socket_transport runs on Asio's IOCP
# backend and socket_transport on its async_wait emulation (zero-byte reads for
# wait_read, the select reactor thread for wait_write).
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)

set(_bufev_mingw x86_64-w64-mingw32)
set(CMAKE_C_COMPILER ${_bufev_mingw}-gcc-posix)
set(CMAKE_CXX_COMPILER ${_bufev_mingw}-g++-posix)
set(CMAKE_RC_COMPILER ${_bufev_mingw}-windres)

# Search the mingw sysroot for libraries, headers and packages, the host for programs.
set(CMAKE_FIND_ROOT_PATH /usr/${_bufev_mingw})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# Asio and Catch2 are header-only Debian packages in /usr/include. The mingw
# compiler must not search /usr/include itself (glibc's headers would shadow
# mingw's), so it gets a folder that holds only links to those two.
# CMAKE_BINARY_DIR differs in try_compile projects; they do not need the folder.
set(BUFEV_MINGW_HOST_INCLUDE "${CMAKE_BINARY_DIR}/mingw-host-include" CACHE PATH
    "Folder of links to the host's header-only Asio and Catch2 for the mingw build")
if(NOT CMAKE_BINARY_DIR MATCHES "/CMakeFiles/CMakeScratch/|/CMakeFiles/CMakeTmp")
  file(MAKE_DIRECTORY "${BUFEV_MINGW_HOST_INCLUDE}/catch2")
  foreach(_l asio asio.hpp catch2/catch.hpp)
    if(EXISTS "/usr/include/${_l}" AND NOT EXISTS "${BUFEV_MINGW_HOST_INCLUDE}/${_l}")
      file(CREATE_LINK "/usr/include/${_l}" "${BUFEV_MINGW_HOST_INCLUDE}/${_l}" SYMBOLIC)
    endif()
  endforeach()
endif()
# FindAsio takes this instead of searching; tests/CMakeLists.txt finds Catch2 here.
set(Asio_INCLUDE_DIR "${BUFEV_MINGW_HOST_INCLUDE}" CACHE PATH "Asio headers (mingw build)")
set(BUFEV_CATCH2_INCLUDE_DIR "${BUFEV_MINGW_HOST_INCLUDE}" CACHE PATH "Catch2 v2 header (mingw build)")

# Windows 10 API level (Asio warns without one); static runtime so the .exe files run
# under wine without the mingw DLLs on its path. (Asio::Asio links ws2_32 and mswsock.)
# -mbig-obj: a test file of many template instantiations outgrows COFF's 32767
# sections ("file too big").
set(CMAKE_CXX_FLAGS_INIT "-D_WIN32_WINNT=0x0A00 -Wa,-mbig-obj")
set(CMAKE_EXE_LINKER_FLAGS_INIT "-static")
# The same for zlib (Debian libz-mingw-w64-dev ships libz.a and libz.dll.a): link
# the static archive, not the import library that would need zlib1.dll at run time.
set(ZLIB_USE_STATIC_LIBS ON)

# add_test and catch_discover_tests run the .exe files through wine.
# WINEDEBUG=-all keeps wine's own diagnostics out of the test output.
find_program(BUFEV_WINE wine)
if(BUFEV_WINE)
  set(CMAKE_CROSSCOMPILING_EMULATOR "/usr/bin/env;WINEDEBUG=-all;${BUFEV_WINE}")
endif()
