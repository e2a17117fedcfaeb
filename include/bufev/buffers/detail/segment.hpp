// Segments of bufev::evbuffer: one node of the chain, and the storage it refers to.
//
// Four kinds of segment share one header:
//  - owned:     header and data in one allocation (`buf` points just past the header);
//               the only kind that is ever written to.
//  - reference: immutable memory of the user (add_reference); a cleanup runs when the
//               last holder lets go of it.
//  - file:      a region of an open file (add_file); `buf` stays null until somebody
//               needs the bytes in memory, then the region is read with pread.
//  - view:      shares the storage of another segment (its `root`) without copying
//               (remove_buffer of a large partial segment, add_buffer_reference).
//
// `refs` counts the holders of a segment: the chain it is linked in (if any) and every
// view whose root it is. Storage is freed, and a reference's cleanup runs, when it
// drops to zero. While a segment is shared (refs > 1) its bytes are immutable: views
// may cover any byte before `misalign + off`, so only appends past the end are allowed.
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <system_error>
#include <type_traits>
#include <utility>

#if defined(_WIN32)
#include <io.h>

#include <cstdio>  // SEEK_SET
#else
#include <unistd.h>
#endif

namespace bufev::detail {

enum class segment_kind : std::uint8_t { owned, reference, file, view };

struct segment {
  segment* next = nullptr;
  unsigned char* buf = nullptr;  ///< storage base; null for a file region not yet read
  std::size_t cap = 0;           ///< bytes of storage at `buf`
  std::size_t misalign = 0;      ///< offset of the first readable byte
  std::size_t off = 0;           ///< readable bytes
  segment* root = nullptr;       ///< view: the segment whose storage it shares
  void (*dispose)(segment*) noexcept = nullptr;  ///< reference/file: cleanup and free
  std::uint32_t refs = 1;        ///< holders: the chain + views rooted here
  segment_kind kind = segment_kind::owned;

  /// Writable bytes after the data (owned segments only).
  std::size_t space() const noexcept { return cap - misalign - off; }
  unsigned char* data() const noexcept { return buf + misalign; }
  unsigned char* write_ptr() const noexcept { return buf + misalign + off; }
  segment* storage_root() noexcept { return kind == segment_kind::view ? root : this; }
  bool file_backed() const noexcept {
    return kind == segment_kind::file || (kind == segment_kind::view && root->kind == segment_kind::file);
  }
};

// 64 bytes: the data of an owned segment starts 16-byte aligned, on its own cache line.
static_assert(sizeof(segment) == 64 || sizeof(void*) != 8, "segment header is expected to be 64 bytes");
static_assert(sizeof(segment) % alignof(std::max_align_t) == 0 || sizeof(void*) != 8);

// ---- allocation sizing -------------------------------------------------------------

inline constexpr std::size_t segment_header = sizeof(segment);
/// Smallest allocation for an owned segment (header included), as in libevent.
inline constexpr std::size_t segment_min_alloc = 512;
/// Automatic growth of appends doubles the tail's allocation up to this size.
inline constexpr std::size_t segment_auto_max = 16384;
/// Allocations above this are rounded to whole pages.
inline constexpr std::size_t segment_page = 4096;

/// Data capacity of an owned segment that must hold at least `need` bytes.
inline std::size_t owned_capacity_for(std::size_t need) {
  constexpr std::size_t limit = static_cast<std::size_t>(PTRDIFF_MAX) - segment_header - segment_page;
  if (need > limit) throw std::bad_alloc();
  std::size_t total = need + segment_header;
  if (total <= segment_page) {
    std::size_t t = segment_min_alloc;
    while (t < total) t <<= 1;
    total = t;
  } else {
    total = (total + segment_page - 1) & ~(segment_page - 1);
  }
  return total - segment_header;
}

/// One allocation: header followed by `cap` data bytes. Throws std::bad_alloc.
inline segment* new_owned_segment(std::size_t cap) {
  void* mem = ::operator new(segment_header + cap);
  auto* s = ::new (mem) segment();
  s->buf = reinterpret_cast<unsigned char*>(s + 1);
  s->cap = cap;
  return s;
}

// ---- reference and file segments ------------------------------------------------------

template <class Cleanup>
struct reference_segment final : segment {
  explicit reference_segment(Cleanup&& c) : cleanup(std::move(c)) {}
  explicit reference_segment(const Cleanup& c) : cleanup(c) {}
  Cleanup cleanup;
  static void dispose_fn(segment* s) noexcept {
    auto* self = static_cast<reference_segment*>(s);
    self->cleanup(static_cast<const void*>(self->buf), self->cap);
    delete self;
  }
};

struct plain_reference_segment final : segment {
  static void dispose_fn(segment* s) noexcept { delete static_cast<plain_reference_segment*>(s); }
};

inline void close_fd(int fd) noexcept {
#if defined(_WIN32)
  ::_close(fd);
#else
  ::close(fd);
#endif
}

/// Reads exactly n bytes at `offset` (retrying on EINTR and short reads).
inline std::error_code read_file_at(int fd, void* out, std::size_t n, std::uint64_t offset) noexcept {
  auto* p = static_cast<unsigned char*>(out);
  while (n > 0) {
#if defined(_WIN32)
    if (::_lseeki64(fd, static_cast<long long>(offset), SEEK_SET) < 0)
      return {errno, std::generic_category()};
    const unsigned chunk = n > 0x40000000u ? 0x40000000u : static_cast<unsigned>(n);
    const int r = ::_read(fd, p, chunk);
#else
    const ::ssize_t r = ::pread(fd, p, n, static_cast<::off_t>(offset));
#endif
    if (r < 0) {
      if (errno == EINTR) continue;
      return {errno, std::generic_category()};
    }
    if (r == 0) return std::make_error_code(std::errc::io_error);  // file shorter than the region
    p += r;
    n -= static_cast<std::size_t>(r);
    offset += static_cast<std::uint64_t>(r);
  }
  return {};
}

struct file_segment final : segment {
  int fd = -1;
  std::uint64_t offset = 0;  ///< file offset of storage byte 0
  bool owns_fd = true;

  static void dispose_fn(segment* s) noexcept {
    auto* self = static_cast<file_segment*>(s);
    std::free(self->buf);
    if (self->owns_fd) close_fd(self->fd);
    delete self;
  }

  /// Reads the whole region into memory (once).
  std::error_code materialize() noexcept {
    if (buf) return {};
    auto* mem = static_cast<unsigned char*>(std::malloc(cap));
    if (!mem) return std::make_error_code(std::errc::not_enough_memory);
    if (auto ec = read_file_at(fd, mem, cap, offset)) {
      std::free(mem);
      return ec;
    }
    buf = mem;
    return {};
  }
};

// ---- lifetime ----------------------------------------------------------------------------

inline void destroy_segment(segment* s) noexcept;

/// Drops one holder; frees the segment (running a reference's cleanup) at zero.
inline void release_segment(segment* s) noexcept {
  if (--s->refs == 0) destroy_segment(s);
}

inline void destroy_segment(segment* s) noexcept {
  switch (s->kind) {
    case segment_kind::owned:
      s->~segment();
      ::operator delete(static_cast<void*>(s));
      return;
    case segment_kind::view: {
      segment* r = s->root;
      delete s;
      release_segment(r);
      return;
    }
    case segment_kind::reference:
    case segment_kind::file:
      s->dispose(s);
      return;
  }
}

/// A view of `len` bytes of `s` starting `at` bytes into its data. Throws std::bad_alloc.
inline segment* new_view(segment* s, std::size_t at, std::size_t len) {
  segment* r = s->storage_root();
  auto* v = new segment();
  v->kind = segment_kind::view;
  v->root = r;
  v->buf = r->buf;
  v->cap = s->misalign + at + len;
  v->misalign = s->misalign + at;
  v->off = len;
  ++r->refs;
  return v;
}

/// Makes the bytes of a file-backed segment addressable. Owned/reference: no-op.
inline std::error_code ensure_memory(segment* s) noexcept {
  if (s->buf) return {};
  segment* r = s->storage_root();
  if (auto ec = static_cast<file_segment*>(r)->materialize()) return ec;
  s->buf = r->buf;
  return {};
}

}  // namespace bufev::detail
