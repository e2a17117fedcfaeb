// bufev::evbuffer: libevent's segmented evbuffer for Asio.
//
// The buffer is a singly linked chain of segments (see detail/segment.hpp):
//
//   head_ ... lwd_ | trailing empty segments ... tail_
//   (all non-empty)  (reserved writable space)
//
// Every segment from head_ to lwd_ ("last with data") holds at least one byte; the
// segments after lwd_ are empty owned segments made by prepare/reserve/expand or kept
// by a drain. Bytes are appended into lwd_'s free space, then into the trailing
// segments, then into a new segment. Freed segments go to a small per-thread cache
// (detail::segment_cache) that new segments come from, so add/drain loops and data
// moving from one buffer into another do not call malloc.
//
// Operations in flight: the bufferevent core freezes the output's front while an
// async write of data() is in flight and the input's back while a read into
// prepare()'s space is in flight; the other end stays open to user code. So no
// operation moves bytes of a buffer whose front is frozen (appends only fill free
// space after the data or new segments; pullup refuses to rearrange), and front-side
// operations (drain, remove, readln, consume, prepend, pullup, moves out of the
// buffer) leave prepared/reserved space where it is and the reservation valid.
//
// Threading: an evbuffer is not synchronised; use it from one thread (or strand) at a
// time. Deferred change callbacks run on the executor given to defer_callbacks, which
// must be the one the buffer is used from.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <functional>
#include <limits>
#include <memory>
#include <new>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>

#include <asio/any_io_executor.hpp>
#include <asio/buffer.hpp>
#include <asio/post.hpp>

#include "bufev/buffers/concepts.hpp"
#include "bufev/buffers/detail/evbuffer_callbacks.hpp"
#include "bufev/buffers/detail/evbuffer_sequences.hpp"
#include "bufev/buffers/detail/segment.hpp"
#include "bufev/buffers/eol.hpp"
#include "bufev/error.hpp"

namespace bufev {

/// A region of an open file at the front of an evbuffer (see evbuffer::front_file).
struct file_region {
  int fd = -1;
  std::uint64_t offset = 0;  ///< file offset of the first byte
  std::size_t length = 0;    ///< bytes of the region still in the buffer
};

/// Memory held by an evbuffer (see evbuffer::memory).
struct evbuffer_memory {
  std::size_t segments = 0;   ///< segments in the chain, empty ones included
  std::size_t allocated = 0;  ///< bytes allocated by the buffer: headers, owned storage,
                              ///< read-in file regions
  std::size_t used = 0;       ///< bytes of data (== size())
};

/// The calling thread's cache of freed segments (see evbuffer::thread_cache_stats).
struct segment_cache_stats {
  std::size_t segments = 0;  ///< segments held now
  std::size_t bytes = 0;     ///< bytes held now (whole allocations)
  std::uint64_t hits = 0;    ///< segment allocations served from the cache
  std::uint64_t misses = 0;  ///< segment allocations that called operator new
};

/// libevent's evbuffer: a chain of segments with zero-copy moves between buffers.
class evbuffer {
  using segment = detail::segment;
  using segment_kind = detail::segment_kind;

 public:
  static constexpr std::size_t npos = std::size_t(-1);
  /// ConstBufferSequence over the data, one buffer per segment; no allocation.
  using const_buffers_type = detail::evbuffer_const_sequence;
  /// MutableBufferSequence over prepared space; no allocation.
  using mutable_buffers_type = detail::evbuffer_mutable_sequence;

  /// Identifies a change callback (add_cb). A default-constructed handle is empty.
  class callback_handle {
   public:
    callback_handle() = default;
    explicit operator bool() const noexcept { return id_ != 0; }
    friend bool operator==(callback_handle, callback_handle) = default;

   private:
    friend class evbuffer;
    explicit callback_handle(std::uint64_t id) noexcept : id_(id) {}
    std::uint64_t id_ = 0;
  };

  // ---- lifetime ------------------------------------------------------------------------

  evbuffer() noexcept = default;

  /// Releases every segment; pending reference cleanups run now. No change callback
  /// runs from the destructor, and deferred callbacks already posted are cancelled.
  ~evbuffer() {
    if (cbs_ && cbs_->deferred) cbs_->deferred->owner = nullptr;
    free_chain();
  }

  /// Moves the data (segments). The observer, change callbacks, callback
  /// deferral and freeze flags stay with the object they were set on: the new buffer
  /// starts with none, `o` keeps its own. `o` is left empty and its observer and
  /// callbacks see the bytes leave ({size, 0, size}). A pending reserve/prepare of `o`
  /// is cancelled.
  evbuffer(evbuffer&& o) noexcept { take_data(o); }

  /// As the move constructor; the bytes this buffer held are released first and its
  /// observer/callbacks see {old size, new size, old size}.
  evbuffer& operator=(evbuffer&& o) noexcept {
    if (this == &o) return *this;
    const std::size_t orig = size_;
    free_chain();
    head_ = tail_ = lwd_ = nullptr;
    size_ = 0;
    take_data(o);
    if (orig || size_) notify(orig, size_, orig);
    return *this;
  }

  evbuffer(const evbuffer&) = delete;
  evbuffer& operator=(const evbuffer&) = delete;

  // ---- size ------------------------------------------------------------------------------

  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  std::size_t max_size() const noexcept { return static_cast<std::size_t>(PTRDIFF_MAX); }

  /// Number of segments holding data (== peek(npos, ...) for all the data).
  std::size_t segment_count() const noexcept {
    std::size_t n = 0;
    if (lwd_)
      for (segment* s = head_;; s = s->next) {
        ++n;
        if (s == lwd_) break;
      }
    return n;
  }

  /// Bytes that can be appended without allocating (free space of the last data
  /// segment and of the reserved empty segments after it).
  std::size_t writable_size() const noexcept {
    std::size_t n = 0;
    for (segment* s = first_writable(); s; s = s->next) n += s->space();
    return n;
  }

  /// Memory accounting (waste = allocated - used).
  evbuffer_memory memory() const noexcept {
    evbuffer_memory m;
    m.used = size_;
    for (segment* s = head_; s; s = s->next) {
      ++m.segments;
      m.allocated += detail::segment_header;
      if (s->kind == segment_kind::owned || (s->kind == segment_kind::file && s->buf)) m.allocated += s->cap;
    }
    return m;
  }

  /// Frees reserved empty segments (unless a reserve/prepare is pending). They go to
  /// the thread's segment cache; trim_thread_cache() returns that to the allocator.
  void shrink_to_fit() noexcept {
    if (wstate_ == wstate::none) drop_trailing_empties();
  }

  /// Counters of the calling thread's segment cache. Every thread keeps the owned
  /// segments it frees (any buffer's), up to 1 MiB, and takes new segments from them;
  /// the cache is freed when the thread exits.
  static segment_cache_stats thread_cache_stats() noexcept {
    const detail::segment_cache* c = detail::segment_cache::local();
    if (!c) return {};
    const auto k = c->counters();
    return {k.segments, k.bytes, k.hits, k.misses};
  }

  /// Frees the calling thread's cached segments now.
  static void trim_thread_cache() noexcept {
    if (detail::segment_cache* c = detail::segment_cache::local()) c->trim();
  }

  // ---- appending and prepending -------------------------------------------------------------

  /// Appends n bytes (copied). Back frozen: errc::frozen.
  std::error_code add(const void* data, std::size_t n) {
    if (frozen_back_) [[unlikely]]
      return errc::frozen;
    if (n == 0) return {};
    wstate_ = wstate::none;
    const std::size_t orig = size_;
    segment* s = lwd_;
    if (s && s->kind == segment_kind::owned && n <= s->space()) [[likely]] {
      std::memcpy(s->write_ptr(), data, n);
      s->off += n;
      size_ += n;
    } else {
      if (n > max_size() - size_) return errc::buffer_full;
      try {
        append_slow(static_cast<const unsigned char*>(data), n);
      } catch (const std::bad_alloc&) {
        return std::make_error_code(std::errc::not_enough_memory);
      }
    }
    notify(orig, n, 0);
    return {};
  }
  std::error_code add(std::string_view s) { return add(s.data(), s.size()); }

  /// Inserts n bytes (copied) before the data. Front frozen: errc::frozen.
  std::error_code prepend(const void* data, std::size_t n) {
    if (frozen_front_) return errc::frozen;
    if (n == 0) return {};
    if (n > max_size() - size_) return errc::buffer_full;
    const auto* p = static_cast<const unsigned char*>(data);
    const std::size_t orig = size_;
    try {
      if (size_ == 0 && wstate_ == wstate::none) {
        append_slow(p, n);
      } else if (size_ == 0) {
        // Keep out of the reserved space: a new segment in front of it.
        segment* ns = new_owned(n, 0);
        ns->misalign = ns->cap - n;
        ns->off = n;
        std::memcpy(ns->data(), p, n);
        push_front(ns);
      } else {
        segment* h = head_;
        const bool writable = h->kind == segment_kind::owned && h->refs == 1;
        if (writable && h->misalign >= n) {
          h->misalign -= n;
          std::memcpy(h->data(), p, n);
          h->off += n;
        } else {
          const std::size_t room = writable ? h->misalign : 0;
          const std::size_t rest = n - room;
          segment* ns = new_owned(rest, 0);
          ns->misalign = ns->cap - rest;
          ns->off = rest;
          std::memcpy(ns->data(), p, rest);
          if (room) {
            h->misalign = 0;
            std::memcpy(h->buf, p + rest, room);
            h->off += room;
          }
          ns->next = head_;
          head_ = ns;
        }
        size_ += n;
      }
    } catch (const std::bad_alloc&) {
      return std::make_error_code(std::errc::not_enough_memory);
    }
    notify(orig, n, 0);
    return {};
  }
  std::error_code prepend(std::string_view s) { return prepend(s.data(), s.size()); }

  /// Moves all of src to our end: segments are relinked, bytes are not copied (a small
  /// src, up to 2 KiB in plain memory segments, is copied into our free space instead,
  /// which keeps the chain dense). Refused (errc::frozen, nothing moved) if our back or
  /// src's front is frozen; `src == *this`: errc::invalid_argument. A pending
  /// reserve/prepare of src stays valid (the segment holding it stays in src; its bytes
  /// are copied or shared).
  std::error_code add_buffer(evbuffer& src) {
    if (&src == this) return errc::invalid_argument;
    if (frozen_back_ || src.frozen_front_) return errc::frozen;
    const std::size_t n = src.size_;
    if (n == 0) return {};
    if (n > max_size() - size_) return errc::buffer_full;
    wstate_ = wstate::none;
    const std::size_t orig = size_;
    const bool files = src.maybe_files_;
    segment* w = first_writable();
    if (n <= small_copy_max && w && w->space() >= n && src.front_is_owned(n)) {
      copy_front_into(src, w, n);
      src.drain_impl(n);
    } else if (!src.move_front(*this, n, false)) {
      return std::make_error_code(std::errc::not_enough_memory);
    }
    maybe_files_ |= files;
    notify(orig, n, 0);
    src.notify(n, 0, n);
    return {};
  }

  /// Moves all of src to our front (segments relinked). Refused (errc::frozen) if our
  /// front or src's front is frozen.
  std::error_code prepend_buffer(evbuffer& src) {
    if (&src == this) return errc::invalid_argument;
    if (frozen_front_ || src.frozen_front_) return errc::frozen;
    const std::size_t n = src.size_;
    if (n == 0) return {};
    if (n > max_size() - size_) return errc::buffer_full;
    const std::size_t orig = size_;
    const bool files = src.maybe_files_;
    if (!src.move_front(*this, n, true)) return std::make_error_code(std::errc::not_enough_memory);
    maybe_files_ |= files;
    notify(orig, n, 0);
    src.notify(n, 0, n);
    return {};
  }

  /// Moves up to n bytes from our front to dst's end and returns how many moved. Whole
  /// segments are relinked; the part of a segment is copied when it is small (<= 2 KiB)
  /// and shared (refcounted, no copy) when larger. A small move into free space of dst
  /// is a plain copy. Returns 0 and moves nothing if our front or dst's back is frozen
  /// (or memory runs out).
  std::size_t remove_buffer(evbuffer& dst, std::size_t n) {
    if (&dst == this || n == 0 || size_ == 0) return 0;
    if (frozen_front_ || dst.frozen_back_) return 0;
    n = std::min(n, size_);
    if (n > dst.max_size() - dst.size_) return 0;
    dst.wstate_ = wstate::none;
    const std::size_t orig = size_, dst_orig = dst.size_;
    const bool files = maybe_files_;
    segment* w = dst.first_writable();
    if (n <= small_copy_max && w && w->space() >= n && front_is_owned(n)) {
      dst.copy_front_into(*this, w, n);
      drain_impl(n);
    } else if (!move_front(dst, n, false)) {
      return 0;
    }
    dst.maybe_files_ |= files;
    dst.notify(dst_orig, n, 0);
    notify(orig, 0, n);
    return n;
  }

  // ---- removing ------------------------------------------------------------------------------

  /// Discards the first n bytes. n > size(): errc::out_of_range and nothing is drained.
  /// Front frozen: errc::frozen. A pending reserve/prepare stays valid.
  std::error_code drain(std::size_t n) {
    if (frozen_front_) return errc::frozen;
    if (n > size_) return errc::out_of_range;
    if (n == 0) return {};
    const std::size_t orig = size_;
    drain_impl(n);
    notify(orig, 0, n);
    return {};
  }

  /// Removes up to n bytes into out; returns the count (0 if the front is frozen).
  std::size_t remove(void* out, std::size_t n) {
    if (frozen_front_) return 0;
    if (segment* h = head_; h && h->buf && n <= h->off) [[likely]] {
      // All from the first segment (a message read whole): no chain walk.
      if (n == 0) return 0;
      std::memcpy(out, h->data(), n);
    } else {
      n = copyout_from(0, out, n);
    }
    if (n) {
      const std::size_t orig = size_;
      drain_impl(n);
      notify(orig, 0, n);
    }
    return n;
  }

  /// Copies up to n bytes from the front without removing them; returns the count.
  std::size_t copyout(void* out, std::size_t n) const { return copyout_from(0, out, n); }

  /// Copies up to n bytes starting at offset pos; returns the count (0 if pos >= size()).
  /// File regions are read with pread; if that fails the count stops short.
  std::size_t copyout_from(std::size_t pos, void* out, std::size_t n) const {
    if (pos >= size_) return 0;
    n = std::min(n, size_ - pos);
    auto* o = static_cast<unsigned char*>(out);
    segment* s = head_;
    while (pos >= s->off) {
      pos -= s->off;
      s = s->next;
    }
    std::size_t done = 0;
    while (done < n) {
      const std::size_t k = std::min(s->off - pos, n - done);
      if (s->buf) [[likely]] {
        std::memcpy(o + done, s->data() + pos, k);
      } else {
        const auto* r = static_cast<const detail::file_segment*>(s->storage_root());
        if (detail::read_file_at(r->fd, o + done, k, r->offset + s->misalign + pos)) break;
      }
      done += k;
      pos = 0;
      s = s->next;
    }
    return done;
  }

  // ---- zero-copy access -------------------------------------------------------------------------

  /// All readable bytes, one asio::const_buffer per segment. Valid until the buffer is
  /// modified. File regions are read into memory first (see materialize()); if that
  /// fails this calls std::terminate, so call materialize() first when a buffer holds
  /// file segments and I/O errors must be handled.
  const_buffers_type data() const noexcept {
    if (maybe_files_) [[unlikely]]
      materialize_or_terminate(size_);
    return lwd_ ? const_buffers_type(head_, lwd_) : const_buffers_type();
  }

  /// Fills up to out.size() extents covering the first n bytes (npos: all; the last
  /// extent is cut to end at n) and returns how many extents that takes, which may be
  /// more than out.size() (libevent's evbuffer_peek). Reads file regions into memory
  /// as data() does, for the extents it fills.
  std::size_t peek(std::size_t n, std::span<asio::const_buffer> out) const noexcept {
    n = std::min(n, size_);
    std::size_t i = 0;
    for (segment* s = head_; n > 0; s = s->next, ++i) {
      const std::size_t k = std::min(s->off, n);
      if (i < out.size()) {
        if (!s->buf) [[unlikely]]
          ensure_or_terminate(s);
        out[i] = asio::const_buffer(s->data(), k);
      }
      n -= k;
    }
    return i;
  }

  /// Makes the first n bytes (npos: all) contiguous and returns a pointer to them.
  /// n > size(): nullptr and errc::out_of_range. Empty buffer: nullptr, no error.
  /// If the bytes are not contiguous yet and the front is frozen (an operation may be
  /// reading them): nullptr and errc::frozen.
  unsigned char* pullup(std::size_t n, std::error_code& ec) {
    ec.clear();
    if (n == npos) n = size_;
    if (n > size_) {
      ec = errc::out_of_range;
      return nullptr;
    }
    if (size_ == 0) return nullptr;
    segment* h = head_;
    if (h->off < n) {
      if (frozen_front_) {
        ec = errc::frozen;
        return nullptr;
      }
      try {
        if (h->kind == segment_kind::owned && h->refs == 1 && h->cap >= n) {
          // Room in the head segment: copy what follows into its free space.
          if (h->cap - h->misalign < n) {
            std::memmove(h->buf, h->data(), h->off);
            h->misalign = 0;
          }
          const std::size_t k = n - h->off;
          if (copyout_from(h->off, h->write_ptr(), k) != k) {
            ec = std::make_error_code(std::errc::io_error);
            return nullptr;
          }
          head_ = h->next;
          size_ -= h->off;
          drain_impl(k);
          h->off += k;
          push_front(h);
        } else {
          segment* ns = new_owned(n, 0);
          if (copyout_from(0, ns->buf, n) != n) {
            release(ns);
            ec = std::make_error_code(std::errc::io_error);
            return nullptr;
          }
          ns->off = n;
          drain_impl(n);
          push_front(ns);
        }
      } catch (const std::bad_alloc&) {
        ec = std::make_error_code(std::errc::not_enough_memory);
        return nullptr;
      }
      h = head_;
    }
    if (auto e = detail::ensure_memory(h)) {
      ec = e;
      return nullptr;
    }
    return h->data();
  }

  // ---- scatter append (libevent's reserve_space / commit_space) -----------------------------

  /// Makes at least n bytes writable in at most extents.size() extents, fills the
  /// extents (each the whole free space of a segment) and returns how many it used.
  /// The extents stay valid until commit or the next operation on the back of the
  /// buffer (add, add_buffer into it, reserve, prepare, expand...); draining the front
  /// keeps them valid. Errors: back frozen (errc::frozen), no extents
  /// (errc::invalid_argument), out of memory; 0 is returned then.
  std::size_t reserve(std::size_t n, std::span<asio::mutable_buffer> extents, std::error_code& ec) {
    ec.clear();
    if (frozen_back_) {
      ec = errc::frozen;
      return 0;
    }
    if (extents.empty()) {
      ec = errc::invalid_argument;
      return 0;
    }
    if (n > max_size() - size_) {
      ec = errc::buffer_full;
      return 0;
    }
    wstate_ = wstate::none;
    n = std::max<std::size_t>(n, 1);
    segment* s0;
    try {
      s0 = make_space(n, extents.size());
    } catch (const std::bad_alloc&) {
      ec = std::make_error_code(std::errc::not_enough_memory);
      return 0;
    }
    std::size_t i = 0, total = 0;
    for (segment* s = s0; s && i < extents.size() && total < n; s = s->next) {
      extents[i++] = asio::mutable_buffer(s->write_ptr(), s->space());
      total += s->space();
    }
    wstate_ = wstate::reserved;
    wstart_ = s0;
    wsize_ = i;
    return i;
  }

  /// Commits bytes written into extents from the last reserve(). Extents may be
  /// shortened and trailing ones dropped (commit fewer bytes than reserved). Extents
  /// that are not a prefix of the last reservation, or a reservation ended by another
  /// back-side operation: errc::not_reserved. Back frozen: errc::frozen.
  std::error_code commit(std::span<const asio::mutable_buffer> extents) {
    if (frozen_back_) return errc::frozen;
    if (wstate_ != wstate::reserved || extents.size() > wsize_) return errc::not_reserved;
    std::size_t last = npos, added = 0;
    {
      segment* s = wstart_;
      for (std::size_t i = 0; i < extents.size(); ++i, s = s->next) {
        if (!s || extents[i].data() != s->write_ptr() || extents[i].size() > s->space())
          return errc::not_reserved;
        if (extents[i].size()) last = i;
        added += extents[i].size();
      }
    }
    wstate_ = wstate::none;
    if (last == npos) return {};
    const std::size_t orig = size_;
    segment* pred = lwd_;  // chain predecessor of the segment being looked at (null: head)
    segment* s = wstart_;
    for (std::size_t i = 0; i <= last; ++i) {
      segment* nx = s->next;
      const std::size_t k = extents[i].size();
      if (k == 0 && s != lwd_) {
        // An empty extent before a filled one: unlink it to keep the data region dense.
        (pred ? pred->next : head_) = nx;
        release(s);
      } else {
        s->off += k;
        pred = s;
      }
      s = nx;
    }
    lwd_ = pred;
    if (!lwd_->next) tail_ = lwd_;
    size_ += added;
    notify(orig, added, 0);
    return {};
  }

  /// Makes n bytes appendable without a further allocation. Back frozen: errc::frozen.
  std::error_code expand(std::size_t n) {
    if (frozen_back_) return errc::frozen;
    if (n > max_size() - size_) return errc::buffer_full;
    wstate_ = wstate::none;
    if (n == 0) return {};
    try {
      make_space(n, npos);
    } catch (const std::bad_alloc&) {
      return std::make_error_code(std::errc::not_enough_memory);
    }
    return {};
  }

  // ---- Asio DynamicBuffer_v1 style ------------------------------------------------------------

  /// n writable bytes as a MutableBufferSequence (free space of the last data segment,
  /// then reserved segments, allocating at most one new segment). Throws
  /// std::length_error past max_size(), std::system_error(errc::frozen) if the back is
  /// frozen, std::bad_alloc. Valid until commit or the next back-side operation.
  mutable_buffers_type prepare(std::size_t n) {
    if (frozen_back_) throw std::system_error(make_error_code(errc::frozen), "bufev::evbuffer::prepare");
    if (n > max_size() - size_) throw std::length_error("bufev::evbuffer::prepare: too large");
    wstate_ = wstate::none;
    segment* s0 = n ? make_space(n, npos) : first_writable();
    wstate_ = wstate::prepared;
    wstart_ = s0;
    wsize_ = n;
    return {s0, n};
  }

  /// Makes the first n prepared bytes readable (clamped to the prepared size). Does
  /// nothing without a valid prepare() or when the back is frozen.
  void commit(std::size_t n) {
    if (wstate_ != wstate::prepared || frozen_back_) return;
    wstate_ = wstate::none;
    n = std::min(n, wsize_);
    if (n == 0) return;
    const std::size_t orig = size_;
    std::size_t left = n;
    for (segment* s = wstart_; left; s = s->next) {
      const std::size_t k = std::min(s->space(), left);
      if (k) {
        s->off += k;
        left -= k;
        lwd_ = s;
      }
    }
    size_ += n;
    notify(orig, n, 0);
  }

  /// Drains min(n, size()); does nothing when the front is frozen.
  void consume(std::size_t n) {
    if (frozen_front_) return;
    n = std::min(n, size_);
    if (n == 0) return;
    const std::size_t orig = size_;
    drain_impl(n);
    notify(orig, 0, n);
  }

  // ---- search ------------------------------------------------------------------------------

  /// Offset of the first occurrence of `what` at or after `start`, or npos.
  std::size_t search(const void* what, std::size_t len, std::size_t start = 0) const noexcept {
    return search_range(what, len, start, size_);
  }
  std::size_t search(std::string_view what, std::size_t start = 0) const noexcept {
    return search_range(what.data(), what.size(), start, size_);
  }
  /// A string literal: search("abc", 5) starts at offset 5 (without this overload the
  /// literal would pick search(const void*, len) and mean 5 bytes of "abc").
  template <std::size_t N>
  std::size_t search(const char (&what)[N], std::size_t start = 0) const noexcept {
    return search(std::string_view(what), start);
  }

  /// As search, but the match must end at or before `end` (clamped to size()).
  std::size_t search_range(const void* what, std::size_t len, std::size_t start,
                           std::size_t end) const noexcept {
    end = std::min(end, size_);
    if (start > end || len > end - start) return npos;
    if (len == 0) return start;
    const auto* w = static_cast<const unsigned char*>(what);
    const std::size_t last_start = end - len;
    const unsigned char first = w[0];
    cursor c = seek(start);
    std::size_t i = c.pos - c.base;  // index in c.seg
    while (c.seg && c.base + i <= last_start) {
      segment* s = c.seg;
      if (!s->buf) [[unlikely]]
        ensure_or_terminate(s);
      const unsigned char* d = s->data();
      // Candidates in this segment start before lim; those before fit end within it.
      const std::size_t lim = std::min(s->off, last_start - c.base + 1);
      const std::size_t fit = s->off >= len ? s->off - len + 1 : 0;
      while (i < lim) {
        const auto* hit = static_cast<const unsigned char*>(std::memchr(d + i, first, lim - i));
        if (!hit) break;
        const std::size_t hi = static_cast<std::size_t>(hit - d);
        if (hi < fit ? std::memcmp(hit + 1, w + 1, len - 1) == 0 : matches_at(s, hi, w, len))
          return c.base + hi;
        i = hi + 1;
      }
      c.base += s->off;
      i = 0;
      c.seg = s == lwd_ ? nullptr : s->next;
    }
    return npos;
  }

  /// The first end of line at or after `start` in the given style.
  eol_match search_eol(std::size_t start, eol_style style) const noexcept {
    return find_eol(start, style, size_);
  }

  /// Removes and returns one line without its end of line.
  /// - No complete line: nullopt, the buffer is intact, ec clear.
  /// - No end of line within max_len bytes and more than max_len bytes buffered:
  ///   nullopt, ec = errc::line_too_long, the buffer is intact.
  /// - Front frozen: nullopt, errc::frozen.
  std::optional<std::string> readln(eol_style style, std::size_t max_len, std::error_code& ec) {
    ec.clear();
    if (frozen_front_) {
      ec = errc::frozen;
      return std::nullopt;
    }
    if (size_ == 0) return std::nullopt;
    const eol_match m = find_eol(0, style, std::min(max_len, size_));
    if (!m.found()) {
      if (size_ > max_len) {
        // "...\r" with the CR at max_len may still become a CRLF at max_len.
        const bool pending_cr = (style == eol_style::crlf || style == eol_style::crlf_strict) &&
                                size_ == max_len + 1 && byte_at(max_len) == '\r';
        if (!pending_cr) ec = errc::line_too_long;
      }
      return std::nullopt;
    }
    std::optional<std::string> line;
    segment* h = head_;
    if (h->buf && h->off >= m.pos) [[likely]] {
      line.emplace(reinterpret_cast<const char*>(h->data()), m.pos);
    } else {
      line.emplace(m.pos, '\0');
      if (copyout_from(0, line->data(), m.pos) != m.pos) {
        ec = std::make_error_code(std::errc::io_error);
        return std::nullopt;
      }
    }
    const std::size_t orig = size_, n = m.pos + m.length;
    drain_impl(n);
    notify(orig, 0, n);
    return line;
  }

  // ---- external memory -----------------------------------------------------------------------

  /// Appends n bytes of immutable memory without copying them. `cleanup(data, n)` runs
  /// exactly once, when the last byte is drained from every buffer that holds it (see
  /// add_buffer_reference, remove_buffer) or those buffers are destroyed. n == 0: the
  /// cleanup runs at once. On error (back frozen, out of memory) the cleanup does not
  /// run and the caller keeps the memory.
  template <class Cleanup>
  std::error_code add_reference(const void* data, std::size_t n, Cleanup&& cleanup) {
    using F = std::decay_t<Cleanup>;
    static_assert(std::is_invocable_v<F&, const void*, std::size_t>,
                  "cleanup must be callable as cleanup(const void* data, std::size_t n)");
    if (frozen_back_) return errc::frozen;
    if (n == 0) {
      cleanup(data, n);
      return {};
    }
    if (n > max_size() - size_) return errc::buffer_full;
    segment* s;
    try {
      auto* r = new detail::reference_segment<F>(std::forward<Cleanup>(cleanup));
      r->dispose = &detail::reference_segment<F>::dispose_fn;
      s = r;
    } catch (const std::bad_alloc&) {
      return std::make_error_code(std::errc::not_enough_memory);
    }
    return link_reference(s, data, n);
  }

  /// Appends n bytes of immutable memory without copying them; nothing is called when
  /// the buffer lets go of it.
  std::error_code add_reference(const void* data, std::size_t n) {
    if (frozen_back_) return errc::frozen;
    if (n == 0) return {};
    if (n > max_size() - size_) return errc::buffer_full;
    segment* s;
    try {
      auto* r = new detail::plain_reference_segment();
      r->dispose = &detail::plain_reference_segment::dispose_fn;
      s = r;
    } catch (const std::bad_alloc&) {
      return std::make_error_code(std::errc::not_enough_memory);
    }
    return link_reference(s, data, n);
  }

  /// Appends src's bytes without copying or removing them: both buffers then share the
  /// storage (refcounted) and drain it independently; reference cleanups run when the
  /// last buffer lets go. src's shared segments take no more prepends in place (appends
  /// still fill them). Back frozen: errc::frozen; `src == *this`: errc::invalid_argument.
  std::error_code add_buffer_reference(const evbuffer& src) {
    if (&src == this) return errc::invalid_argument;
    if (frozen_back_) return errc::frozen;
    const std::size_t n = src.size_;
    if (n == 0) return {};
    if (n > max_size() - size_) return errc::buffer_full;
    segment* first = nullptr;
    segment* last = nullptr;
    try {
      for (segment* s = src.head_;; s = s->next) {
        segment* v = detail::new_view(s, 0, s->off);
        (last ? last->next : first) = v;
        last = v;
        if (s == src.lwd_) break;
      }
    } catch (const std::bad_alloc&) {
      while (first) {
        segment* nx = first->next;
        detail::destroy_segment(first);
        first = nx;
      }
      return std::make_error_code(std::errc::not_enough_memory);
    }
    wstate_ = wstate::none;
    const std::size_t orig = size_;
    link_after_lwd(first, last, n);
    maybe_files_ |= src.maybe_files_;
    notify(orig, n, 0);
    return {};
  }

  // ---- file segments ------------------------------------------------------------------------

  /// Appends `length` bytes of the open file `fd` starting at `offset`, without reading
  /// them. Socket transports send such a region with sendfile (see front_file());
  /// copyout reads it with pread, and data()/peek/pullup/search/readln read it into
  /// memory when they need it. With close_on_drain the buffer owns fd and closes it
  /// when the last byte of the region is gone (also on length == 0). On error (back
  /// frozen, fd < 0: errc::invalid_argument, out of memory) fd is not closed.
  std::error_code add_file(int fd, std::uint64_t offset, std::size_t length, bool close_on_drain = true) {
    if (frozen_back_) return errc::frozen;
    if (fd < 0) return errc::invalid_argument;
    if (length == 0) {
      if (close_on_drain) detail::close_fd(fd);
      return {};
    }
    if (length > max_size() - size_) return errc::buffer_full;
    detail::file_segment* f;
    try {
      f = new detail::file_segment();
    } catch (const std::bad_alloc&) {
      return std::make_error_code(std::errc::not_enough_memory);
    }
    f->kind = segment_kind::file;
    f->dispose = &detail::file_segment::dispose_fn;
    f->fd = fd;
    f->offset = offset;
    f->owns_fd = close_on_drain;
    f->cap = length;
    f->off = length;
    wstate_ = wstate::none;
    const std::size_t orig = size_;
    link_after_lwd(f, f, length);
    maybe_files_ = true;
    notify(orig, length, 0);
    return {};
  }

  /// The file region at the front of the buffer, if the first segment is one: a socket
  /// transport sends it with sendfile(fd, offset, length) and then drains what it sent.
  std::optional<file_region> front_file() const noexcept {
    if (!lwd_ || !head_->file_backed()) return std::nullopt;
    const auto* r = static_cast<const detail::file_segment*>(head_->storage_root());
    return file_region{r->fd, r->offset + head_->misalign, head_->off};
  }

  /// Bytes before the first file segment (size() if there is none): a transport can
  /// gather that many bytes with peek() without reading any file region into memory.
  std::size_t bytes_before_file() const noexcept {
    if (!maybe_files_) return size_;
    std::size_t n = 0;
    for (segment* s = head_; s && n < size_ && !s->file_backed(); s = s->next) n += s->off;
    return n;
  }

  /// Reads every file region of the buffer into memory, so that data()/peek/search
  /// cannot fail afterwards. Returns the first I/O or allocation error.
  std::error_code materialize() const noexcept {
    if (!maybe_files_) return {};
    for (segment* s = head_; s && s->off; s = s->next)
      if (auto ec = detail::ensure_memory(s)) return ec;
    return {};
  }

  // ---- change callbacks ---------------------------------------------------------------------

  /// Adds a callback called after each change of the size with
  /// buffer_change{orig_size, n_added, n_deleted} (libevent's evbuffer_add_cb).
  /// `f` is callable as f(evbuffer&, const buffer_change&) or f(const buffer_change&).
  /// Callbacks run in the order they were added, after the observer. A callback may
  /// modify the buffer and add or remove callbacks; it must not destroy the buffer.
  template <class F>
  callback_handle add_cb(F&& f) {
    auto& c = callbacks();
    auto e = std::make_shared<detail::evbuffer_cb_entry>();
    e->id = c.next_id++;
    using D = std::decay_t<F>;
    if constexpr (std::is_invocable_v<D&, evbuffer&, const buffer_change&>) {
      e->fn = std::forward<F>(f);
    } else {
      static_assert(std::is_invocable_v<D&, const buffer_change&>,
                    "callback must be callable as f(evbuffer&, const buffer_change&) or f(const buffer_change&)");
      e->fn = [g = D(std::forward<F>(f))](evbuffer&, const buffer_change& ch) mutable { g(ch); };
    }
    c.list.push_back(std::move(e));
    return callback_handle(c.list.back()->id);
  }

  /// Removes a callback; it is not called again (not even for a pending deferred
  /// change). Returns false if the handle is unknown.
  bool remove_cb(callback_handle h) noexcept {
    if (!cbs_ || !h) return false;
    auto& c = *cbs_;
    for (auto it = c.list.begin(); it != c.list.end(); ++it) {
      if ((*it)->id != h.id_ || (*it)->removed) continue;
      if (c.dispatching) {
        (*it)->removed = true;
        c.need_compact = true;
      } else {
        c.list.erase(it);
      }
      return true;
    }
    return false;
  }

  /// Enables or disables a callback without removing it (libevent's
  /// evbuffer_cb_set_flags / clear_flags). Returns false if the handle is unknown.
  bool set_cb_enabled(callback_handle h, bool enabled) noexcept {
    if (auto* e = find_cb(h)) {
      e->enabled = enabled;
      return true;
    }
    return false;
  }
  bool cb_enabled(callback_handle h) const noexcept {
    auto* e = find_cb(h);
    return e && e->enabled;
  }

  /// Defers change callbacks (libevent's evbuffer_defer_callbacks): instead of running
  /// inline, they are posted to `ex` and run later with the changes since the last
  /// delivery coalesced: orig_size of the first change, n_added and n_deleted summed.
  /// They never run after the buffer is destroyed. An empty executor switches back to
  /// inline calls (a change already posted is still delivered). The observer is never
  /// deferred.
  void defer_callbacks(asio::any_io_executor ex) {
    auto& c = callbacks();
    c.executor = std::move(ex);
    if (c.executor && !c.deferred) {
      c.deferred = std::make_shared<detail::evbuffer_deferred_state>();
      c.deferred->owner = this;
    }
  }

  // ---- freezing and the core's observer -------------------------------------------------------

  /// Freezes one end (libevent's evbuffer_freeze). A frozen back refuses add, add_reference,
  /// add_file, add_buffer/add_buffer_reference/remove_buffer into this buffer, reserve,
  /// commit, expand and prepare; a frozen front refuses drain, remove, readln, consume,
  /// prepend, prepend_buffer and moves out of this buffer (add_buffer/prepend_buffer from
  /// it, remove_buffer). Refused operations change nothing and report errc::frozen
  /// (remove/remove_buffer return 0, prepare throws, commit(n)/consume do nothing).
  void freeze(buffer_end e) noexcept { (e == buffer_end::front ? frozen_front_ : frozen_back_) = true; }
  void unfreeze(buffer_end e) noexcept { (e == buffer_end::front ? frozen_front_ : frozen_back_) = false; }
  bool frozen(buffer_end e) const noexcept { return e == buffer_end::front ? frozen_front_ : frozen_back_; }

  /// The bufferevent core's hook: called inline after every change of the size.
  void set_observer(buffer_observer o) noexcept { observer_ = o; }

 private:
  enum class wstate : std::uint8_t { none, prepared, reserved };

  /// Partial segments up to this size are copied by add_buffer/remove_buffer rather
  /// than relinked or shared.
  static constexpr std::size_t small_copy_max = 2048;
  /// lwd_ is moved to the start of its segment to make room when it holds at most this.
  static constexpr std::size_t realign_max = 2048;

  struct cursor {
    segment* seg;      ///< segment holding pos (null: past the data)
    std::size_t base;  ///< offset of seg's first byte
    std::size_t pos;
  };

  // ---- chain helpers ----------------------------------------------------------------------

  segment* first_writable() const noexcept {
    if (lwd_) return lwd_->kind == segment_kind::owned && lwd_->space() ? lwd_ : lwd_->next;
    return head_;
  }

  bool reserved_in(const segment* s) const noexcept { return wstate_ != wstate::none && wstart_ == s; }

  /// An owned segment for at least max(need, want) bytes. Throws std::bad_alloc.
  static segment* new_owned(std::size_t need, std::size_t want) {
    return detail::new_owned_segment(detail::owned_capacity_for(std::max(need, want)));
  }

  /// Growth for appends: double the tail's allocation up to segment_auto_max.
  std::size_t growth_hint() const noexcept {
    if (!tail_) return 0;
    const std::size_t total = std::min(tail_->cap, detail::segment_auto_max) + detail::segment_header;
    return std::min(2 * total, detail::segment_auto_max) - detail::segment_header;
  }

  /// Drops the chain's hold on s (a freed owned segment goes to the thread's cache).
  static void release(segment* s) noexcept { detail::release_segment(s); }

  void free_chain() noexcept {
    for (segment* s = head_; s;) {
      segment* nx = s->next;
      detail::release_segment(s);
      s = nx;
    }
  }

  void take_data(evbuffer& o) noexcept {
    head_ = std::exchange(o.head_, nullptr);
    tail_ = std::exchange(o.tail_, nullptr);
    lwd_ = std::exchange(o.lwd_, nullptr);
    size_ = std::exchange(o.size_, 0);
    maybe_files_ = std::exchange(o.maybe_files_, false);
    wstate_ = wstate::none;
    o.wstate_ = wstate::none;
    if (size_) o.notify(size_, 0, size_);
  }

  void push_front(segment* s) noexcept {
    s->next = head_;
    head_ = s;
    if (!tail_) tail_ = s;
    if (!lwd_) lwd_ = s;
    size_ += s->off;
  }

  /// Inserts the data segments first..last after lwd_ (before reserved empty segments).
  void link_after_lwd(segment* first, segment* last, std::size_t n) noexcept {
    if (lwd_) {
      last->next = lwd_->next;
      lwd_->next = first;
    } else {
      last->next = head_;
      head_ = first;
    }
    if (!last->next) tail_ = last;
    lwd_ = last;
    size_ += n;
  }

  std::error_code link_reference(segment* s, const void* data, std::size_t n) {
    s->kind = segment_kind::reference;
    s->buf = static_cast<unsigned char*>(const_cast<void*>(data));
    s->cap = n;
    s->off = n;
    wstate_ = wstate::none;
    const std::size_t orig = size_;
    link_after_lwd(s, s, n);
    notify(orig, n, 0);
    return {};
  }

  /// Moves the first n (1..size_) bytes to dst's end (to_front: dst's front) without
  /// checks or notifications. Whole segments are relinked, up to the segment that
  /// holds a pending reservation (it stays here); the rest of the next segment is
  /// copied into a new segment when small, else shared through a view. Returns n, or
  /// 0 (nothing moved) when that one allocation fails.
  [[gnu::noinline]] std::size_t move_front(evbuffer& dst, std::size_t n, bool to_front) noexcept {
    segment* last = nullptr;
    std::size_t whole = 0;
    if (n == size_ && !reserved_in(lwd_)) {
      last = lwd_;  // everything: relink the whole chain without walking it
      whole = n;
    } else {
      for (segment* s = head_; whole + s->off <= n && !reserved_in(s); s = s->next) {
        last = s;
        whole += s->off;
        if (s == lwd_) break;
      }
    }
    const std::size_t rest = n - whole;  // lies within one segment
    segment* piece = nullptr;
    if (rest) {
      segment* part = last ? last->next : head_;
      try {
        if (rest <= small_copy_max && !part->file_backed()) {
          piece = detail::new_owned_segment(detail::owned_capacity_for(rest));
          std::memcpy(piece->buf, part->data(), rest);
          piece->off = rest;
        } else {
          piece = detail::new_view(part, 0, rest);
        }
      } catch (const std::bad_alloc&) {
        return 0;
      }
    }
    segment* first = piece;
    segment* chain_last = piece;
    if (last) {
      first = head_;
      head_ = last->next;
      if (last == lwd_) {
        lwd_ = nullptr;
        if (!head_) tail_ = nullptr;
      }
      last->next = piece;
      if (!piece) chain_last = last;
      size_ -= whole;
    }
    if (rest) drain_impl(rest);
    if (size_ == 0) maybe_files_ = false;
    if (to_front) {
      chain_last->next = dst.head_;
      dst.head_ = first;
      if (!dst.lwd_) dst.lwd_ = chain_last;
      if (!dst.tail_) dst.tail_ = chain_last;
      dst.size_ += n;
    } else {
      dst.link_after_lwd(first, chain_last, n);
    }
    return n;
  }

  void drop_trailing_empties() noexcept {
    segment* s = lwd_ ? lwd_->next : head_;
    (lwd_ ? lwd_->next : head_) = nullptr;
    tail_ = lwd_;
    while (s) {
      segment* nx = s->next;
      release(s);
      s = nx;
    }
  }

  /// Discards n <= size_ bytes from the front. When the last data segment empties and
  /// it can take appends, it stays in the chain as reserved space (so add/drain loops
  /// reuse it and a pending reservation in it stays valid).
  void drain_impl(std::size_t n) noexcept {
    if (n == 0) return;
    segment* h = head_;
    if (n < h->off) [[likely]] {
      h->misalign += n;
      h->off -= n;
      size_ -= n;
      return;
    }
    if (h == lwd_ && n == h->off && h->kind == segment_kind::owned && wstate_ == wstate::none && h->refs == 1 &&
        !h->next) {
      // All of the only segment (a message read whole): keep it, as below.
      h->misalign = h->off = 0;
      size_ = 0;
      lwd_ = nullptr;
      maybe_files_ = false;
      return;
    }
    drain_chain(n);
  }

  // Out of line: keeps drain_impl's fast paths small enough to inline.
  [[gnu::noinline]] void drain_chain(std::size_t n) noexcept {
    while (n) {
      segment* s = head_;
      if (n < s->off) {
        s->misalign += n;
        s->off -= n;
        size_ -= n;
        return;
      }
      n -= s->off;
      size_ -= s->off;
      if (s == lwd_) {
        lwd_ = nullptr;
        maybe_files_ = false;
        // Kept if it holds the pending reservation, or if it is the tail and nothing
        // is reserved (a commit after it would leave an empty segment inside the data;
        // keeping segments that are not the tail would pile up empty segments).
        const bool reserved = reserved_in(s);
        if (s->kind == segment_kind::owned &&
            (reserved || (wstate_ == wstate::none && s->refs == 1 && !s->next))) {
          s->misalign = reserved ? s->misalign + s->off : 0;
          s->off = 0;
          return;
        }
      }
      head_ = s->next;
      if (!head_) tail_ = nullptr;
      release(s);
    }
  }

  /// Appends n > 0 bytes after the fast path failed. Allocates (at most one segment)
  /// before copying anything, so std::bad_alloc leaves the buffer unchanged.
  void append_slow(const unsigned char* p, std::size_t n) {
    std::size_t avail = 0;
    for (segment* s = first_writable(); s; s = s->next) avail += s->space();
    if (avail < n) {
      segment* ns = new_owned(n - avail, growth_hint());
      (tail_ ? tail_->next : head_) = ns;
      tail_ = ns;
    }
    for (segment* s = first_writable(); n; s = s->next) {
      const std::size_t k = std::min(s->space(), n);
      if (!k) continue;
      std::memcpy(s->write_ptr(), p, k);
      s->off += k;
      size_ += k;
      p += k;
      n -= k;
      lwd_ = s;
    }
  }

  void append_bytes(const unsigned char* p, std::size_t n) {
    segment* s = lwd_;
    if (s && s->kind == segment_kind::owned && n <= s->space()) {
      std::memcpy(s->write_ptr(), p, n);
      s->off += n;
      size_ += n;
    } else {
      append_slow(p, n);
    }
  }

  /// Ensures n writable bytes within max_ext segments from first_writable() and
  /// returns that first segment. Throws std::bad_alloc (state stays consistent).
  segment* make_space(std::size_t n, std::size_t max_ext) {
    segment* s0 = first_writable();
    {
      std::size_t avail = 0, k = 0;
      for (segment* s = s0; s && k < max_ext; s = s->next, ++k) {
        avail += s->space();
        if (avail >= n) return s0;
      }
    }
    // Cheap realignment: move a small lwd_ to the start of its own segment.
    if (segment* l = lwd_; l && !frozen_front_ && l->kind == segment_kind::owned && l->refs == 1 && l->misalign &&
                           l->off <= realign_max && l->off < l->cap / 2 && l->cap - l->off >= n) {
      std::memmove(l->buf, l->data(), l->off);
      l->misalign = 0;
      return l;
    }
    drop_trailing_empties();
    std::size_t have = 0;
    if (max_ext >= 2 && lwd_ && lwd_->kind == segment_kind::owned) have = lwd_->space();
    segment* ns = new_owned(n - have, growth_hint());
    (tail_ ? tail_->next : head_) = ns;
    tail_ = ns;
    return have ? lwd_ : ns;
  }

  /// True if the first n bytes lie in owned segments (plain memory with no cleanup).
  bool front_is_owned(std::size_t n) const noexcept {
    if (n <= head_->off) [[likely]]
      return head_->kind == segment_kind::owned;
    for (segment* s = head_; n; s = s->next) {
      if (s->kind != segment_kind::owned) return false;
      n -= std::min(n, s->off);
    }
    return true;
  }

  /// Copies src's first n bytes (owned segments) into w's free space and on (no
  /// allocation: the caller checked w->space() >= n).
  void copy_front_into(const evbuffer& src, segment* w, std::size_t n) noexcept {
    unsigned char* out = w->write_ptr();
    std::size_t done = 0;
    if (n <= src.head_->off) [[likely]] {
      std::memcpy(out, src.head_->data(), n);
      done = n;
    }
    for (segment* s = src.head_; done < n; s = s->next) {
      const std::size_t k = std::min(s->off, n - done);
      std::memcpy(out + done, s->data(), k);
      done += k;
    }
    w->off += n;
    size_ += n;
    lwd_ = w;
  }

  cursor seek(std::size_t pos) const noexcept {
    cursor c{lwd_ ? head_ : nullptr, 0, pos};
    while (c.seg && c.base + c.seg->off <= pos) {
      c.base += c.seg->off;
      c.seg = c.seg == lwd_ ? nullptr : c.seg->next;
    }
    return c;
  }

  unsigned char byte_at(std::size_t pos) const noexcept {
    cursor c = seek(pos);
    if (!c.seg->buf) [[unlikely]]
      ensure_or_terminate(c.seg);
    return c.seg->data()[pos - c.base];
  }

  /// Does `w` (len bytes, all present in the buffer) occur at index i of segment s?
  bool matches_at(segment* s, std::size_t i, const unsigned char* w, std::size_t len) const noexcept {
    for (;;) {
      const std::size_t k = std::min(s->off - i, len);
      if (std::memcmp(s->data() + i, w, k) != 0) return false;
      len -= k;
      if (len == 0) return true;
      w += k;
      s = s->next;
      i = 0;
      if (!s->buf) [[unlikely]]
        ensure_or_terminate(s);
    }
  }

  /// First position p in [start, end) where find(ptr, n) reports a hit (find returns a
  /// pointer into [ptr, ptr + n) or null); npos if none. `c` is left at the hit.
  template <class Find>
  std::size_t scan(cursor& c, std::size_t end, Find find) const noexcept {
    while (c.seg && c.pos < end) {
      segment* s = c.seg;
      if (!s->buf) [[unlikely]]
        ensure_or_terminate(s);
      const unsigned char* d = s->data();
      const std::size_t i = c.pos - c.base;
      const std::size_t lim = std::min(s->off, end - c.base);
      if (const unsigned char* hit = find(d + i, lim - i)) {
        c.pos = c.base + static_cast<std::size_t>(hit - d);
        return c.pos;
      }
      c.base += s->off;
      c.pos = c.base;
      c.seg = s == lwd_ ? nullptr : s->next;
    }
    return npos;
  }

  /// The first end of line at or after start whose first byte is at most max_start.
  eol_match find_eol(std::size_t start, eol_style style, std::size_t max_start) const noexcept {
    constexpr eol_match none{npos, 0};
    if (start >= size_ || start > max_start) return none;
    const auto memchr_of = [](unsigned char ch) {
      return [ch](const unsigned char* p, std::size_t n) {
        return static_cast<const unsigned char*>(std::memchr(p, ch, n));
      };
    };
    cursor c = seek(start);
    // Positions up to max_start may start an EOL; crlf styles may look one byte further.
    const std::size_t end1 = max_start >= size_ ? size_ : max_start + 1;
    const std::size_t end2 = max_start >= size_ || max_start + 2 >= size_ ? size_ : max_start + 2;
    switch (style) {
      case eol_style::lf: {
        const std::size_t p = scan(c, end1, memchr_of('\n'));
        return p == npos ? none : eol_match{p, 1};
      }
      case eol_style::nul: {
        const std::size_t p = scan(c, end1, memchr_of('\0'));
        return p == npos ? none : eol_match{p, 1};
      }
      case eol_style::crlf_strict: {
        const std::size_t p = search_range("\r\n", 2, start, end2);
        return p == npos ? none : eol_match{p, 2};
      }
      case eol_style::crlf: {
        const std::size_t p = scan(c, end2, memchr_of('\n'));
        if (p == npos) return none;
        if (p > start && byte_at(p - 1) == '\r') return {p - 1, 2};
        return p <= max_start ? eol_match{p, 1} : none;
      }
      case eol_style::any: {
        const std::size_t p = scan(c, end1, [](const unsigned char* q, std::size_t n) {
          const auto* lf = static_cast<const unsigned char*>(std::memchr(q, '\n', n));
          const auto* cr = static_cast<const unsigned char*>(std::memchr(q, '\r', lf ? static_cast<std::size_t>(lf - q) : n));
          return cr ? cr : lf;
        });
        if (p == npos) return none;
        // The run of CR/LF bytes starting at p.
        std::size_t len = 0;
        for (segment* s = c.seg; s; s = s == lwd_ ? nullptr : s->next) {
          if (!s->buf) [[unlikely]]
            ensure_or_terminate(s);
          const unsigned char* d = s->data();
          std::size_t i = s == c.seg ? p - c.base : 0;
          const std::size_t i0 = i;
          while (i < s->off && (d[i] == '\r' || d[i] == '\n')) ++i;
          len += i - i0;
          if (i < s->off) break;
        }
        return {p, len};
      }
    }
    return none;
  }

  [[noreturn]] static void materialize_failed() noexcept { std::terminate(); }

  static void ensure_or_terminate(segment* s) noexcept {
    if (detail::ensure_memory(s)) materialize_failed();
  }

  void materialize_or_terminate(std::size_t n) const noexcept {
    for (segment* s = head_; n && s; s = s->next) {
      if (!s->buf) ensure_or_terminate(s);
      n -= std::min(n, s->off);
    }
  }

  // ---- notifications ----------------------------------------------------------------------

  detail::evbuffer_callbacks& callbacks() {
    if (!cbs_) cbs_ = std::make_unique<detail::evbuffer_callbacks>();
    return *cbs_;
  }

  detail::evbuffer_cb_entry* find_cb(callback_handle h) const noexcept {
    if (!cbs_ || !h) return nullptr;
    for (auto& e : cbs_->list)
      if (e->id == h.id_ && !e->removed) return e.get();
    return nullptr;
  }

  void notify(std::size_t orig, std::size_t added, std::size_t deleted) {
    if (observer_.fn || cbs_) [[unlikely]]
      notify_slow(buffer_change{orig, added, deleted});
  }

  void notify_slow(const buffer_change& ch) {
    if (observer_) observer_(ch);
    if (!cbs_ || cbs_->list.empty()) return;
    auto& c = *cbs_;
    if (!c.executor) {
      dispatch(ch);
      return;
    }
    auto& d = *c.deferred;
    if (d.has_pending) {
      d.pending.n_added += ch.n_added;
      d.pending.n_deleted += ch.n_deleted;
    } else {
      d.pending = ch;
      d.has_pending = true;
    }
    if (!d.scheduled) {
      d.scheduled = true;
      asio::post(c.executor, [st = c.deferred] {
        st->scheduled = false;
        if (!st->owner || !st->has_pending) return;
        st->has_pending = false;
        const buffer_change summary = st->pending;
        st->owner->dispatch(summary);
      });
    }
  }

  void dispatch(const buffer_change& ch) {
    auto& c = *cbs_;
    ++c.dispatching;
    struct guard {
      detail::evbuffer_callbacks& c;
      ~guard() {
        if (--c.dispatching == 0 && c.need_compact) c.compact();
      }
    } g{c};
    const std::size_t n = c.list.size();  // callbacks added meanwhile wait for the next change
    for (std::size_t i = 0; i < n && i < c.list.size(); ++i) {
      std::shared_ptr<detail::evbuffer_cb_entry> e = c.list[i];
      if (e->enabled && !e->removed) e->fn(*this, ch);
    }
  }

  segment* head_ = nullptr;
  segment* tail_ = nullptr;
  segment* lwd_ = nullptr;  ///< last segment with data (null: empty)
  std::size_t size_ = 0;
  segment* wstart_ = nullptr;  ///< first segment of the pending reservation
  std::size_t wsize_ = 0;      ///< prepared: bytes; reserved: extents
  wstate wstate_ = wstate::none;
  bool frozen_front_ = false;
  bool frozen_back_ = false;
  bool maybe_files_ = false;  ///< the chain may hold file segments
  buffer_observer observer_{};
  std::unique_ptr<detail::evbuffer_callbacks> cbs_;
};

static_assert(byte_buffer<evbuffer> && segmented_buffer<evbuffer> && freezable_buffer<evbuffer>);

}  // namespace bufev
