// Byte and end-of-line search over one contiguous span. Shared by the
// contiguous buffers (flat_buffer, static_buffer<N>); memchr/memcmp do the work.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>

#include <bufev/buffers/eol.hpp>

namespace bufev::detail {

inline constexpr std::size_t contiguous_npos = static_cast<std::size_t>(-1);

/// First occurrence of `what[0, len)` in `p[start, end)` (the match must end at or
/// before `end`, which is clamped to `n`); npos if absent. An empty pattern matches
/// at `start` when `start <= n`, like std::string::find.
inline std::size_t contiguous_find(const unsigned char* p, std::size_t n, const void* what,
                                   std::size_t len, std::size_t start,
                                   std::size_t end = contiguous_npos) noexcept {
  const std::size_t limit = std::min(end, n);
  if (start > limit) return contiguous_npos;
  if (len == 0) return start;
  if (what == nullptr || len > limit - start) return contiguous_npos;
  const auto* w = static_cast<const unsigned char*>(what);
  const unsigned char first = w[0];
  const unsigned char* cur = p + start;
  const unsigned char* const last = p + (limit - len) + 1;  // one past the last start
  while (cur < last) {
    const auto* hit = static_cast<const unsigned char*>(
        std::memchr(cur, first, static_cast<std::size_t>(last - cur)));
    if (hit == nullptr) return contiguous_npos;
    if (len == 1 || std::memcmp(hit + 1, w + 1, len - 1) == 0)
      return static_cast<std::size_t>(hit - p);
    cur = hit + 1;
  }
  return contiguous_npos;
}

/// Length of the run of CR/LF bytes starting at `p[pos]`, bounded by `n`.
inline std::size_t crlf_run(const unsigned char* p, std::size_t n, std::size_t pos) noexcept {
  std::size_t i = pos;
  while (i < n && (p[i] == '\r' || p[i] == '\n')) ++i;
  return i - pos;
}

/// First end of line at or after `start` in `p[0, n)` (libevent's
/// evbuffer_search_eol): `{npos, 0}` when there is none. A CR before `start`
/// never joins a match.
inline eol_match contiguous_find_eol(const unsigned char* p, std::size_t n, std::size_t start,
                                     eol_style style) noexcept {
  constexpr eol_match none{contiguous_npos, 0};
  if (start >= n) return none;
  auto find_byte = [&](std::size_t from, unsigned char c) -> std::size_t {
    const void* hit = std::memchr(p + from, c, n - from);
    return hit ? static_cast<std::size_t>(static_cast<const unsigned char*>(hit) - p)
               : contiguous_npos;
  };
  switch (style) {
    case eol_style::lf: {
      const std::size_t i = find_byte(start, '\n');
      return i == contiguous_npos ? none : eol_match{i, 1};
    }
    case eol_style::nul: {
      const std::size_t i = find_byte(start, '\0');
      return i == contiguous_npos ? none : eol_match{i, 1};
    }
    case eol_style::crlf: {
      // The first LF ends the line; a CR right before it belongs to the EOL.
      const std::size_t i = find_byte(start, '\n');
      if (i == contiguous_npos) return none;
      return (i > start && p[i - 1] == '\r') ? eol_match{i - 1, 2} : eol_match{i, 1};
    }
    case eol_style::crlf_strict: {
      for (std::size_t from = start; from < n;) {
        const std::size_t i = find_byte(from, '\n');
        if (i == contiguous_npos) return none;
        if (i > start && p[i - 1] == '\r') return eol_match{i - 1, 2};
        from = i + 1;
      }
      return none;
    }
    case eol_style::any: {
      // First CR or LF, then the whole run of CR/LF bytes after it. Scanned in
      // windows so a buffer with only one kind of EOL byte is not rescanned to its
      // end for the other kind on every line.
      constexpr std::size_t window = 256;
      for (std::size_t from = start; from < n; from += window) {
        const std::size_t len = std::min(window, n - from);
        const void* lf = std::memchr(p + from, '\n', len);
        const std::size_t lf_len =
            lf ? static_cast<std::size_t>(static_cast<const unsigned char*>(lf) - (p + from)) : len;
        const void* cr = std::memchr(p + from, '\r', lf_len);
        const void* hit = cr ? cr : lf;
        if (hit != nullptr) {
          const auto i = static_cast<std::size_t>(static_cast<const unsigned char*>(hit) - p);
          return eol_match{i, crlf_run(p, n, i)};
        }
      }
      return none;
    }
  }
  return none;
}

}  // namespace bufev::detail
