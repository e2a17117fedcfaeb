// Watermark policies: libevent's runtime-settable marks, or marks fixed at compile
// time (no storage, no setwatermark).
#pragma once

#include <cstddef>
#include <system_error>

#include <bufev/error.hpp>
#include <bufev/events.hpp>
#include <bufev/policies/policy_set.hpp>

namespace bufev {

/// A low/high pair. `high == 0` means unlimited (libevent's convention).
struct watermark {
  std::size_t low = 0;
  std::size_t high = 0;
  friend bool operator==(const watermark&, const watermark&) = default;
  constexpr bool valid() const noexcept { return high == 0 || high >= low; }
};

/// Watermarks settable at run time with `setwatermark` (libevent semantics).
struct runtime_watermarks {
  using policy_category = detail::watermarks_category;
  static constexpr bool settable = true;

  watermark read{};
  watermark write{};

  /// Sets the marks of every direction in `dir`; invalid marks (high below low)
  /// are refused with errc::invalid_watermarks and change nothing.
  std::error_code set(direction dir, watermark w) noexcept {
    if (!w.valid()) return make_error_code(errc::invalid_watermarks);
    if (any(dir, direction::read)) read = w;
    if (any(dir, direction::write)) write = w;
    return {};
  }
  constexpr watermark read_marks() const noexcept { return read; }
  constexpr watermark write_marks() const noexcept { return write; }
};

/// Watermarks fixed at compile time; takes no space in the bufferevent.
template <std::size_t ReadLow, std::size_t ReadHigh, std::size_t WriteLow = 0,
          std::size_t WriteHigh = 0>
struct fixed_watermarks {
  static_assert(ReadHigh == 0 || ReadHigh >= ReadLow,
                "fixed_watermarks: the read high watermark is below the read low watermark");
  static_assert(WriteHigh == 0 || WriteHigh >= WriteLow,
                "fixed_watermarks: the write high watermark is below the write low watermark");
  using policy_category = detail::watermarks_category;
  static constexpr bool settable = false;
  static constexpr watermark read_marks() noexcept { return {ReadLow, ReadHigh}; }
  static constexpr watermark write_marks() noexcept { return {WriteLow, WriteHigh}; }
};

}  // namespace bufev
