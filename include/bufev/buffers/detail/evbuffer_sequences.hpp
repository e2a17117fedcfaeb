// Asio buffer sequences over an evbuffer's segment chain. They hold three pointers
// (no heap allocation) and walk the chain as they are iterated.
#pragma once

#include <algorithm>
#include <cstddef>
#include <iterator>

#include <asio/buffer.hpp>

#include "bufev/buffers/detail/segment.hpp"

namespace bufev::detail {

/// ConstBufferSequence: one asio::const_buffer per segment from `first` to `last`.
/// The size of the last segment is captured when the sequence is made, so bytes
/// appended while an operation uses the sequence are not part of it.
class evbuffer_const_sequence {
 public:
  class const_iterator {
   public:
    using iterator_category = std::bidirectional_iterator_tag;
    using value_type = asio::const_buffer;
    using difference_type = std::ptrdiff_t;
    using pointer = void;
    using reference = asio::const_buffer;

    const_iterator() = default;
    asio::const_buffer operator*() const noexcept {
      return {cur_->data(), cur_ == last_ ? last_size_ : cur_->off};
    }
    const_iterator& operator++() noexcept {
      cur_ = cur_ == last_ ? nullptr : cur_->next;
      return *this;
    }
    const_iterator operator++(int) noexcept {
      auto t = *this;
      ++*this;
      return t;
    }
    /// Bidirectional as Asio asks; walks from the front (sequences are short).
    const_iterator& operator--() noexcept {
      if (cur_ == nullptr) {
        cur_ = last_;
      } else {
        segment* s = first_;
        while (s->next != cur_) s = s->next;
        cur_ = s;
      }
      return *this;
    }
    const_iterator operator--(int) noexcept {
      auto t = *this;
      --*this;
      return t;
    }
    friend bool operator==(const const_iterator& a, const const_iterator& b) noexcept {
      return a.cur_ == b.cur_;
    }

   private:
    friend class evbuffer_const_sequence;
    const_iterator(segment* cur, segment* first, segment* last, std::size_t last_size) noexcept
        : cur_(cur), first_(first), last_(last), last_size_(last_size) {}
    segment* cur_ = nullptr;
    segment* first_ = nullptr;
    segment* last_ = nullptr;
    std::size_t last_size_ = 0;
  };
  using iterator = const_iterator;
  using value_type = asio::const_buffer;

  evbuffer_const_sequence() = default;
  evbuffer_const_sequence(segment* first, segment* last) noexcept
      : first_(first), last_(last), last_size_(last->off) {}
  const_iterator begin() const noexcept { return {first_, first_, last_, last_size_}; }
  const_iterator end() const noexcept { return {nullptr, first_, last_, last_size_}; }

 private:
  segment* first_ = nullptr;
  segment* last_ = nullptr;
  std::size_t last_size_ = 0;
};

/// MutableBufferSequence: the writable space of the segments from `first`, `size`
/// bytes in total (evbuffer::prepare).
class evbuffer_mutable_sequence {
 public:
  class const_iterator {
   public:
    using iterator_category = std::bidirectional_iterator_tag;
    using value_type = asio::mutable_buffer;
    using difference_type = std::ptrdiff_t;
    using pointer = void;
    using reference = asio::mutable_buffer;

    const_iterator() = default;
    asio::mutable_buffer operator*() const noexcept {
      return {cur_->write_ptr(), std::min(cur_->space(), total_ - before_)};
    }
    const_iterator& operator++() noexcept {
      before_ += std::min(cur_->space(), total_ - before_);
      cur_ = before_ == total_ ? nullptr : cur_->next;
      return *this;
    }
    const_iterator operator++(int) noexcept {
      auto t = *this;
      ++*this;
      return t;
    }
    const_iterator& operator--() noexcept {
      segment* target = cur_;
      cur_ = first_;
      before_ = 0;
      for (;;) {
        const_iterator nx = *this;
        ++nx;
        if (nx.cur_ == target) break;
        *this = nx;
      }
      return *this;
    }
    const_iterator operator--(int) noexcept {
      auto t = *this;
      --*this;
      return t;
    }
    friend bool operator==(const const_iterator& a, const const_iterator& b) noexcept {
      return a.cur_ == b.cur_;
    }

   private:
    friend class evbuffer_mutable_sequence;
    const_iterator(segment* cur, segment* first, std::size_t total) noexcept
        : cur_(cur), first_(first), total_(total) {}
    segment* cur_ = nullptr;
    segment* first_ = nullptr;
    std::size_t total_ = 0;
    std::size_t before_ = 0;  ///< bytes in the extents before cur_
  };
  using iterator = const_iterator;
  using value_type = asio::mutable_buffer;

  evbuffer_mutable_sequence() = default;
  evbuffer_mutable_sequence(segment* first, std::size_t size) noexcept : first_(first), size_(size) {}
  const_iterator begin() const noexcept { return {size_ ? first_ : nullptr, first_, size_}; }
  const_iterator end() const noexcept { return {nullptr, first_, size_}; }
  /// Total bytes of the sequence.
  std::size_t size() const noexcept { return size_; }

 private:
  segment* first_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace bufev::detail
