// The "tls" error category: bufev's own TLS conditions, X.509 verification
// results and OpenSSL's packed error codes, in one category so that
// `ec.category() == bufev::tls_category()` tells a TLS failure apart.
#pragma once

#include <openssl/err.h>
#include <openssl/x509.h>

#include <cstdint>
#include <string>
#include <system_error>

namespace bufev {

/// TLS conditions bufev detects itself (values 1..0xff of the "tls" category).
enum class tls_errc {
  stream_truncated = 1,  ///< the connection ended without a close_notify (dirty shutdown)
  handshake_truncated,   ///< the connection ended during the handshake
  missing_server_name,   ///< a verifying client was given no server name to check
  no_context,            ///< the filter has no SSL_CTX (or SSL_new failed)
  output_refused,        ///< the destination buffer refused TLS records
  protocol_error,        ///< OpenSSL failed without saying why
};

namespace detail {

// Layout of the category's values: bufev's tls_errc below verify_base;
// verify_base + X509_V_ERR_* for a failed certificate verification; an
// OpenSSL packed error code (ERR_get_error, library bits set, so >= 1 << 23,
// or the system-error flag, negative as an int) otherwise.
inline constexpr int tls_verify_base = 0x1000;
inline constexpr int tls_verify_end = 0x10000;

class tls_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "tls"; }
  std::string message(int ev) const override {
    if (ev > 0 && ev < tls_verify_base) {
      switch (static_cast<tls_errc>(ev)) {
        case tls_errc::stream_truncated: return "TLS stream truncated (connection closed without close_notify)";
        case tls_errc::handshake_truncated: return "connection closed during the TLS handshake";
        case tls_errc::missing_server_name: return "TLS client verifies the peer but has no server name";
        case tls_errc::no_context: return "no TLS context";
        case tls_errc::output_refused: return "destination buffer refused TLS records";
        case tls_errc::protocol_error: return "TLS protocol error";
      }
      return "unknown TLS error";
    }
    if (ev >= tls_verify_base && ev < tls_verify_end) {
      const long v = ev - tls_verify_base;
      return std::string("certificate verify failed: ") + X509_verify_cert_error_string(v);
    }
    const unsigned long e = static_cast<std::uint32_t>(ev);
    const char* reason = ERR_reason_error_string(e);
    const char* lib = ERR_lib_error_string(e);
    if (reason && lib) return std::string(lib) + ": " + reason;
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    return buf;
  }
};

}  // namespace detail

/// The category of every TLS failure bufev reports ("tls").
inline const std::error_category& tls_category() noexcept {
  static const detail::tls_category_impl cat;
  return cat;
}

inline std::error_code make_error_code(tls_errc e) noexcept { return {static_cast<int>(e), tls_category()}; }

/// An OpenSSL error code (a value of ERR_get_error()) as a "tls" error_code.
inline std::error_code make_tls_error(unsigned long openssl_error) noexcept {
  if (openssl_error == 0) return make_error_code(tls_errc::protocol_error);
  return {static_cast<int>(static_cast<std::uint32_t>(openssl_error)), tls_category()};
}

/// A failed certificate verification (an X509_V_ERR_* value, as
/// SSL_get_verify_result returns it) as a "tls" error_code.
inline std::error_code make_tls_verify_error(long verify_result) noexcept {
  if (verify_result <= 0 || verify_result >= detail::tls_verify_end - detail::tls_verify_base)
    return make_error_code(tls_errc::protocol_error);
  return {detail::tls_verify_base + static_cast<int>(verify_result), tls_category()};
}

/// The X509_V_ERR_* value of a verification failure, or 0 (X509_V_OK) when
/// `ec` is not one.
inline long tls_verify_result(std::error_code ec) noexcept {
  if (ec.category() != tls_category()) return 0;
  const int v = ec.value();
  return v >= detail::tls_verify_base && v < detail::tls_verify_end ? v - detail::tls_verify_base : 0;
}

/// The OpenSSL packed error code of `ec`, or 0 when it is not one.
inline unsigned long tls_openssl_error(std::error_code ec) noexcept {
  if (ec.category() != tls_category()) return 0;
  const int v = ec.value();
  if (v > 0 && v < detail::tls_verify_end) return 0;
  return static_cast<std::uint32_t>(v);
}

namespace detail {
// The first error of this thread's OpenSSL queue (the root cause), which is
// then cleared so that the next SSL call starts clean.
inline std::error_code take_openssl_error() {
  const unsigned long e = ERR_get_error();
  ERR_clear_error();
  return make_tls_error(e);
}
}  // namespace detail

}  // namespace bufev

template <>
struct std::is_error_code_enum<bufev::tls_errc> : std::true_type {};
