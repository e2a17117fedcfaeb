# Finds standalone Asio (Debian: libasio-dev) and defines Asio::Asio.
find_path(Asio_INCLUDE_DIR NAMES asio.hpp)
if(Asio_INCLUDE_DIR AND EXISTS "${Asio_INCLUDE_DIR}/asio/version.hpp")
  file(STRINGS "${Asio_INCLUDE_DIR}/asio/version.hpp" _asio_ver REGEX "#define ASIO_VERSION ")
  string(REGEX MATCH "[0-9]+" _asio_ver "${_asio_ver}")
  math(EXPR _maj "${_asio_ver} / 100000")
  math(EXPR _min "${_asio_ver} / 100 % 1000")
  math(EXPR _pat "${_asio_ver} % 100")
  set(Asio_VERSION "${_maj}.${_min}.${_pat}")
endif()
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(Asio REQUIRED_VARS Asio_INCLUDE_DIR VERSION_VAR Asio_VERSION)
if(Asio_FOUND AND NOT TARGET Asio::Asio)
  add_library(Asio::Asio INTERFACE IMPORTED)
  set_target_properties(Asio::Asio PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${Asio_INCLUDE_DIR}"
    INTERFACE_COMPILE_DEFINITIONS "ASIO_STANDALONE")
  if(WIN32)
    # Asio's Windows backend (IOCP, Winsock); MSVC links these by #pragma, mingw does not.
    set_property(TARGET Asio::Asio PROPERTY INTERFACE_LINK_LIBRARIES ws2_32 mswsock)
  endif()
endif()
mark_as_advanced(Asio_INCLUDE_DIR)
