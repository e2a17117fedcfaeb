// The BIO between OpenSSL and bufev's buffers. Instead of a pair of memory
// BIOs (each byte copied into the BIO and out again), OpenSSL reads records
// straight from the source buffer of the current filter call and writes them
// straight into its destination: one copy each way.
#pragma once

#include <openssl/bio.h>

#include <cstddef>
#include <exception>
#include <memory>

namespace bufev::filters::detail {

/// Where the BIO reads from and writes to right now. Bound by the filter for
/// the length of one call (type-erased: the buffer types are the call's).
struct tls_io {
  void* src = nullptr;
  std::size_t (*read)(void*, char*, std::size_t) noexcept = nullptr;
  void* dst = nullptr;
  bool (*write)(void*, const char*, std::size_t) noexcept = nullptr;
};

template <class B>
std::size_t tls_read_from(void* b, char* p, std::size_t n) noexcept {
  try {
    return static_cast<B*>(b)->remove(p, n);
  } catch (...) {  // never let an exception cross OpenSSL's C frames
    return 0;
  }
}

template <class B>
bool tls_write_to(void* b, const char* p, std::size_t n) noexcept {
  try {
    return !static_cast<B*>(b)->add(p, n);
  } catch (...) {
    return false;
  }
}

inline int tls_bio_write(BIO* b, const char* p, std::size_t n, std::size_t* written) {
  BIO_clear_retry_flags(b);
  auto* io = static_cast<tls_io*>(BIO_get_data(b));
  if (!io || !io->dst || !io->write(io->dst, p, n)) return 0;  // refused: an error, not a retry
  *written = n;
  return 1;
}

inline int tls_bio_read(BIO* b, char* p, std::size_t n, std::size_t* got) {
  BIO_clear_retry_flags(b);
  auto* io = static_cast<tls_io*>(BIO_get_data(b));
  const std::size_t r = (io && io->src) ? io->read(io->src, p, n) : 0;
  if (r == 0) {
    // Nothing buffered: "try again" (OpenSSL's WANT_READ). The end of the
    // stream is decided by the filter (close_notify or truncation), not here.
    BIO_set_retry_read(b);
    return 0;
  }
  *got = r;
  return 1;
}

inline long tls_bio_ctrl(BIO*, int cmd, long, void*) {
  switch (cmd) {
    case BIO_CTRL_FLUSH: return 1;  // every write already reached the buffer
    default: return 0;
  }
}

inline int tls_bio_create(BIO* b) {
  BIO_set_init(b, 1);
  return 1;
}

inline int tls_bio_destroy(BIO*) { return 1; }  // the tls_io belongs to the filter

struct bio_method_deleter {
  void operator()(BIO_METHOD* m) const noexcept { BIO_meth_free(m); }
};

/// The BIO method, created once per process (thread-safe static).
inline const BIO_METHOD* tls_bio_method() {
  static const std::unique_ptr<BIO_METHOD, bio_method_deleter> method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "bufev buffer");
    if (m) {
      BIO_meth_set_write_ex(m, &tls_bio_write);
      BIO_meth_set_read_ex(m, &tls_bio_read);
      BIO_meth_set_ctrl(m, &tls_bio_ctrl);
      BIO_meth_set_create(m, &tls_bio_create);
      BIO_meth_set_destroy(m, &tls_bio_destroy);
    }
    return std::unique_ptr<BIO_METHOD, bio_method_deleter>(m);
  }();
  return method.get();
}

}  // namespace bufev::filters::detail
