// bufev::static_buffer<N>: a fixed-capacity byte buffer stored inside the object.
#pragma once

#include <cstddef>

#include <bufev/buffers/concepts.hpp>
#include <bufev/buffers/detail/contiguous_buffer.hpp>

namespace bufev {

/// A byte buffer of at most `N` bytes kept inline in the object: it never
/// allocates. Same operations and error rules as `flat_buffer`; an append or
/// prepend that does not fit fails with `errc::buffer_full` and adds nothing, and
/// `prepare(n)` throws std::length_error when size() + n > N. When the free room is
/// split between front and back, the bytes are moved to make it contiguous.
///
/// Copying (or moving, which copies) transfers the bytes only; the observer and
/// the freeze state stay with the object they were set on, whose observer is told
/// about the size change. Assigning to a buffer with a frozen end throws
/// std::system_error(errc::frozen) and changes nothing.
///
/// Use `bufev::dynamic_buffer(buf)` to hand it to Asio's read algorithms.
template <std::size_t N>
class static_buffer : public detail::contiguous_buffer_base<static_buffer<N>> {
  static_assert(N > 0,
                "bufev::static_buffer<N> needs N > 0: a zero-capacity buffer could never "
                "hold a byte");

  using base_type = detail::contiguous_buffer_base<static_buffer<N>>;
  friend base_type;

 public:
  /// The fixed capacity.
  static constexpr std::size_t static_capacity = N;

  static_buffer() noexcept = default;
  static_buffer(const static_buffer& other) noexcept : base_type() {
    this->assign_bytes(other.buf_ + other.in_, other.size());
  }
  /// Throws std::system_error(errc::frozen), changing nothing, if an end is frozen.
  static_buffer& operator=(const static_buffer& other) {
    if (this != &other) {
      this->check_assignable();
      this->assign_bytes(other.buf_ + other.in_, other.size());
    }
    return *this;
  }
  // No destructor: nothing to free (the type stays trivially destructible).

  /// Always N.
  std::size_t max_size() const noexcept { return N; }

 private:
  unsigned char* storage() noexcept { return buf_; }
  const unsigned char* storage() const noexcept { return buf_; }
  std::size_t storage_capacity() const noexcept { return N; }
  bool grow_storage(std::size_t, std::size_t) noexcept { return false; }
  void release_retired() noexcept {}

  unsigned char buf_[N];
};

}  // namespace bufev
