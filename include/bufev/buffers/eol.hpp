// End-of-line styles for evbuffer::search_eol and readln (libevent's evbuffer_eol_style).
#pragma once

#include <cstddef>

namespace bufev {

/// How a line ends.
enum class eol_style {
  any,          ///< the first CR or LF and the whole run of CR/LF bytes after it
  crlf,         ///< an LF, optionally preceded by one CR
  crlf_strict,  ///< exactly CR LF (also when the two bytes are in different segments)
  lf,           ///< a single LF
  nul,          ///< a single NUL byte
};

/// Where an end of line was found: `pos` = offset of its first byte, `length` = its
/// size in bytes. `pos == npos` (std::size_t(-1)) means no end of line was found.
struct eol_match {
  std::size_t pos;
  std::size_t length;
  constexpr bool found() const noexcept { return pos != static_cast<std::size_t>(-1); }
};

}  // namespace bufev
