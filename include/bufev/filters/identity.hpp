// The identity filter: moves bytes unchanged (segments relinked, not copied,
// when both buffers are evbuffers). The smallest complete filter, and a
// baseline for measuring the filter transport itself.
#pragma once

#include <algorithm>
#include <cstddef>

#include <bufev/buffers/concepts.hpp>
#include <bufev/core/detail/move_bytes.hpp>
#include <bufev/events.hpp>

namespace bufev::filters {

/// Passes bytes through both ways, at most `dst_limit` at a time.
struct identity {
  template <byte_buffer Src, byte_buffer Dst>
  filter_result filter_input(Src& src, Dst& dst, std::size_t limit, flush_mode) {
    return pass(src, dst, limit);
  }
  template <byte_buffer Src, byte_buffer Dst>
  filter_result filter_output(Src& src, Dst& dst, std::size_t limit, flush_mode) {
    return pass(src, dst, limit);
  }

 private:
  template <class Src, class Dst>
  static filter_result pass(Src& src, Dst& dst, std::size_t limit) {
    const std::size_t n = std::min(src.size(), limit);
    if (n != 0 && bufev::detail::move_bytes(src, dst, n) == 0) return filter_result::need_more;  // dst full
    return filter_result::ok;
  }
};

}  // namespace bufev::filters
