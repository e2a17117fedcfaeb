// bufev::flat_buffer: one contiguous, growable byte array.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <utility>
#include <vector>

#include <bufev/buffers/concepts.hpp>
#include <bufev/buffers/detail/contiguous_buffer.hpp>

namespace bufev {

/// A byte buffer kept in one contiguous heap array, with a read offset and a write
/// offset. Appends fill the array; when it is full the bytes are moved to the front
/// (if they fill at most half of it) or the array doubles, up to `max_size()`.
///
/// Same operations and error rules as `evbuffer` where they apply (add, prepend,
/// drain, remove, copyout, search, readln, freeze, prepare/commit/consume...), but
/// `data()` is always a single `asio::const_buffer`, which suits parsers that want
/// contiguous input. Appends past `max_size()` fail with `errc::buffer_full`.
///
/// While the front is frozen (a write of data() may be in flight) a growth keeps the
/// old array alive until unfreeze(front), and appends never move the bytes.
///
/// Copying copies the bytes; moving steals the array. The observer and the freeze
/// state are never copied or moved: they stay with the object they were set on,
/// whose observer is told about the size change. Assigning to a buffer with a frozen
/// end throws std::system_error(errc::frozen) and changes nothing.
///
/// Use `bufev::dynamic_buffer(buf)` to hand it to Asio's read algorithms.
class flat_buffer : public detail::contiguous_buffer_base<flat_buffer> {
  using base_type = detail::contiguous_buffer_base<flat_buffer>;
  friend base_type;

 public:
  /// Largest max_size() a flat_buffer accepts (what operator new[] can be asked for).
  static constexpr std::size_t default_max_size =
      static_cast<std::size_t>(std::numeric_limits<std::ptrdiff_t>::max());

  /// An empty buffer; allocates on the first append.
  flat_buffer() noexcept = default;

  /// An empty buffer that never holds more than `max_size` bytes.
  explicit flat_buffer(std::size_t max_size) noexcept
      : max_(std::min(max_size, default_max_size)) {}

  flat_buffer(const flat_buffer& other) : base_type(), max_(other.max_) {
    copy_from(other);
  }

  flat_buffer(flat_buffer&& other) noexcept : base_type(), max_(other.max_) { steal(other); }

  /// Replaces the contents by a copy of `other`'s bytes (and takes its max_size).
  flat_buffer& operator=(const flat_buffer& other) {
    if (this != &other) {
      check_assignable();
      const std::size_t orig = size();
      flat_buffer tmp(other);  // strong guarantee: allocate before touching *this
      release();
      max_ = tmp.max_;
      take_storage(tmp);
      notify(orig, size(), orig);
    }
    return *this;
  }

  /// Takes `other`'s bytes and array; `other` is left empty.
  flat_buffer& operator=(flat_buffer&& other) {
    if (this != &other) {
      check_assignable();
      const std::size_t orig = size();
      release();
      max_ = other.max_;
      steal(other);
      // steal() reported nothing for *this: report the replacement as one change.
      notify(orig, size(), orig);
    }
    return *this;
  }

  ~flat_buffer() { delete[] buf_; }  // retired_ frees itself

  /// The most bytes this buffer will hold.
  std::size_t max_size() const noexcept { return max_; }

  /// Makes capacity() at least `n` so that appends up to that size do not
  /// allocate. errc::buffer_full if n > max_size(); may throw std::bad_alloc.
  std::error_code reserve(std::size_t n) {
    if (n > max_) return errc::buffer_full;
    if (n > cap_) reallocate(n, 0);
    return {};
  }

  /// Frees unused capacity (moves the bytes into an array of exactly size()).
  void shrink_to_fit() {
    if (cap_ == size()) return;
    if (empty() && !frozen(buffer_end::front)) {
      delete[] buf_;
      buf_ = nullptr;
      cap_ = 0;
      in_ = out_ = prepared_ = 0;
      return;
    }
    reallocate(size(), 0);
  }

 private:
  unsigned char* storage() noexcept { return buf_; }
  const unsigned char* storage() const noexcept { return buf_; }
  std::size_t storage_capacity() const noexcept { return cap_; }

  // Doubling growth, at least 64 bytes, never past max_size().
  bool grow_storage(std::size_t min_capacity, std::size_t new_in) {
    if (min_capacity > max_) return false;
    std::size_t cap = std::max<std::size_t>(min_capacity, 64);
    if (cap_ <= max_ / 2) cap = std::max(cap, cap_ * 2);
    reallocate(std::min(cap, max_), new_in);
    return true;
  }

  // New array of `cap` bytes with the readable bytes at `new_in`.
  void reallocate(std::size_t cap, std::size_t new_in) {
    const std::size_t sz = size();
    auto* fresh = new unsigned char[cap];
    if (sz != 0) std::memcpy(fresh + new_in, buf_ + in_, sz);
    if (buf_ != nullptr && frozen(buffer_end::front)) {
      // A write may still be reading the old array: free it at unfreeze(front).
      try {
        retired_.emplace_back(buf_);
      } catch (...) {
        delete[] fresh;
        throw;
      }
    } else {
      delete[] buf_;
    }
    buf_ = fresh;
    cap_ = cap;
    in_ = new_in;
    out_ = new_in + sz;
    prepared_ = 0;
  }

  void release_retired() noexcept { retired_.clear(); }

  void release() noexcept {
    delete[] buf_;
    buf_ = nullptr;
    cap_ = 0;
    in_ = out_ = prepared_ = 0;
  }

  void copy_from(const flat_buffer& other) {
    const std::size_t n = other.size();
    if (n == 0) return;
    buf_ = new unsigned char[n];
    cap_ = n;
    std::memcpy(buf_, other.buf_ + other.in_, n);
    out_ = n;
  }

  // Adopts tmp's array and offsets without notifying anyone (tmp is private).
  void take_storage(flat_buffer& tmp) noexcept {
    buf_ = std::exchange(tmp.buf_, nullptr);
    retired_ = std::move(tmp.retired_);
    cap_ = std::exchange(tmp.cap_, 0);
    in_ = std::exchange(tmp.in_, 0);
    out_ = std::exchange(tmp.out_, 0);
    prepared_ = 0;
    tmp.prepared_ = 0;
  }

  // Adopts other's array; other's observer hears that it became empty.
  void steal(flat_buffer& other) noexcept {
    const std::size_t n = other.size();
    take_storage(other);
    other.notify(n, 0, n);
  }

  unsigned char* buf_ = nullptr;
  std::size_t cap_ = 0;
  std::size_t max_ = default_max_size;
  std::vector<std::unique_ptr<unsigned char[]>> retired_;  // old arrays, see reallocate()
};

static_assert(byte_buffer<flat_buffer> && freezable_buffer<flat_buffer>);

}  // namespace bufev
