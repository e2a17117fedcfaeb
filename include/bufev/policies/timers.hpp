// Timer policies for read/write timeouts: Asio's steady_timer, or a manual clock
// that tests advance by hand so timeouts are driven without waiting.
#pragma once

#include <atomic>
#include <chrono>

#include <asio/basic_waitable_timer.hpp>
#include <asio/steady_timer.hpp>

#include <bufev/policies/policy_set.hpp>

namespace bufev {

/// Timeouts on `asio::steady_timer` (the default).
struct steady_timers {
  using policy_category = detail::timers_category;
  using clock_type = std::chrono::steady_clock;
  using timer_type = asio::steady_timer;
};

/// A process-wide clock that only moves when `advance` is called. Timers on it
/// are ordinary Asio timers: the io_context fires them on its next turn after the
/// clock passes their deadline.
struct manual_clock {
  using duration = std::chrono::steady_clock::duration;
  using rep = duration::rep;
  using period = duration::period;
  using time_point = std::chrono::time_point<manual_clock>;
  static constexpr bool is_steady = true;

  static time_point now() noexcept { return time_point(duration(ticks().load())); }
  static void advance(duration d) noexcept { ticks().fetch_add(d.count()); }

 private:
  static std::atomic<rep>& ticks() noexcept {
    static std::atomic<rep> t{0};
    return t;
  }
};

/// Tells Asio not to block for a manual_clock deadline: every turn of the
/// io_context re-checks the clock, so `advance` followed by `poll()` fires what
/// became due, deterministically. (A `run()` with manual timers pending spins;
/// tests poll.)
struct manual_wait_traits {
  static manual_clock::duration to_wait_duration(const manual_clock::duration&) {
    return manual_clock::duration::zero();
  }
  static manual_clock::duration to_wait_duration(const manual_clock::time_point&) {
    return manual_clock::duration::zero();
  }
};

/// Timeouts on `manual_clock`, for deterministic tests.
struct manual_timers {
  using policy_category = detail::timers_category;
  using clock_type = manual_clock;
  using timer_type = asio::basic_waitable_timer<manual_clock, manual_wait_traits>;
};

}  // namespace bufev
