#pragma once

#include <cstdint>
#include <optional>

#include <asio/any_io_executor.hpp>

namespace bufev::detail {

/// One direction's timeout. Successful I/O only records the time (`last`); the
/// timer is re-armed lazily when it fires early, so a busy connection does not
/// cancel and restart an Asio timer on every read.
template <class TimerPolicy>
struct timeout_slot {
  using clock_type = typename TimerPolicy::clock_type;
  using timer_type = typename TimerPolicy::timer_type;

  explicit timeout_slot(const asio::any_io_executor& ex) : timer(ex) {}

  std::optional<typename clock_type::duration> timeout;
  typename clock_type::time_point last{};
  std::uint32_t generation = 0;  // tells a stale completion from the current wait
  bool armed = false;
  timer_type timer;
};

/// Both directions; allocated on the first set_timeouts so an idle bufferevent
/// without timeouts carries no timers.
template <class TimerPolicy>
struct timeout_state {
  explicit timeout_state(const asio::any_io_executor& ex) : read(ex), write(ex) {}
  timeout_slot<TimerPolicy> read;
  timeout_slot<TimerPolicy> write;
};

}  // namespace bufev::detail
