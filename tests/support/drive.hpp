// Drive an io_context until a condition holds, with a bound (no sleeps).
#pragma once

#include <chrono>
#include <memory>
#include <system_error>

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#if defined(ASIO_HAS_IOCP)
#include <bufev/policies/timers.hpp>
#endif

namespace bufev::test {

/// Runs handlers until `done()` is true or `bound` of wall time passes.
/// Returns done().
template <class Pred>
bool run_until(asio::io_context& io, Pred done,
               std::chrono::milliseconds bound = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + bound;
#if defined(ASIO_HAS_IO_URING_AS_DEFAULT)
  // Asio 1.22's io_uring backend: a run_one_for() that ends on another completion
  // leaves its timeout pending; when that completes in a later call made from a
  // different stack depth, it is taken for an I/O completion (a crash). So wait
  // with run_one(), bounded by a timer.
  asio::steady_timer bound_timer(io, deadline);
  auto expired = std::make_shared<bool>(false);  // outlives a cancelled wait
  bound_timer.async_wait([expired](std::error_code ec) { *expired = !ec; });
  while (!done()) {
    if (*expired) return false;
    if (io.stopped()) io.restart();
    io.run_one();
  }
  return true;
#else
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    if (io.stopped()) io.restart();
    io.run_one_for(std::chrono::milliseconds(5));
  }
  return true;
#endif
}

/// Runs handlers for `d` of wall time.
inline void run_for(asio::io_context& io, std::chrono::milliseconds d) {
  (void)run_until(io, [] { return false; }, d);
}

/// Runs every handler that is ready now, repeatedly, until none is left
/// (timers that are not due do not count). Returns the handlers run. Bounded:
/// some backends (io_uring with manual-clock timers) always have an internal
/// completion ready, so "none left" is also "only those left".
inline std::size_t drain_ready(asio::io_context& io, int max_rounds = 1000) {
  std::size_t total = 0;
#if defined(ASIO_HAS_IOCP)
  // Asio's IOCP backend fires due timers when its timer thread wakes the queue, not
  // on every poll(). Wait (bounded) for a manual-clock timer that is due now: timers
  // of one clock share a queue, so every manual timer due by now fires in the same
  // dispatch, and the polls below run their handlers.
  {
    manual_timers::timer_type sentinel(io);
    sentinel.expires_at(manual_clock::now());
    auto fired = std::make_shared<bool>(false);  // outlives a cancelled wait
    sentinel.async_wait([fired](std::error_code) { *fired = true; });
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!*fired && std::chrono::steady_clock::now() < deadline) {
      if (io.stopped()) io.restart();
      io.run_one_for(std::chrono::milliseconds(5));
    }
  }
#endif
  for (int round = 0; round < max_rounds; ++round) {
    if (io.stopped()) io.restart();
    const std::size_t n = io.poll();
    total += n;
    if (n == 0) break;
  }
  return total;
}

}  // namespace bufev::test
