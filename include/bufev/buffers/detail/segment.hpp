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

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <system_error>
#include <type_traits>
#include <utility>

#if defined(__SANITIZE_ADDRESS__)
#define BUFEV_DETAIL_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BUFEV_DETAIL_ASAN 1
#endif
#endif
#ifndef BUFEV_DETAIL_ASAN
#define BUFEV_DETAIL_ASAN 0
#endif
#if BUFEV_DETAIL_ASAN
#include <sanitizer/asan_interface.h>
#endif

#if defined(_WIN32)
#include <io.h>

#include <cstdio>  // SEEK_SET
#else
#include <unistd.h>
#endif
#if defined(__MINGW32__)
#include <pthread.h>
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

// ---- the thread's segment cache -------------------------------------------------------
//
// Data often flows from one buffer into another (a pair moves A's output segments to
// B's input, a filter copies into the next buffer), so segments are allocated in one
// buffer and freed in another. A per-buffer spare cannot help there, and freeing and
// allocating 64 KiB blocks makes glibc trim and refault the heap top. So freed owned
// segments go to a small cache of the thread that frees them, binned by allocation
// size, and new segments come from it. It is bounded (segment_cache_max_bytes; when
// full, the sizes least recently used make room), LIFO within a size (the most
// recently freed, cache-warm block is reused first) and emptied when the thread
// exits; segments freed after that are deleted at once. Under ASan cached blocks are
// poisoned, so a use after free is still reported.

/// Largest allocation (header included) the cache keeps: 256 KiB of data.
inline constexpr std::size_t segment_cache_max_alloc = 256 * 1024 + segment_page;
/// Bytes (allocations, headers included) one thread's cache keeps at most.
inline constexpr std::size_t segment_cache_max_bytes = 1024 * 1024;

/// Counters of the calling thread's cache (see evbuffer::thread_cache_stats).
struct segment_cache_counters {
  std::size_t segments = 0;  ///< segments held now
  std::size_t bytes = 0;     ///< bytes held now (allocations, headers included)
  std::uint64_t hits = 0;    ///< allocations served from the cache
  std::uint64_t misses = 0;  ///< allocations that went to operator new
};

class segment_cache {
 public:
  // Totals are 512..4096 (powers of two: bins 0-3) or whole pages 2..65 (bins 4-67).
  static constexpr std::size_t bins = 4 + segment_cache_max_alloc / segment_page - 1;

  constexpr segment_cache() noexcept = default;
  segment_cache(const segment_cache&) = delete;
  segment_cache& operator=(const segment_cache&) = delete;
  ~segment_cache() {
    trim();
#if !defined(__MINGW32__)
    dead_ = true;
#endif
  }

  /// The calling thread's cache, or null once it has been destroyed (thread exit).
  static segment_cache* local() noexcept {
#if defined(__MINGW32__)
    return mingw_local();
#else
    if (dead_) [[unlikely]]
      return nullptr;
    return &instance_;
#endif
  }

  /// A block of at least `total` bytes (a size owned_capacity_for makes), or null.
  /// Page-sized requests may get a block up to 1/16 larger; `total` is set to the
  /// size of the block returned.
  void* take(std::size_t& total) noexcept {
    if (!cacheable(total)) return nullptr;
    const std::size_t b0 = bin_of(total);
    const std::size_t b1 = std::min(b0 + (b0 >= 4 ? (b0 - 2) / 16 : 0), bins - 1);
    for (std::size_t b = b0; b <= b1; ++b) {
      if (block* h = head_[b]) {
        total = total_of(b);
        unpoison(h, total);
        head_[b] = h->next;
        bytes_ -= total;
        --count_;
        --n_[b];
        used_[b] = ++clock_;
        ++c_hits_;
        return h;
      }
    }
    ++c_misses_;
    return nullptr;
  }

  /// Keeps a freed block of `total` bytes; false if it does not fit (caller frees).
  /// When the cache is full, blocks of other sizes make room: the sizes a thread
  /// frees now are the ones it is likely to allocate next.
  bool put(void* p, std::size_t total) noexcept {
    if (!cacheable(total)) return false;
    const std::size_t b = bin_of(total);
    if (bytes_ + total > segment_cache_max_bytes && !evict_others(b, total)) return false;
    auto* h = static_cast<block*>(p);
    h->next = head_[b];
    head_[b] = h;
    bytes_ += total;
    ++count_;
    ++n_[b];
    used_[b] = ++clock_;
    poison(h, total);
    return true;
  }

  /// Frees every cached block.
  void trim() noexcept {
    for (std::size_t b = 0; b < bins; ++b) {
      const std::size_t total = total_of(b);
      while (block* h = head_[b]) {
        unpoison(h, total);
        head_[b] = h->next;
        ::operator delete(static_cast<void*>(h));
      }
      n_[b] = 0;
    }
    bytes_ = count_ = 0;
  }

  segment_cache_counters counters() const noexcept { return {count_, bytes_, c_hits_, c_misses_}; }

 private:
  struct block {
    block* next;
  };

  /// Frees blocks of bins other than `keep`, least recently used bin first, until
  /// `total` more bytes fit; false if they cannot.
  bool evict_others(std::size_t keep, std::size_t total) noexcept {
    if (n_[keep] * total_of(keep) + total > segment_cache_max_bytes) return false;
    while (bytes_ + total > segment_cache_max_bytes) {
      std::size_t victim = bins;
      for (std::size_t b = 0; b < bins; ++b)
        if (b != keep && head_[b] && (victim == bins || used_[b] < used_[victim])) victim = b;
      const std::size_t size = total_of(victim);
      block* h = head_[victim];
      unpoison(h, size);
      head_[victim] = h->next;
      ::operator delete(static_cast<void*>(h));
      bytes_ -= size;
      --count_;
      --n_[victim];
    }
    return true;
  }

  /// Sizes owned_capacity_for makes, up to the largest cached one.
  static constexpr bool cacheable(std::size_t total) noexcept {
    if (total > segment_cache_max_alloc || total < segment_min_alloc) return false;
    if (total > segment_page) return total % segment_page == 0;
    return (total & (total - 1)) == 0;
  }
  static constexpr std::size_t bin_of(std::size_t total) noexcept {
    if (total > segment_page) return total / segment_page + 2;
    std::size_t b = 0;
    for (std::size_t t = segment_min_alloc; t < total; t <<= 1) ++b;
    return b;
  }
  static constexpr std::size_t total_of(std::size_t b) noexcept {
    return b < 4 ? segment_min_alloc << b : (b - 2) * segment_page;
  }

  // A cached block is free memory: under ASan, touching it (but its link) is an error.
  static void poison([[maybe_unused]] block* h, [[maybe_unused]] std::size_t total) noexcept {
#if BUFEV_DETAIL_ASAN
    ASAN_POISON_MEMORY_REGION(reinterpret_cast<char*>(h) + sizeof(block), total - sizeof(block));
#endif
  }
  static void unpoison([[maybe_unused]] block* h, [[maybe_unused]] std::size_t total) noexcept {
#if BUFEV_DETAIL_ASAN
    ASAN_UNPOISON_MEMORY_REGION(reinterpret_cast<char*>(h) + sizeof(block), total - sizeof(block));
#endif
  }

  block* head_[bins] = {};
  std::size_t n_[bins] = {};           ///< blocks per bin
  std::uint64_t used_[bins] = {};      ///< clock_ at the bin's last put or take
  std::uint64_t clock_ = 0;
  std::size_t bytes_ = 0;
  std::size_t count_ = 0;
  std::uint64_t c_hits_ = 0;
  std::uint64_t c_misses_ = 0;

#if defined(__MINGW32__)
  // mingw's emulated TLS may free a thread_local's storage before the thread-exit
  // destructor of the object in it runs, and emits the TLS init function of an
  // inline thread_local member in every translation unit. A pthread key's
  // destructor is handed its value instead: the cache lives on the heap under a key.
  struct tls_key {
    pthread_key_t key{};
    bool ok = false;
    tls_key() noexcept { ok = ::pthread_key_create(&key, &release_local) == 0; }
  };
  static const tls_key& key() noexcept {
    static const tls_key k;
    return k;
  }
  static void* dead_mark() noexcept { return reinterpret_cast<void*>(std::uintptr_t{1}); }
  static segment_cache* mingw_local() noexcept {
    const tls_key& k = key();
    if (!k.ok) return nullptr;
    void* v = ::pthread_getspecific(k.key);
    if (v == dead_mark()) return nullptr;
    if (v) return static_cast<segment_cache*>(v);
    auto* c = new (std::nothrow) segment_cache();
    if (c && ::pthread_setspecific(k.key, c) != 0) {
      delete c;
      c = nullptr;
    }
    return c;
  }
  static void release_local(void* p) {
    if (p == dead_mark()) return;
    delete static_cast<segment_cache*>(p);
    (void)::pthread_setspecific(key().key, dead_mark());  // segments freed later are deleted
  }
#else
  static thread_local segment_cache instance_;
  // Trivially destructible, so it can still be read after instance_ is destroyed.
  static constinit thread_local bool dead_;
#endif
};

#if !defined(__MINGW32__)
inline thread_local segment_cache segment_cache::instance_;
inline constinit thread_local bool segment_cache::dead_ = false;
#endif

/// One allocation: header followed by `cap` data bytes (a capacity made by
/// owned_capacity_for). Reuses a block of the thread's cache when it can. Throws
/// std::bad_alloc.
inline segment* new_owned_segment(std::size_t cap) {
  std::size_t total = segment_header + cap;
  void* mem = nullptr;
  if (segment_cache* c = segment_cache::local()) mem = c->take(total);
  if (!mem) mem = ::operator new(total);
  auto* s = ::new (mem) segment();
  s->buf = reinterpret_cast<unsigned char*>(s + 1);
  s->cap = total - segment_header;
  return s;
}

/// Frees an owned segment, into the thread's cache when it has room.
inline void free_owned_segment(segment* s) noexcept {
  const std::size_t total = segment_header + s->cap;
  s->~segment();
  if (segment_cache* c = segment_cache::local(); c && c->put(s, total)) return;
  ::operator delete(static_cast<void*>(s));
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
      free_owned_segment(s);
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
