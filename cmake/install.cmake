# Installation: headers, an exported bufev::bufev target, a package config and bufev.pc.
# bufev is header-only and architecture-independent, so its CMake package and .pc file go
# under DATADIR (share/), which both find_package and pkg-config search.
include(CMakePackageConfigHelpers)
set(BUFEV_CMAKE_INSTALL_DIR "${CMAKE_INSTALL_DATADIR}/cmake/bufev" CACHE STRING
    "Where bufev's CMake package files are installed (relative to the prefix)")
set(BUFEV_PKGCONFIG_INSTALL_DIR "${CMAKE_INSTALL_DATADIR}/pkgconfig" CACHE STRING
    "Where bufev.pc is installed (relative to the prefix)")
mark_as_advanced(BUFEV_CMAKE_INSTALL_DIR BUFEV_PKGCONFIG_INSTALL_DIR)

install(DIRECTORY include/bufev DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
  FILES_MATCHING PATTERN "*.hpp" PATTERN "*.ipp")
install(TARGETS bufev EXPORT bufevTargets)
install(EXPORT bufevTargets NAMESPACE bufev:: DESTINATION ${BUFEV_CMAKE_INSTALL_DIR})
configure_package_config_file(cmake/bufevConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/bufevConfig.cmake
  INSTALL_DESTINATION ${BUFEV_CMAKE_INSTALL_DIR})
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/bufevConfigVersion.cmake
  COMPATIBILITY SameMinorVersion ARCH_INDEPENDENT)
install(FILES
  ${CMAKE_CURRENT_BINARY_DIR}/bufevConfig.cmake
  ${CMAKE_CURRENT_BINARY_DIR}/bufevConfigVersion.cmake
  cmake/FindAsio.cmake
  DESTINATION ${BUFEV_CMAKE_INSTALL_DIR})

# bufev.pc locates itself through ${pcfiledir}, so `cmake --install --prefix DIR` and
# DESTDIR staging give a working file; absolute install dirs fall back to absolute paths.
if(NOT IS_ABSOLUTE "${BUFEV_PKGCONFIG_INSTALL_DIR}" AND NOT IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  file(RELATIVE_PATH _bufev_pc_up "/_/${BUFEV_PKGCONFIG_INSTALL_DIR}" "/_")
  string(REGEX REPLACE "/$" "" _bufev_pc_up "${_bufev_pc_up}")
  set(BUFEV_PC_PREFIX "\${pcfiledir}/${_bufev_pc_up}")
  set(BUFEV_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
else()
  set(BUFEV_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
  set(BUFEV_PC_INCLUDEDIR "${CMAKE_INSTALL_FULL_INCLUDEDIR}")
endif()
set(BUFEV_PC_EXTRA_CFLAGS "")
if(Asio_INCLUDE_DIR AND NOT Asio_INCLUDE_DIR STREQUAL "/usr/include")
  set(BUFEV_PC_EXTRA_CFLAGS " -I${Asio_INCLUDE_DIR}")
endif()
configure_file(cmake/bufev.pc.in ${CMAKE_CURRENT_BINARY_DIR}/bufev.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/bufev.pc DESTINATION ${BUFEV_PKGCONFIG_INSTALL_DIR})
