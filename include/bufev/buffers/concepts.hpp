// The "buffer type" policy axis: what the bufferevent core needs from its input
// and output buffers. evbuffer, flat_buffer and static_buffer<N> all model it.
#pragma once

#include <concepts>
#include <cstddef>
#include <system_error>

#include <asio/buffer.hpp>

namespace bufev {

/// What changed in a buffer (libevent's evbuffer_cb_info).
struct buffer_change {
  std::size_t orig_size = 0;  ///< size before the change
  std::size_t n_added = 0;    ///< bytes appended or prepended
  std::size_t n_deleted = 0;  ///< bytes drained or removed
};

/// The one internal observer a buffer reports its changes to. The bufferevent core
/// installs it to learn about appends to the output and drains of the input made
/// through the buffer's own API. A plain function pointer keeps it free of
/// allocation; user change callbacks are a separate, buffer-specific feature.
struct buffer_observer {
  void (*fn)(void* ctx, const buffer_change& change) = nullptr;
  void* ctx = nullptr;
  explicit operator bool() const noexcept { return fn != nullptr; }
  void operator()(const buffer_change& c) const {
    if (fn) fn(ctx, c);
  }
};

/// Which end of a buffer to freeze (libevent's evbuffer_freeze(buf, at_front)).
enum class buffer_end : unsigned char { front, back };

/// A byte buffer the bufferevent core can use for input or output.
///
/// - `add`/`drain` append and consume, reporting errors as `std::error_code`;
/// - `data()` is an Asio ConstBufferSequence over all readable bytes;
/// - `prepare(n)`/`commit(n)` hand out n writable bytes as an Asio
///   MutableBufferSequence and make the first n of them readable (Asio's
///   DynamicBuffer_v1 contract: `prepare` throws std::length_error past max_size());
/// - `set_observer` installs the core's change observer.
template <class B>
concept byte_buffer = std::default_initializable<B> &&
    requires(B& b, const B& cb, const void* src, void* dst, std::size_t n) {
  { cb.size() } -> std::same_as<std::size_t>;
  { cb.max_size() } -> std::same_as<std::size_t>;
  { cb.empty() } -> std::same_as<bool>;
  { b.add(src, n) } -> std::same_as<std::error_code>;
  { b.drain(n) } -> std::same_as<std::error_code>;
  { cb.copyout(dst, n) } -> std::same_as<std::size_t>;
  { b.remove(dst, n) } -> std::same_as<std::size_t>;
  { cb.data() };
  { b.prepare(n) };
  { b.commit(n) };
  { b.set_observer(buffer_observer{}) };
} && asio::is_const_buffer_sequence<decltype(std::declval<const B&>().data())>::value &&
    asio::is_mutable_buffer_sequence<decltype(std::declval<B&>().prepare(std::size_t{}))>::value;

/// A buffer that can move its bytes into another of the same type without copying
/// them (evbuffer moves whole segments).
template <class B>
concept segmented_buffer = byte_buffer<B> && requires(B& a, B& b, std::size_t n) {
  { a.add_buffer(b) } -> std::same_as<std::error_code>;
  { a.remove_buffer(b, n) } -> std::same_as<std::size_t>;
};

/// A buffer whose ends can be frozen (the core freezes the input's back and the
/// output's front so user code cannot race the transport).
template <class B>
concept freezable_buffer = byte_buffer<B> && requires(B& b, buffer_end e) {
  { b.freeze(e) };
  { b.unfreeze(e) };
  { b.frozen(e) } -> std::same_as<bool>;
};

}  // namespace bufev
