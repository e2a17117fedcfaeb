// Locking policies. The default is no lock: a bufferevent is used from its
// executor (or a strand), as Asio objects are. The locked variants guard the
// bufferevent, both buffers and its partner/underlying with one recursive mutex.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <mutex>

#include <bufev/policies/policy_set.hpp>

namespace bufev {

/// No lock: executor/strand affinity (the default).
struct unlocked {
  using policy_category = detail::locking_category;
  static constexpr bool thread_safe = false;
  static constexpr bool unlock_callbacks = false;
  using counter_type = std::size_t;

  struct state {
    void lock() noexcept {}
    void unlock() noexcept {}
    bool try_lock() noexcept { return true; }
    void share_with(const state&) noexcept {}
  };
};

namespace detail {
struct recursive_lock_state {
  std::shared_ptr<std::recursive_mutex> mutex = std::make_shared<std::recursive_mutex>();
  void lock() { mutex->lock(); }
  void unlock() { mutex->unlock(); }
  bool try_lock() { return mutex->try_lock(); }
  /// Makes this bufferevent use another's mutex (pairs and filters share one).
  void share_with(const recursive_lock_state& other) { mutex = other.mutex; }
};
}  // namespace detail

/// One recursive mutex guards the bufferevent (libevent's BEV_OPT_THREADSAFE).
/// User callbacks run with the lock held.
struct locked {
  using policy_category = detail::locking_category;
  static constexpr bool thread_safe = true;
  static constexpr bool unlock_callbacks = false;
  using counter_type = std::atomic<std::size_t>;
  using state = detail::recursive_lock_state;
};

/// As `locked`, but user callbacks run with the lock released
/// (BEV_OPT_UNLOCK_CALLBACKS); requires deferred_callbacks.
struct locked_unlock_callbacks {
  using policy_category = detail::locking_category;
  static constexpr bool thread_safe = true;
  static constexpr bool unlock_callbacks = true;
  using counter_type = std::atomic<std::size_t>;
  using state = detail::recursive_lock_state;
};

}  // namespace bufev
