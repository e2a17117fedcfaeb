// Vocabulary shared by every layer: event flags, directions, flush modes,
// filter results. Values match libevent's so logs read the same.
#pragma once

#include <cstdint>

namespace bufev {

/// Event flags passed to the event callback (libevent's BEV_EVENT_*).
enum class events : std::uint16_t {
  none = 0,
  reading = 0x01,
  writing = 0x02,
  eof = 0x10,
  error = 0x20,
  timeout = 0x40,
  connected = 0x80,
};

constexpr events operator|(events a, events b) noexcept {
  return static_cast<events>(static_cast<std::uint16_t>(a) | static_cast<std::uint16_t>(b));
}
constexpr events operator&(events a, events b) noexcept {
  return static_cast<events>(static_cast<std::uint16_t>(a) & static_cast<std::uint16_t>(b));
}
constexpr events operator~(events a) noexcept {
  return static_cast<events>(~static_cast<std::uint16_t>(a) & 0xF3);
}
constexpr events& operator|=(events& a, events b) noexcept { return a = a | b; }
constexpr events& operator&=(events& a, events b) noexcept { return a = a & b; }
/// True if any flag of `b` is set in `a`.
constexpr bool any(events a, events b) noexcept { return (a & b) != events::none; }

/// Directions for enable/disable/flush/trigger (libevent's EV_READ / EV_WRITE).
enum class direction : std::uint8_t { none = 0, read = 0x02, write = 0x04, both = 0x06 };

constexpr direction operator|(direction a, direction b) noexcept {
  return static_cast<direction>(static_cast<std::uint8_t>(a) | static_cast<std::uint8_t>(b));
}
constexpr direction operator&(direction a, direction b) noexcept {
  return static_cast<direction>(static_cast<std::uint8_t>(a) & static_cast<std::uint8_t>(b));
}
constexpr direction operator~(direction a) noexcept {
  return static_cast<direction>(~static_cast<std::uint8_t>(a) & 0x06);
}
constexpr bool any(direction a, direction b) noexcept { return (a & b) != direction::none; }

/// Flush modes (libevent's BEV_NORMAL / BEV_FLUSH / BEV_FINISHED).
enum class flush_mode : std::uint8_t { normal = 0, flush = 1, finished = 2 };

/// What a filter reports (libevent's BEV_OK / BEV_NEED_MORE / BEV_ERROR).
enum class filter_result : std::uint8_t { ok = 0, need_more = 1, error = 2 };

}  // namespace bufev
