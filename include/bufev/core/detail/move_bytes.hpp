#pragma once

#include <algorithm>
#include <cstddef>
#include <type_traits>

#include <asio/buffer.hpp>

#include <bufev/buffers/concepts.hpp>

namespace bufev::detail {

/// Moves up to n bytes from the front of `src` to the end of `dst`: relinks
/// segments when both are the same segmented type, copies otherwise. Returns the
/// bytes moved (less than n only if `dst` is full).
template <byte_buffer Src, byte_buffer Dst>
std::size_t move_bytes(Src& src, Dst& dst, std::size_t n) {
  n = std::min(n, src.size());
  if constexpr (std::is_same_v<Src, Dst> && segmented_buffer<Src>) {
    return src.remove_buffer(dst, n);
  } else {
    std::size_t moved = 0;
    const auto seq = src.data();
    const auto end = asio::buffer_sequence_end(seq);
    for (auto it = asio::buffer_sequence_begin(seq); moved < n && it != end; ++it) {
      asio::const_buffer b = *it;
      std::size_t take = std::min(b.size(), n - moved);
      take = std::min(take, dst.max_size() - dst.size());
      if (take == 0 || dst.add(b.data(), take)) break;
      moved += take;
    }
    (void)src.drain(moved);
    return moved;
  }
}

}  // namespace bufev::detail
