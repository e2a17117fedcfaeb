// Temporary files and descriptors for the file-segment tests, on POSIX and Windows
// (evbuffer::add_file takes a CRT descriptor there: _open, _read, _close).
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <system_error>

#if defined(_WIN32)
#include <fcntl.h>
#include <io.h>
#include <share.h>
#include <sys/stat.h>

#include <cstdlib>
#else
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#endif

namespace bufev::test {

/// Creates a new empty file in the temporary directory, open for reading and writing
/// (binary). Sets `path`; returns the descriptor, or -1. With `anonymous` the file
/// has no name left once this returns (POSIX) or goes when it is closed (Windows).
inline int make_temp_file(std::string& path, bool anonymous = false) {
  std::error_code ec;
  std::string tmpl = (std::filesystem::temp_directory_path(ec) / "bufev_XXXXXX").string();
  if (ec) tmpl = "bufev_XXXXXX";
#if defined(_WIN32)
  for (int attempt = 0; attempt < 100; ++attempt) {
    std::string name = tmpl;
    if (::_mktemp_s(name.data(), name.size() + 1) != 0) return -1;
    int fd = -1;
    const int flags = _O_RDWR | _O_CREAT | _O_EXCL | _O_BINARY | (anonymous ? _O_TEMPORARY : 0);
    if (::_sopen_s(&fd, name.c_str(), flags, _SH_DENYNO, _S_IREAD | _S_IWRITE) == 0) {
      path = name;
      return fd;
    }
  }
  return -1;
#else
  const int fd = ::mkstemp(tmpl.data());
  if (fd >= 0) {
    path = tmpl;
    if (anonymous) ::unlink(tmpl.c_str());
  }
  return fd;
#endif
}

/// Writes all of [p, p + n); false on error.
inline bool write_all(int fd, const void* p, std::size_t n) {
  const char* c = static_cast<const char*>(p);
  while (n > 0) {
#if defined(_WIN32)
    const int r = ::_write(fd, c, static_cast<unsigned>(n > 0x40000000u ? 0x40000000u : n));
#else
    const auto r = ::write(fd, c, n);
#endif
    if (r <= 0) return false;
    c += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

/// Opens `path` read-only (binary); the descriptor or -1.
inline int open_read(const std::string& path) {
#if defined(_WIN32)
  int fd = -1;
  return ::_sopen_s(&fd, path.c_str(), _O_RDONLY | _O_BINARY, _SH_DENYNO, 0) == 0 ? fd : -1;
#else
  return ::open(path.c_str(), O_RDONLY);
#endif
}

inline int dup_fd(int fd) {
#if defined(_WIN32)
  return ::_dup(fd);
#else
  return ::dup(fd);
#endif
}

inline void close_fd(int fd) {
#if defined(_WIN32)
  ::_close(fd);
#else
  ::close(fd);
#endif
}

/// Whether `fd` is an open descriptor.
inline bool fd_open(int fd) {
#if defined(_WIN32)
  return ::_get_osfhandle(fd) != -1;
#else
  return ::fcntl(fd, F_GETFD) != -1;
#endif
}

inline void remove_file(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove(path, ec);
}

}  // namespace bufev::test
