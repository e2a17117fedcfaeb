// A length-prefix framing filter: the output is cut into frames, each a 4-byte
// big-endian payload length followed by the payload; the input checks and
// strips the headers. A small, complete example of a stateful filter.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <system_error>

#include <bufev/buffers/concepts.hpp>
#include <bufev/core/detail/move_bytes.hpp>
#include <bufev/events.hpp>

namespace bufev::filters {

/// Length-prefix framing. Frames longer than `max_frame` are refused on input
/// (std::errc::message_size) so a peer cannot announce a huge frame; a stream
/// that ends inside a frame is an error too (std::errc::bad_message).
class length_prefix {
 public:
  static constexpr std::size_t header_size = 4;

  explicit length_prefix(std::size_t max_frame = 64 * 1024) noexcept
      : max_frame_(std::clamp<std::size_t>(max_frame, 1, 0xffffffffu)) {}

  std::size_t max_frame() const noexcept { return max_frame_; }
  /// Why the last call returned error.
  std::error_code error() const noexcept { return error_; }

  template <byte_buffer Src, byte_buffer Dst>
  filter_result filter_input(Src& src, Dst& dst, std::size_t limit, flush_mode mode) {
    std::size_t moved = 0;
    while (moved < limit) {
      if (remaining_ == 0) {
        unsigned char h[header_size];
        if (src.copyout(h, header_size) < header_size) break;
        const std::uint32_t len = std::uint32_t{h[0]} << 24 | std::uint32_t{h[1]} << 16 |
                                  std::uint32_t{h[2]} << 8 | std::uint32_t{h[3]};
        if (len > max_frame_) {
          error_ = std::make_error_code(std::errc::message_size);
          return filter_result::error;
        }
        (void)src.drain(header_size);
        remaining_ = len;
        continue;
      }
      const std::size_t n = std::min({remaining_, src.size(), limit - moved});
      if (n == 0) break;
      const std::size_t got = bufev::detail::move_bytes(src, dst, n);
      if (got == 0) break;
      moved += got;
      remaining_ -= got;
    }
    if (mode == flush_mode::finished && moved < limit && (remaining_ != 0 || !src.empty())) {
      error_ = std::make_error_code(std::errc::bad_message);  // the stream ends inside a frame
      return filter_result::error;
    }
    return moved != 0 || src.empty() ? filter_result::ok : filter_result::need_more;
  }

  template <byte_buffer Src, byte_buffer Dst>
  filter_result filter_output(Src& src, Dst& dst, std::size_t limit, flush_mode) {
    std::size_t produced = 0;
    while (!src.empty()) {
      std::size_t n = std::min(src.size(), max_frame_);
      if (limit != static_cast<std::size_t>(-1)) {
        const std::size_t room = limit - produced;
        if (room <= header_size) break;
        n = std::min(n, room - header_size);
      }
      const unsigned char h[header_size] = {
          static_cast<unsigned char>(n >> 24), static_cast<unsigned char>(n >> 16),
          static_cast<unsigned char>(n >> 8), static_cast<unsigned char>(n)};
      if (std::error_code ec = dst.add(h, header_size)) {
        error_ = ec;
        return filter_result::error;
      }
      if (bufev::detail::move_bytes(src, dst, n) != n) {
        error_ = std::make_error_code(std::errc::no_buffer_space);
        return filter_result::error;
      }
      produced += header_size + n;
    }
    return filter_result::ok;
  }

 private:
  std::size_t max_frame_;
  std::size_t remaining_ = 0;  // payload bytes left in the current input frame
  std::error_code error_;
};

}  // namespace bufev::filters
