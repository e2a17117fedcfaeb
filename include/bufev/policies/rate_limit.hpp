// Rate limiting policies: libevent's token buckets (bufferevent_ratelim.c) per
// bufferevent and per group of bufferevents, as a policy axis of the core.
//
// - `no_rate_limit` (the default) is empty and its hooks compile to nothing.
// - `rate_limited` gives each bufferevent an optional token bucket and optional
//   membership of a `basic_rate_limit_group`, reached through `bev.rate_limit()`.
//
// Buckets hold bytes. They start at the rate, gain `rate` per tick up to
// `burst`, and lose what each read or write moved, after it moved (so a bucket
// may go negative). At <= 0 that direction is suspended (never visible in
// `enabled()`) until a refill brings it back above 0. A refill timer runs only
// while something is suspended. The budget of one I/O is
// min(max_single, own bucket, group share). See docs/rate_limit.md.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include <asio/any_io_executor.hpp>
#include <asio/error.hpp>

#include <bufev/core/ref_ptr.hpp>
#include <bufev/error.hpp>
#include <bufev/events.hpp>
#include <bufev/policies/policy_set.hpp>
#include <bufev/policies/timers.hpp>

namespace bufev {

// Declared (with its enumerators) in core/bufferevent.hpp, which includes this file.
enum class suspend_reason : std::uint8_t;

/// The largest rate or burst accepted: buckets are signed 64-bit byte counts
/// with room for a negative balance.
inline constexpr std::size_t max_rate_limit =
    static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max() / 4);

/// Token bucket configuration (libevent's ev_token_bucket_cfg): per tick, each
/// direction gains `rate` bytes, up to `burst`.
struct rate_limit_config {
  std::size_t read_rate = 0;
  std::size_t read_burst = 0;
  std::size_t write_rate = 0;
  std::size_t write_burst = 0;
  std::chrono::nanoseconds tick = std::chrono::seconds(1);

  /// libevent's rules: a rate of at least 1 byte, a burst of at least the rate
  /// (errc::invalid_configuration otherwise), a positive tick, and rates and
  /// bursts up to `max_rate_limit` (errc::invalid_argument otherwise).
  std::error_code validate() const noexcept {
    if (read_rate < 1 || write_rate < 1 || tick <= std::chrono::nanoseconds::zero() ||
        read_burst > max_rate_limit || write_burst > max_rate_limit)
      return make_error_code(errc::invalid_argument);
    if (read_rate > read_burst || write_rate > write_burst)
      return make_error_code(errc::invalid_configuration);
    return {};
  }

  friend bool operator==(const rate_limit_config&, const rate_limit_config&) = default;
};

/// Builds and validates a configuration (ev_token_bucket_cfg_new). On error `ec`
/// is set and the result is a default (invalid) configuration.
inline rate_limit_config make_rate_limit_config(std::size_t read_rate, std::size_t read_burst,
                                                std::size_t write_rate, std::size_t write_burst,
                                                std::chrono::nanoseconds tick, std::error_code& ec) noexcept {
  rate_limit_config c{read_rate, read_burst, write_rate, write_burst, tick};
  ec = c.validate();
  return ec ? rate_limit_config{} : c;
}

namespace detail {

// 0 = read, 1 = write: both directions share every piece of logic.
inline constexpr direction rl_dir[2] = {direction::read, direction::write};

constexpr std::size_t rl_rate(const rate_limit_config& c, int d) noexcept { return d ? c.write_rate : c.read_rate; }
constexpr std::size_t rl_burst(const rate_limit_config& c, int d) noexcept { return d ? c.write_burst : c.read_burst; }

// The enumerator is looked up when used with a bufferevent type, after the
// core defined it.
template <class Bev>
constexpr auto rate_limit_reason() noexcept {
  using reason = std::conditional_t<sizeof(Bev) != 0, suspend_reason, void>;
  return reason::rate_limit;
}

/// Read and write token counts, refilled by whole ticks since `last`.
template <class Clock>
struct token_bucket {
  using time_point = typename Clock::time_point;
  std::int64_t tokens[2] = {0, 0};
  time_point last{};

  static typename Clock::duration tick_of(const rate_limit_config& c) noexcept {
    using dur = typename Clock::duration;
    const auto t = std::chrono::duration_cast<dur>(c.tick);
    return t > dur::zero() ? t : dur(1);
  }

  void init(const rate_limit_config& c, time_point now) noexcept {
    tokens[0] = static_cast<std::int64_t>(c.read_rate);
    tokens[1] = static_cast<std::int64_t>(c.write_rate);
    last = now;
  }

  // A smaller burst clips the balance; the tick phase is kept (libevent's
  // reinitialisation).
  void clip(const rate_limit_config& c) noexcept {
    for (int d = 0; d < 2; ++d)
      tokens[d] = std::min(tokens[d], static_cast<std::int64_t>(rl_burst(c, d)));
  }

  void update(const rate_limit_config& c, time_point now) noexcept {
    if (now <= last) return;
    const auto tick = tick_of(c);
    const auto n = (now - last) / tick;
    if (n <= 0) return;
    last += n * tick;
    for (int d = 0; d < 2; ++d) {
      const auto rate = static_cast<std::int64_t>(rl_rate(c, d));
      const auto burst = static_cast<std::int64_t>(rl_burst(c, d));
      if (tokens[d] >= burst) continue;
      const std::int64_t need = burst - tokens[d];  // no overflow: both within +-max/4
      if (static_cast<std::int64_t>(n) >= (need + rate - 1) / rate) tokens[d] = burst;
      else tokens[d] += static_cast<std::int64_t>(n) * rate;
    }
  }

  // Saturating, so no sequence of deductions can overflow.
  void take(int d, std::size_t n) noexcept {
    constexpr auto floor = -static_cast<std::int64_t>(max_rate_limit);
    const auto m = static_cast<std::int64_t>(std::min(n, max_rate_limit));
    tokens[d] = std::max(floor, tokens[d] - m);
  }
};

/// What a group knows of a member: how to suspend and resume it.
class rate_limit_member {
 public:
  virtual void group_suspend(int d) = 0;
  virtual void group_resume(int d) = 0;

 protected:
  ~rate_limit_member() = default;
};

template <class Bev, class TimerPolicy>
class rate_limit_state;

/// Per-bufferevent state of `no_rate_limit`: nothing.
struct no_rate_limit_state {};

}  // namespace detail

/// No rate limiting (the default): no storage, no code.
struct no_rate_limit {
  using policy_category = detail::rate_limit_category;
  static constexpr bool enabled = false;
  template <class Bev, class TimerPolicy>
  using state = detail::no_rate_limit_state;
};

/// Token buckets per bufferevent and per group (libevent's rate limiting);
/// configure with `bev.rate_limit()`.
struct rate_limited {
  using policy_category = detail::rate_limit_category;
  static constexpr bool enabled = true;
  template <class Bev, class TimerPolicy>
  using state = detail::rate_limit_state<Bev, TimerPolicy>;
};

/// A bucket shared by several bufferevents (bufferevent_rate_limit_group).
///
/// Bound to one executor: the group and all its members must run their handlers
/// serially there (one thread, or one strand). Create with `create`; members
/// keep the group alive. The timer policy must be the members' timer policy.
///
/// Fairness: each I/O of a member may move at most the group bucket divided by
/// the number of members, but never less than the minimum share (libevent's
/// min_share, default 64, capped at the rates). When the bucket is empty every
/// member is suspended; on refill they are resumed in turn, starting one member
/// further each time (libevent starts at a random member).
template <class TimerPolicy = steady_timers>
class basic_rate_limit_group : public std::enable_shared_from_this<basic_rate_limit_group<TimerPolicy>> {
  struct private_tag {};

 public:
  using timer_policy = TimerPolicy;
  using clock_type = typename TimerPolicy::clock_type;
  using timer_type = typename TimerPolicy::timer_type;
  using executor_type = asio::any_io_executor;

  /// Default minimum share per I/O (libevent's).
  static constexpr std::size_t default_min_share = 64;

  /// Creates a group; nullptr with `ec` set if `cfg` is invalid.
  static std::shared_ptr<basic_rate_limit_group> create(executor_type ex, const rate_limit_config& cfg,
                                                        std::error_code& ec) {
    ec = cfg.validate();
    if (ec) return nullptr;
    return std::make_shared<basic_rate_limit_group>(private_tag{}, std::move(ex), cfg);
  }

  basic_rate_limit_group(private_tag, executor_type ex, const rate_limit_config& cfg)
      : ex_(std::move(ex)), timer_(ex_), cfg_(cfg) {
    bucket_.init(cfg_, clock_type::now());
    set_min_share(default_min_share);
  }
  basic_rate_limit_group(const basic_rate_limit_group&) = delete;
  basic_rate_limit_group& operator=(const basic_rate_limit_group&) = delete;
  ~basic_rate_limit_group() { timer_.cancel(); }

  executor_type get_executor() const noexcept { return ex_; }

  /// Changes rates, bursts and tick while running (bufferevent_rate_limit_group_set_cfg):
  /// the balance is clipped to the new burst, suspension is re-evaluated.
  std::error_code set_config(const rate_limit_config& cfg) {
    if (auto ec = cfg.validate()) return ec;
    auto keep = this->shared_from_this();
    bucket_.update(cfg_, clock_type::now());
    const bool new_tick = cfg.tick != cfg_.tick;
    cfg_ = cfg;
    bucket_.clip(cfg_);
    set_min_share(configured_min_share_);
    if (new_tick && timer_armed_) disarm();
    for (int d = 0; d < 2; ++d) reevaluate(d);
    return {};
  }
  const rate_limit_config& config() const noexcept { return cfg_; }

  /// Smallest budget a member gets per I/O while the group is not suspended.
  /// Capped at the read and write rates (so the bucket refills to it in one
  /// tick) and at least 1.
  void set_min_share(std::size_t share) noexcept {
    configured_min_share_ = share;
    min_share_ = std::max<std::size_t>(1, std::min({share, cfg_.read_rate, cfg_.write_rate}));
  }
  /// The minimum share in effect.
  std::size_t min_share() const noexcept { return min_share_; }

  /// Bytes read / written by all members since creation or reset_totals().
  std::uint64_t total_read() const noexcept { return totals_[0]; }
  std::uint64_t total_written() const noexcept { return totals_[1]; }
  void reset_totals() noexcept { totals_[0] = totals_[1] = 0; }

  /// The group bucket now (may be negative).
  std::int64_t read_limit() { return refreshed(0); }
  std::int64_t write_limit() { return refreshed(1); }

  /// Number of member bufferevents.
  std::size_t size() const noexcept { return members_.size(); }

  /// True while the group has suspended that direction of its members.
  bool suspended(direction d) const noexcept { return suspended_[d == direction::write ? 1 : 0]; }

 private:
  template <class, class>
  friend class detail::rate_limit_state;

  std::int64_t refreshed(int d) {
    bucket_.update(cfg_, clock_type::now());
    return bucket_.tokens[d];
  }

  // Budget of one I/O of one member.
  std::size_t share(int d) {
    if (suspended_[d]) return 0;
    const std::int64_t t = refreshed(d);
    const auto n = static_cast<std::int64_t>(std::max<std::size_t>(1, members_.size()));
    const std::int64_t s = std::max(t / n, static_cast<std::int64_t>(min_share_));
    return static_cast<std::size_t>(s);
  }

  void consumed(int d, std::size_t n) {
    bucket_.update(cfg_, clock_type::now());
    bucket_.take(d, n);
    totals_[d] += n;
    if (bucket_.tokens[d] <= 0 && !suspended_[d]) suspend_all(d);
  }

  void join(detail::rate_limit_member* m) {
    members_.push_back(m);
    for (int d = 0; d < 2; ++d)
      if (suspended_[d]) m->group_suspend(d);
  }
  void leave(detail::rate_limit_member* m) noexcept {
    auto it = std::find(members_.begin(), members_.end(), m);
    if (it == members_.end()) return;
    const auto i = static_cast<std::size_t>(it - members_.begin());
    members_.erase(it);
    if (start_ > i) --start_;
    if (start_ >= members_.size()) start_ = 0;
  }

  void reevaluate(int d) {
    bucket_.update(cfg_, clock_type::now());
    if (bucket_.tokens[d] <= 0 && !suspended_[d]) suspend_all(d);
    else if (suspended_[d] && bucket_.tokens[d] >= static_cast<std::int64_t>(min_share_)) resume_all(d);
  }

  void suspend_all(int d) {
    suspended_[d] = true;
    for (std::size_t i = 0; i < members_.size(); ++i) members_[i]->group_suspend(d);
    arm();
  }

  // Members are resumed in turn from a start that moves on each time.
  void resume_all(int d) {
    suspended_[d] = false;
    const std::size_t n = members_.size();
    if (n == 0) return;
    const std::size_t first = start_ % n;
    start_ = (first + 1) % n;
    for (std::size_t k = 0; k < n && k < members_.size(); ++k)
      members_[(first + k) % members_.size()]->group_resume(d);
  }

  // Refills run only while a direction is suspended.
  void arm() {
    if (timer_armed_) return;
    timer_armed_ = true;
    const std::uint32_t gen = ++generation_;
    timer_.expires_at(bucket_.last + decltype(bucket_)::tick_of(cfg_));
    timer_.async_wait([w = this->weak_from_this(), gen](std::error_code ec) {
      if (ec == asio::error::operation_aborted) return;
      if (auto g = w.lock()) g->on_timer(gen);
    });
  }
  void disarm() {
    timer_armed_ = false;
    ++generation_;
    timer_.cancel();
  }

  void on_timer(std::uint32_t gen) {
    if (gen != generation_) return;
    timer_armed_ = false;
    bucket_.update(cfg_, clock_type::now());
    for (int d = 0; d < 2; ++d)
      if (suspended_[d] && bucket_.tokens[d] >= static_cast<std::int64_t>(min_share_)) resume_all(d);
    if (suspended_[0] || suspended_[1]) arm();
  }

  executor_type ex_;
  timer_type timer_;
  rate_limit_config cfg_;
  detail::token_bucket<clock_type> bucket_;
  std::vector<detail::rate_limit_member*> members_;
  std::uint64_t totals_[2] = {0, 0};
  std::size_t configured_min_share_ = default_min_share;
  std::size_t min_share_ = default_min_share;
  std::size_t start_ = 0;
  std::uint32_t generation_ = 0;
  bool suspended_[2] = {false, false};
  bool timer_armed_ = false;
};

/// A group on `asio::steady_timer`.
using rate_limit_group = basic_rate_limit_group<steady_timers>;

namespace detail {

/// Per-bufferevent state of `rate_limited`. A friend of the bufferevent; the
/// core calls `budget`, `consumed` and `close`; users reach the rest through
/// `rate_limiter`.
template <class Bev, class TimerPolicy>
class rate_limit_state final : public rate_limit_member {
 public:
  using clock_type = typename TimerPolicy::clock_type;
  using timer_type = typename TimerPolicy::timer_type;
  using group_type = basic_rate_limit_group<TimerPolicy>;

  rate_limit_state() = default;
  rate_limit_state(const rate_limit_state&) = delete;
  rate_limit_state& operator=(const rate_limit_state&) = delete;
  ~rate_limit_state() = default;

  // ---- core hooks (bufferevent lock held) ----

  std::size_t budget(int d, std::size_t n) const noexcept {
    if (cfg_) {
      bucket_.update(*cfg_, clock_type::now());
      n = std::min(n, static_cast<std::size_t>(std::max<std::int64_t>(0, bucket_.tokens[d])));
    }
    if (group_) n = std::min(n, group_->share(d));
    return n;
  }

  void consumed(Bev& b, int d, std::size_t n) {
    if (cfg_) {
      bucket_.update(*cfg_, clock_type::now());
      bucket_.take(d, n);
      if (bucket_.tokens[d] <= 0) {
        self_[d] = true;
        arm(b);
      }
    }
    if (group_) group_->consumed(d, n);
    sync(b);
  }

  void close(Bev&) {
    disarm();
    if (auto g = std::move(group_)) g->leave(this);
    bev_ = nullptr;
  }

  // ---- user operations (through rate_limiter) ----

  std::error_code set(Bev& b, const rate_limit_config& cfg) {
    std::lock_guard g(b.lock_state());
    if (auto ec = cfg.validate()) return ec;
    if (b.closed()) return make_error_code(errc::closed);
    const auto now = clock_type::now();
    if (!cfg_) {
      bucket_.init(cfg, now);
    } else {
      bucket_.update(*cfg_, now);
      bucket_.clip(cfg);
    }
    cfg_ = cfg;
    disarm();  // the tick may have changed
    reevaluate(b);
    return {};
  }

  void clear(Bev& b) {
    std::lock_guard g(b.lock_state());
    cfg_.reset();
    self_[0] = self_[1] = false;
    disarm();
    if (!b.closed()) sync(b);
  }

  std::error_code join(Bev& b, const std::shared_ptr<group_type>& grp) {
    std::lock_guard g(b.lock_state());
    if (!grp) return make_error_code(errc::invalid_argument);
    if (b.closed()) return make_error_code(errc::closed);
    if (grp == group_) return {};
    leave_locked(b);
    bev_ = &b;
    group_ = grp;
    group_->join(this);
    sync(b);
    return {};
  }

  void leave(Bev& b) {
    std::lock_guard g(b.lock_state());
    leave_locked(b);
    if (!b.closed()) sync(b);
  }

  std::error_code decrement(Bev& b, int d, std::int64_t n) {
    std::lock_guard g(b.lock_state());
    if (!cfg_) return make_error_code(errc::invalid_argument);
    if (b.closed()) return make_error_code(errc::closed);
    bucket_.update(*cfg_, clock_type::now());
    if (n >= 0) bucket_.take(d, static_cast<std::size_t>(n));
    else bucket_.tokens[d] = std::min(static_cast<std::int64_t>(max_rate_limit),
                                      bucket_.tokens[d] - std::max(n, -static_cast<std::int64_t>(max_rate_limit)));
    reevaluate(b);
    return {};
  }

  std::int64_t limit(Bev& b, int d) const {
    std::lock_guard g(b.lock_state());
    if (!cfg_) return std::numeric_limits<std::int64_t>::max();
    bucket_.update(*cfg_, clock_type::now());
    return bucket_.tokens[d];
  }

  std::optional<rate_limit_config> config() const noexcept { return cfg_; }
  std::shared_ptr<group_type> group() const noexcept { return group_; }
  bool suspended(int d) const noexcept { return applied_[d]; }
  bool refill_pending() const noexcept { return armed_; }

 private:
  // ---- group callbacks: the group runs on the members' executor ----

  void group_suspend(int d) override { group_changed(d, true); }
  void group_resume(int d) override { group_changed(d, false); }

  void group_changed(int d, bool on) {
    if (!bev_) return;
    Bev& b = *bev_;
    detail::ref_ptr<Bev> keep(&b);
    std::lock_guard g(b.lock_state());
    group_suspended_[d] = on;
    if (!b.closed()) sync(b);
  }

  void leave_locked(Bev&) {
    if (auto g = std::move(group_)) g->leave(this);
    group_suspended_[0] = group_suspended_[1] = false;
  }

  // After a configuration change: a direction with an empty bucket is
  // suspended and waits for a refill; one with tokens runs.
  void reevaluate(Bev& b) {
    for (int d = 0; d < 2; ++d) self_[d] = bucket_.tokens[d] <= 0;
    if (self_[0] || self_[1]) arm(b);
    else disarm();
    sync(b);
  }

  // Applies "suspended by the own bucket or by the group" to the core.
  void sync(Bev& b) {
    for (int d = 0; d < 2; ++d) {
      const bool want = self_[d] || group_suspended_[d];
      if (want == applied_[d]) continue;
      applied_[d] = want;
      if (want) b.suspend(rl_dir[d], rate_limit_reason<Bev>());
      else b.unsuspend(rl_dir[d], rate_limit_reason<Bev>());
    }
  }

  // One timer per bufferevent, allocated on first need, armed only while a
  // direction is suspended by its own bucket; it fires at the next tick.
  void arm(Bev& b) {
    if (armed_) return;
    if (!timer_) timer_ = std::make_unique<timer_type>(b.get_executor());
    armed_ = true;
    const std::uint32_t gen = ++generation_;
    timer_->expires_at(bucket_.last + token_bucket<clock_type>::tick_of(*cfg_));
    timer_->async_wait([self = detail::ref_ptr<Bev>(&b), gen](std::error_code ec) {
      std::lock_guard g(self->lock_state());
      self->rate_.on_timer(*self, gen, ec);
    });
  }
  void disarm() {
    if (!armed_) return;
    armed_ = false;
    ++generation_;
    timer_->cancel();
  }

  void on_timer(Bev& b, std::uint32_t gen, std::error_code ec) {
    if (ec == asio::error::operation_aborted || gen != generation_ || b.closed() || !cfg_) return;
    armed_ = false;
    bucket_.update(*cfg_, clock_type::now());
    for (int d = 0; d < 2; ++d)
      if (self_[d] && bucket_.tokens[d] > 0) self_[d] = false;
    if (self_[0] || self_[1]) arm(b);  // started deeper than one tick's worth
    sync(b);
  }

  std::optional<rate_limit_config> cfg_;
  mutable token_bucket<clock_type> bucket_;
  std::unique_ptr<timer_type> timer_;
  std::shared_ptr<group_type> group_;
  Bev* bev_ = nullptr;  // for the group's callbacks; set while a member
  std::uint32_t generation_ = 0;
  bool armed_ = false;
  bool self_[2] = {false, false};             // own bucket empty
  bool group_suspended_[2] = {false, false};  // group bucket empty
  bool applied_[2] = {false, false};          // suspend_reason::rate_limit set in the core
};

}  // namespace detail

/// User interface of a `rate_limited` bufferevent, from `bev.rate_limit()`.
/// A light handle: get a new one whenever needed. Each call takes the
/// bufferevent's lock.
template <class Bev, class State>
class rate_limiter {
 public:
  using group_type = typename State::group_type;

  rate_limiter(Bev& b, State& s) noexcept : b_(b), s_(s) {}

  /// Sets or changes this bufferevent's buckets (bufferevent_set_rate_limit).
  /// First time: the buckets start at the rate. Later: the balance is clipped
  /// to the new burst and the new rate applies from the next tick.
  std::error_code set(const rate_limit_config& cfg) { return s_.set(b_, cfg); }
  /// Removes this bufferevent's own buckets (group membership stays).
  void clear() { s_.clear(b_); }
  /// The own configuration, if any.
  std::optional<rate_limit_config> config() const noexcept { return s_.config(); }

  /// Joins a group (leaving any previous one); the group shares its bucket.
  std::error_code add_to_group(const std::shared_ptr<group_type>& g) { return s_.join(b_, g); }
  /// Leaves the group, if any.
  void remove_from_group() { s_.leave(b_); }
  std::shared_ptr<group_type> group() const noexcept { return s_.group(); }

  /// The own bucket now (bufferevent_get_read_limit); INT64_MAX without one.
  std::int64_t read_limit() const { return s_.limit(b_, 0); }
  std::int64_t write_limit() const { return s_.limit(b_, 1); }
  /// Most bytes the next read / write may move (bufferevent_get_max_to_read).
  std::size_t max_to_read() const { return s_.budget(0, b_.max_single_read()); }
  std::size_t max_to_write() const { return s_.budget(1, b_.max_single_write()); }

  /// Takes n bytes from (negative: gives to) the own bucket
  /// (bufferevent_decrement_read_limit), suspending or resuming as needed.
  std::error_code decrement_read_limit(std::int64_t n) { return s_.decrement(b_, 0, n); }
  std::error_code decrement_write_limit(std::int64_t n) { return s_.decrement(b_, 1, n); }

  /// True while rate limiting (own bucket or group) suspends that direction.
  bool suspended(direction d) const noexcept { return s_.suspended(d == direction::write ? 1 : 0); }
  /// True while the own refill timer is armed.
  bool refill_pending() const noexcept { return s_.refill_pending(); }

 private:
  Bev& b_;
  State& s_;
};

}  // namespace bufev
