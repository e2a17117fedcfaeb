// The operations flat_buffer and static_buffer<N> share: one contiguous byte array
// with a read offset and a write offset. The derived class only owns the storage
// (where it lives, how big it is, whether it can grow); everything else is here.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

#include <asio/buffer.hpp>

#include <bufev/buffers/concepts.hpp>
#include <bufev/buffers/detail/contiguous_search.hpp>
#include <bufev/buffers/eol.hpp>
#include <bufev/error.hpp>

namespace bufev::detail {

/// CRTP base of the contiguous buffers. `Derived` provides (privately, with this
/// class as a friend):
///   unsigned char* storage() noexcept;              // start of the byte array
///   const unsigned char* storage() const noexcept;
///   std::size_t storage_capacity() const noexcept;  // bytes in the array
///   std::size_t max_size() const noexcept;
///   bool grow_storage(std::size_t min_capacity, std::size_t new_in);
///     // replace the array by one of at least min_capacity bytes, with the readable
///     // bytes [in_, out_) copied to offset new_in; false if it cannot (no change).
///     // While the front is frozen the old array must stay alive (see below).
///   void release_retired() noexcept;                // the front was unfrozen
///
/// Bytes never move under an operation in flight. The bufferevent core freezes the
/// output's front while a write of data() is in flight and the input's back while a
/// read into prepare()'s bytes is in flight, and the other end stays open to the user:
/// - front frozen: appends never compact, and a growth keeps the old array alive
///   until unfreeze(front), so the bytes data() handed out stay valid;
/// - prepare pending: drains keep the prepared bytes where they are, and a prepend
///   that would have to shift the data is refused (errc::buffer_full).
template <class Derived>
class contiguous_buffer_base {
 public:
  static constexpr std::size_t npos = static_cast<std::size_t>(-1);

  /// Bytes that can be read.
  std::size_t size() const noexcept { return out_ - in_; }
  bool empty() const noexcept { return out_ == in_; }
  /// Bytes the storage holds without growing (readable, drained and writable).
  std::size_t capacity() const noexcept { return self().storage_capacity(); }

  /// Appends `n` bytes. Errors, with nothing added: errc::frozen (back frozen),
  /// errc::buffer_full (would exceed max_size()), errc::invalid_argument (null data,
  /// or data inside this buffer's storage but outside its readable bytes).
  std::error_code add(const void* data, std::size_t n) {
    if (frozen_back_) return errc::frozen;
    if (n == 0) return {};
    if (data == nullptr) return errc::invalid_argument;
    std::size_t alias = 0;
    if (const auto ec = alias_offset(data, n, alias)) return ec;
    if (const auto ec = make_room_back(n)) return ec;
    const std::size_t orig = size();
    const unsigned char* src =
        alias == npos ? static_cast<const unsigned char*>(data) : base() + in_ + alias;
    std::memcpy(base() + out_, src, n);
    out_ += n;
    prepared_ = 0;
    notify(orig, n, 0);
    return {};
  }
  std::error_code add(std::string_view s) { return add(s.data(), s.size()); }

  /// Inserts `n` bytes before the readable bytes. Same errors as add(), and
  /// errc::frozen when the front is frozen. While a prepare() is pending the bytes
  /// only go into room already free in front (errc::buffer_full otherwise).
  std::error_code prepend(const void* data, std::size_t n) {
    if (frozen_front_) return errc::frozen;
    if (n == 0) return {};
    if (data == nullptr) return errc::invalid_argument;
    std::size_t alias = 0;
    if (const auto ec = alias_offset(data, n, alias)) return ec;
    if (const auto ec = make_room_front(n)) return ec;
    const std::size_t orig = size();
    const unsigned char* src =
        alias == npos ? static_cast<const unsigned char*>(data) : base() + in_ + alias;
    std::memcpy(base() + in_ - n, src, n);
    in_ -= n;
    notify(orig, n, 0);
    return {};
  }
  std::error_code prepend(std::string_view s) { return prepend(s.data(), s.size()); }

  /// Discards the first `n` bytes. n > size(): errc::out_of_range and nothing
  /// drained; front frozen: errc::frozen.
  std::error_code drain(std::size_t n) {
    if (frozen_front_) return errc::frozen;
    if (n > size()) return errc::out_of_range;
    if (n == 0) return {};
    drain_unchecked(n);
    return {};
  }

  /// Drains everything (errc::frozen if the front is frozen).
  std::error_code clear() { return drain(size()); }

  /// Moves up to `n` bytes from the front to `out`; returns how many. Returns 0
  /// and removes nothing when the front is frozen.
  std::size_t remove(void* out, std::size_t n) {
    if (frozen_front_) return 0;
    const std::size_t k = copyout(out, n);
    if (k != 0) drain_unchecked(k);
    return k;
  }

  /// Copies up to `n` bytes from the front to `out` without removing them.
  std::size_t copyout(void* out, std::size_t n) const noexcept { return copyout_from(0, out, n); }

  /// Copies up to `n` bytes starting `pos` bytes into the readable data; 0 if
  /// pos >= size().
  std::size_t copyout_from(std::size_t pos, void* out, std::size_t n) const noexcept {
    if (pos >= size() || out == nullptr) return 0;
    const std::size_t k = std::min(n, size() - pos);
    std::memcpy(out, base() + in_ + pos, k);
    return k;
  }

  /// The readable bytes as one buffer (always contiguous).
  asio::const_buffer data() const noexcept { return {base() + in_, size()}; }

  /// Pointer to the readable bytes; the first `n` (npos = all) are contiguous
  /// already. n > size(): nullptr and errc::out_of_range.
  unsigned char* pullup(std::size_t n, std::error_code& ec) noexcept {
    ec.clear();
    if (n != npos && n > size()) {
      ec = errc::out_of_range;
      return nullptr;
    }
    return base() + in_;
  }

  /// Asio DynamicBuffer_v1: `n` writable bytes after the readable ones, valid until
  /// the next call that modifies the buffer. Throws std::length_error if
  /// size() + n > max_size() (or the fixed capacity cannot take them), and
  /// std::system_error(errc::frozen) if the back is frozen.
  asio::mutable_buffer prepare(std::size_t n) {
    if (frozen_back_) throw std::system_error(make_error_code(errc::frozen), "bufev prepare");
    if (n > self().max_size() - size() || make_room_back(n))
      throw std::length_error("bufev: prepare exceeds the buffer's max_size");
    prepared_ = n;
    return {base() + out_, n};
  }

  /// Makes the first `n` prepared bytes readable (clamped to what the last
  /// prepare() handed out). Does nothing when the back is frozen (like evbuffer):
  /// unfreeze first; the prepared bytes stay pending.
  void commit(std::size_t n) {
    if (frozen_back_) return;
    n = std::min(n, prepared_);
    prepared_ = 0;
    if (n == 0) return;
    const std::size_t orig = size();
    out_ += n;
    notify(orig, n, 0);
  }

  /// Drains up to `n` bytes (clamped to size()). Does nothing when the front is
  /// frozen (like evbuffer).
  void consume(std::size_t n) {
    if (frozen_front_) return;
    n = std::min(n, size());
    if (n != 0) drain_unchecked(n);
  }

  /// Offset of the first occurrence of `what[0, len)` at or after `start`; npos if
  /// absent. An empty pattern matches at `start` (if start <= size()).
  std::size_t search(const void* what, std::size_t len, std::size_t start = 0) const noexcept {
    return contiguous_find(base() + in_, size(), what, len, start);
  }
  std::size_t search(std::string_view what, std::size_t start = 0) const noexcept {
    return search(what.data(), what.size(), start);
  }
  /// Like search(), but the match must end at or before offset `end`.
  std::size_t search_range(const void* what, std::size_t len, std::size_t start,
                           std::size_t end) const noexcept {
    return contiguous_find(base() + in_, size(), what, len, start, end);
  }
  std::size_t search_range(std::string_view what, std::size_t start,
                           std::size_t end) const noexcept {
    return search_range(what.data(), what.size(), start, end);
  }
  /// First end of line at or after `start`: {offset, length of the EOL}, or
  /// {npos, 0}.
  eol_match search_eol(std::size_t start, eol_style style) const noexcept {
    return contiguous_find_eol(base() + in_, size(), start, style);
  }

  /// Removes one line and returns it without its end of line.
  /// - no complete line: nullopt, buffer intact, `ec` clear;
  /// - no end of line within the first `max_len` bytes of line (more than max_len
  ///   bytes buffered, or a longer complete line): nullopt, errc::line_too_long,
  ///   buffer intact;
  /// - front frozen: nullopt, errc::frozen.
  std::optional<std::string> readln(eol_style style, std::size_t max_len, std::error_code& ec) {
    ec.clear();
    if (frozen_front_) {
      ec = errc::frozen;
      return std::nullopt;
    }
    const unsigned char* p = base() + in_;
    const std::size_t sz = size();
    // A line of at most max_len bytes has its EOL start at offset <= max_len, and a
    // CRLF starting there ends at max_len + 2: no need to scan further.
    const std::size_t window = max_len >= sz ? sz : std::min(sz, max_len + 2);
    eol_match m = contiguous_find_eol(p, window, 0, style);
    if (m.pos == npos) {
      // Waiting is right only while a line of at most max_len bytes can still
      // complete: fewer bytes than that, or exactly max_len followed by a CR whose
      // LF has not arrived.
      const bool can_complete =
          sz <= max_len ||
          (sz == max_len + 1 && p[max_len] == '\r' &&
           (style == eol_style::crlf || style == eol_style::crlf_strict));
      if (!can_complete) ec = errc::line_too_long;
      return std::nullopt;
    }
    if (m.pos > max_len) {
      ec = errc::line_too_long;
      return std::nullopt;
    }
    if (style == eol_style::any) m.length = crlf_run(p, sz, m.pos);  // run may pass the window
    std::string line(reinterpret_cast<const char*>(p), m.pos);
    drain_unchecked(m.pos + m.length);
    return line;
  }

  /// Freezes one end: a frozen back refuses add/prepare/commit, a frozen front
  /// refuses drain/remove/prepend/consume/readln (errc::frozen, nothing changed).
  /// prepare() throws std::system_error(errc::frozen); commit/consume do nothing.
  void freeze(buffer_end e) noexcept { (e == buffer_end::front ? frozen_front_ : frozen_back_) = true; }
  void unfreeze(buffer_end e) noexcept {
    if (e == buffer_end::front) {
      frozen_front_ = false;
      self().release_retired();  // nothing can still be reading an old array
    } else {
      frozen_back_ = false;
    }
  }
  bool frozen(buffer_end e) const noexcept {
    return e == buffer_end::front ? frozen_front_ : frozen_back_;
  }

  /// Installs the observer called after every change of size() (the bufferevent
  /// core's hook). One observer; an empty one removes it.
  void set_observer(buffer_observer o) noexcept { observer_ = o; }

 protected:
  contiguous_buffer_base() noexcept = default;
  ~contiguous_buffer_base() = default;
  // Copies and moves transfer bytes only (the derived class does that): the
  // observer and freeze state belong to the object they were set on.
  contiguous_buffer_base(const contiguous_buffer_base&) noexcept {}
  contiguous_buffer_base& operator=(const contiguous_buffer_base&) noexcept { return *this; }

  Derived& self() noexcept { return static_cast<Derived&>(*this); }
  const Derived& self() const noexcept { return static_cast<const Derived&>(*this); }
  unsigned char* base() noexcept { return self().storage(); }
  const unsigned char* base() const noexcept { return self().storage(); }

  void notify(std::size_t orig, std::size_t added, std::size_t deleted) const {
    if (observer_ && (added != 0 || deleted != 0)) observer_(buffer_change{orig, added, deleted});
  }

  void drain_unchecked(std::size_t n) {
    const std::size_t orig = size();
    in_ += n;
    // Empty: the whole array is writable again, unless prepared bytes must stay put.
    if (in_ == out_ && prepared_ == 0) in_ = out_ = 0;
    notify(orig, 0, n);
  }

  // Whole-object assignment would pull the bytes from under an operation in flight.
  void check_assignable() const {
    if (frozen_front_ || frozen_back_)
      throw std::system_error(make_error_code(errc::frozen), "bufev: assignment to a frozen buffer");
  }

  /// Replaces the readable bytes by `src[0, n)` (for copy/move of the derived
  /// class; the caller checked that n fits) and tells the observer.
  void assign_bytes(const unsigned char* src, std::size_t n) {
    const std::size_t orig = size();
    if (n != 0) std::memmove(base(), src, n);
    in_ = 0;
    out_ = n;
    prepared_ = 0;
    notify(orig, n, orig);
  }

  std::size_t in_ = 0;        // offset of the first readable byte
  std::size_t out_ = 0;       // offset one past the last readable byte
  std::size_t prepared_ = 0;  // bytes handed out by the last prepare()

 private:
  // If `data` lies inside our storage, `alias` receives its offset from the first
  // readable byte (so the bytes can be found again after compaction or growth);
  // npos if it does not. Pointers into the non-readable part are refused: those
  // bytes may move or be overwritten by the copy itself.
  std::error_code alias_offset(const void* data, std::size_t n, std::size_t& alias) const noexcept {
    alias = npos;
    const auto addr = reinterpret_cast<std::uintptr_t>(data);
    const auto lo = reinterpret_cast<std::uintptr_t>(base());
    const auto hi = lo + capacity();
    if (addr + n <= lo || addr >= hi) return {};
    if (addr < lo + in_ || addr - lo > out_ || n > out_ - (addr - lo)) return errc::invalid_argument;
    alias = addr - lo - in_;
    return {};
  }

  std::error_code make_room_back(std::size_t n) {
    const std::size_t cap = capacity();
    if (cap - out_ >= n) return {};
    const std::size_t sz = size();
    if (n > self().max_size() - sz) return errc::buffer_full;
    // Compacting costs size() bytes of copying; doing it only while the data fills
    // at most half the array keeps appends amortised O(1) per byte. A buffer that
    // cannot grow compacts whenever that makes room. Never with the front frozen:
    // a write of these bytes may be in flight.
    const bool may_compact = !frozen_front_ && sz + n <= cap;
    if (may_compact && sz <= cap / 2) {
      move_data(0);
      return {};
    }
    if (self().grow_storage(sz + n, 0)) {
      out_ = sz;
      in_ = 0;
      return {};
    }
    if (may_compact) {  // could not grow: compact after all
      move_data(0);
      return {};
    }
    return errc::buffer_full;
  }

  // Moves the readable bytes to offset `to`. The bound check is an invariant; it
  // also shows the optimiser that the copy stays inside the array.
  void move_data(std::size_t to) noexcept {
    const std::size_t sz = size();
    const std::size_t cap = capacity();
    if (sz != 0 && to <= cap && sz <= cap - to) std::memmove(base() + to, base() + in_, sz);
    in_ = to;
    out_ = to + sz;
  }

  std::error_code make_room_front(std::size_t n) {
    if (in_ >= n) return {};
    if (prepared_ != 0) return errc::buffer_full;  // a read may be filling the bytes after out_
    const std::size_t cap = capacity();
    const std::size_t sz = size();
    if (n > self().max_size() - sz) return errc::buffer_full;
    if (sz + n <= cap) {
      // Shift the data just far enough; the room after it stays for appends.
      move_data(n);
      return {};
    }
    if (!self().grow_storage(sz + n, n)) return errc::buffer_full;
    in_ = n;
    out_ = n + sz;
    return {};
  }

  buffer_observer observer_{};
  bool frozen_front_ = false;
  bool frozen_back_ = false;
};

}  // namespace bufev::detail
