// bufev error codes: one category for every failure bufev itself detects.
// Errors from the OS, Asio, zlib or OpenSSL keep their own categories.
#pragma once

#include <string>
#include <system_error>

namespace bufev {

/// Errors that bufev reports through `std::error_code`.
enum class errc {
  ok = 0,
  frozen = 1,              ///< operation touches a frozen end of a buffer
  out_of_range,            ///< drain/pullup/remove past the end of the data
  line_too_long,           ///< readln found no end of line within the maximum length
  not_reserved,            ///< commit of extents that were not handed out by reserve
  invalid_argument,        ///< an argument is outside what the operation accepts
  buffer_full,             ///< a fixed-capacity buffer cannot take more bytes
  invalid_watermarks,      ///< high watermark below low watermark
  invalid_configuration,   ///< contradictory options (e.g. unlock-callbacks without deferral)
  partner_closed,          ///< write to a pair whose partner is gone
  closed,                  ///< operation on a closed bufferevent
  injected_fault,          ///< failure injected by a test transport
  connection_reset,        ///< peer reset (injected or reported)
  filter_failed,           ///< a filter returned error
  not_supported,           ///< the transport does not support this operation
};

namespace detail {
class error_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "bufev"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::ok: return "success";
      case errc::frozen: return "buffer end is frozen";
      case errc::out_of_range: return "not enough data in buffer";
      case errc::line_too_long: return "line exceeds the maximum length";
      case errc::not_reserved: return "commit of extents that were not reserved";
      case errc::invalid_argument: return "invalid argument";
      case errc::buffer_full: return "buffer capacity exceeded";
      case errc::invalid_watermarks: return "high watermark is below low watermark";
      case errc::invalid_configuration: return "invalid bufferevent configuration";
      case errc::partner_closed: return "pair partner is closed";
      case errc::closed: return "bufferevent is closed";
      case errc::injected_fault: return "injected fault";
      case errc::connection_reset: return "connection reset";
      case errc::filter_failed: return "filter failed";
      case errc::not_supported: return "operation not supported by this transport";
    }
    return "unknown bufev error";
  }
};
}  // namespace detail

/// The category of `bufev::errc`.
inline const std::error_category& error_category() noexcept {
  static const detail::error_category_impl cat;
  return cat;
}

inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), error_category()};
}

}  // namespace bufev

template <>
struct std::is_error_code_enum<bufev::errc> : std::true_type {};
