// Asio DynamicBuffer_v1 adaptors for bufev buffers: bufev::dynamic_buffer(buf) lets
// asio::read_until / async_read_until / read / async_read append straight into a bufev
// buffer and asio::write / async_write consume from it.
//
//   bufev::evbuffer in;
//   asio::async_read_until(socket, bufev::dynamic_buffer(in), "\r\n", handler);
//
// The adaptor is non-owning and cheap to copy (a pointer and a limit): the buffer must
// outlive the operation. One class template serves every buffer type that models
// bufev::byte_buffer; `dynamic_buffer(...)` has one overload per buffer type.
#pragma once

#include <algorithm>
#include <cstddef>
#include <stdexcept>
#include <utility>

#include <asio/buffer.hpp>

#include "bufev/buffers/concepts.hpp"
#include "bufev/buffers/evbuffer.hpp"
#include "bufev/buffers/flat_buffer.hpp"
#include "bufev/buffers/static_buffer.hpp"

namespace bufev {

/// How the adaptor asks a buffer for what byte_buffer does not cover. Specialise it for
/// a buffer type whose members are named differently.
template <class B>
struct dynamic_buffer_traits {
  /// Bytes the buffer can hold without allocating: size() plus free space. Asio sizes
  /// its reads from capacity() - size() (at least 512, at most 64 KiB).
  static std::size_t capacity(const B& b) noexcept {
    if constexpr (requires { { b.capacity() } -> std::convertible_to<std::size_t>; })
      return b.capacity();
    else if constexpr (requires { { b.writable_size() } -> std::convertible_to<std::size_t>; })
      return b.size() + b.writable_size();
    else
      return b.size();
  }
  /// Removes min(n, size()) bytes from the front.
  static void consume(B& b, std::size_t n) {
    if constexpr (requires { b.consume(n); })
      b.consume(n);
    else
      (void)b.drain(std::min(n, b.size()));
  }
};

/// DynamicBuffer_v1 over a bufev buffer (non-owning, copyable). `max_size` caps the
/// size the buffer may reach through the adaptor: prepare() past it throws
/// std::length_error, and read_until reports asio::error::not_found when the cap is
/// reached without a match.
template <byte_buffer B>
class dynamic_buffer_adaptor {
  using traits = dynamic_buffer_traits<B>;

 public:
  using buffer_type = B;
  using const_buffers_type = decltype(std::declval<const B&>().data());
  using mutable_buffers_type = decltype(std::declval<B&>().prepare(std::size_t{}));

  explicit dynamic_buffer_adaptor(B& b, std::size_t max_size = static_cast<std::size_t>(-1)) noexcept
      : b_(&b), max_(max_size) {}

  std::size_t size() const noexcept { return b_->size(); }
  std::size_t max_size() const noexcept { return std::min(max_, b_->max_size()); }
  std::size_t capacity() const noexcept { return std::min(traits::capacity(*b_), max_size()); }
  const_buffers_type data() const noexcept { return b_->data(); }

  /// Throws std::length_error if size() + n would exceed max_size().
  mutable_buffers_type prepare(std::size_t n) {
    const std::size_t sz = size(), mx = max_size();
    if (sz > mx || n > mx - sz) throw std::length_error("bufev::dynamic_buffer: too large");
    return b_->prepare(n);
  }
  void commit(std::size_t n) { b_->commit(n); }
  void consume(std::size_t n) { traits::consume(*b_, n); }

  /// The adapted buffer.
  B& buffer() const noexcept { return *b_; }

 private:
  B* b_;
  std::size_t max_;
};

/// Adapts an evbuffer: Asio reads go into its free space and new segments through
/// prepare()/commit(), writes consume with drain.
inline dynamic_buffer_adaptor<evbuffer> dynamic_buffer(evbuffer& b, std::size_t max_size = evbuffer::npos) noexcept {
  return dynamic_buffer_adaptor<evbuffer>(b, max_size);
}

/// Adapts a flat_buffer: Asio reads go into its single array (grown as needed).
inline dynamic_buffer_adaptor<flat_buffer> dynamic_buffer(flat_buffer& b, std::size_t max_size = flat_buffer::npos) noexcept {
  return dynamic_buffer_adaptor<flat_buffer>(b, max_size);
}

/// Adapts a static_buffer<N>: reads stop at its fixed capacity (read_until then
/// reports asio::error::not_found).
template <std::size_t N>
dynamic_buffer_adaptor<static_buffer<N>> dynamic_buffer(static_buffer<N>& b, std::size_t max_size = static_cast<std::size_t>(-1)) noexcept {
  return dynamic_buffer_adaptor<static_buffer<N>>(b, max_size);
}

}  // namespace bufev
