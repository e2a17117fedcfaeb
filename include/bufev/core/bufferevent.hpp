// basic_bufferevent: a transport composed with input/output buffers and the
// watermark, deferral, locking, timer and handler policies. libevent's
// bufferevent semantics (../docs/core.md), on an Asio executor.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <tuple>
#include <type_traits>
#include <utility>

#include <asio/any_io_executor.hpp>
#include <asio/error.hpp>
#include <asio/execution.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include <bufev/buffers/concepts.hpp>
#include <bufev/buffers/evbuffer.hpp>
#include <bufev/core/detail/move_bytes.hpp>
#include <bufev/core/detail/timeouts.hpp>
#include <bufev/core/handler.hpp>
#include <bufev/core/ref_ptr.hpp>
#include <bufev/error.hpp>
#include <bufev/events.hpp>
#include <bufev/policies/buffers.hpp>
#include <bufev/policies/deferral.hpp>
#include <bufev/policies/locking.hpp>
#include <bufev/policies/policy_set.hpp>
#include <bufev/policies/rate_limit.hpp>
#include <bufev/policies/timers.hpp>
#include <bufev/policies/watermarks.hpp>
#include <bufev/transports/concepts.hpp>

namespace bufev {

// A filter reaches into the bufferevent it wraps (to share its lock), so it is
// a friend of every bufferevent (transports/filter.hpp).
template <class Lower, class Filter>
class filter_transport;

/// Options of `trigger` and `trigger_event` (libevent's BEV_TRIG_*).
struct trigger_options {
  bool ignore_watermarks = false;  ///< run the callback whatever the buffer sizes
  bool defer = false;              ///< queue it on the executor even with immediate callbacks
};

/// Why a direction is suspended. Suspension is internal: `enabled()` never shows it.
enum class suspend_reason : std::uint8_t {
  watermark = 0x01,   ///< input at or above the read high watermark
  rate_limit = 0x02,  ///< token bucket empty
  lookup = 0x04,      ///< connect / DNS in progress
  filter = 0x08,      ///< a filter holds the direction
  transport = 0x10,   ///< transport-specific reasons
};

/// Limit meaning "no cap" for set_max_single_read/write.
inline constexpr std::size_t unlimited = std::numeric_limits<std::size_t>::max();

namespace detail {
template <class T>
concept has_default_max_single = requires {
  { T::default_max_single_read } -> std::convertible_to<std::size_t>;
  { T::default_max_single_write } -> std::convertible_to<std::size_t>;
};
// A transport may name one more class (typically its base) that implements
// part of it and so needs the transport interface too.
template <class T>
struct transport_helper {
  using type = T;
};
template <class T>
  requires requires { typename T::transport_helper_type; }
struct transport_helper<T> {
  using type = typename T::transport_helper_type;
};

template <class T>
constexpr std::size_t default_max_single_read() {
  if constexpr (has_default_max_single<T>) return T::default_max_single_read;
  else return 64 * 1024;
}
template <class T>
constexpr std::size_t default_max_single_write() {
  if constexpr (has_default_max_single<T>) return T::default_max_single_write;
  else return 64 * 1024;
}
}  // namespace detail

/// A buffered I/O object in libevent's sense, on an Asio executor.
///
/// `Transport` moves bytes (pair_transport, socket transports, filters);
/// `Policies...` pick, per axis, the first matching policy or the default:
/// buffers<evbuffer> / runtime_watermarks / immediate_callbacks / unlocked /
/// steady_timers / handler<dynamic_callbacks>.
///
/// Instances live on the heap (create them with `create` or a transport's
/// factory such as `make_pair`) and are owned through `bufferevent_ptr`.
template <class Transport, class... Policies>
class basic_bufferevent {
  static_assert((detail::policy<Policies> && ...),
                "bufev: every policy type must name its axis with a nested policy_category");
  static_assert((detail::known_category_v<Policies> && ...),
                "bufev: unknown policy category");
  using buffers_policy =
      detail::select_policy_t<detail::buffers_category, buffers<evbuffer>, Policies...>;
  using handler_policy =
      detail::select_policy_t<detail::handler_category, bufev::handler<dynamic_callbacks>, Policies...>;

 public:
  using transport_type = Transport;
  using input_buffer_type = typename buffers_policy::input_type;
  using output_buffer_type = typename buffers_policy::output_type;
  using watermark_policy =
      detail::select_policy_t<detail::watermarks_category, runtime_watermarks, Policies...>;
  using deferral_policy =
      detail::select_policy_t<detail::deferral_category, immediate_callbacks, Policies...>;
  using locking_policy = detail::select_policy_t<detail::locking_category, unlocked, Policies...>;
  using timer_policy = detail::select_policy_t<detail::timers_category, steady_timers, Policies...>;
  using rate_limit_policy =
      detail::select_policy_t<detail::rate_limit_category, no_rate_limit, Policies...>;
  using handler_type = typename handler_policy::type;
  using clock_type = typename timer_policy::clock_type;
  using duration = typename clock_type::duration;
  using executor_type = asio::any_io_executor;

  static constexpr bool deferred = deferral_policy::deferred;
  static constexpr bool thread_safe = locking_policy::thread_safe;
  static constexpr bool dynamic = std::is_same_v<handler_type, dynamic_callbacks>;

  static_assert(!locking_policy::unlock_callbacks || deferred,
                "bufev: locked_unlock_callbacks requires deferred_callbacks (libevent refuses "
                "BEV_OPT_UNLOCK_CALLBACKS without BEV_OPT_DEFER_CALLBACKS)");

 private:
  using handler_storage = typename detail::handler_storage<handler_type, basic_bufferevent>::type;
  struct create_tag {};

 public:
  /// Creates a bufferevent; `args` construct the transport. Callbacks run on
  /// `ex`, except with a transport that has an executor of its own (a socket
  /// transport runs on its socket's, as Asio I/O objects do).
  template <class... TransportArgs>
  static bufferevent_ptr<basic_bufferevent> create(executor_type ex, TransportArgs&&... args) {
    return create_with(handler_storage{}, std::move(ex), std::forward<TransportArgs>(args)...);
  }

  /// Creates a bufferevent with a given handler object.
  template <class... TransportArgs>
  static bufferevent_ptr<basic_bufferevent> create_with(handler_storage h, executor_type ex,
                                                        TransportArgs&&... args) {
    static_assert(transport_for<Transport, basic_bufferevent>,
                  "bufev: Transport does not model bufev::transport_for<Transport, Bev>");
    if constexpr (!dynamic) static_assert(detail::check_handler<handler_type, basic_bufferevent>());
    return bufferevent_ptr<basic_bufferevent>(new basic_bufferevent(
        create_tag{}, std::move(h), std::move(ex), std::forward<TransportArgs>(args)...));
  }

  basic_bufferevent(const basic_bufferevent&) = delete;
  basic_bufferevent& operator=(const basic_bufferevent&) = delete;

  // ---- buffers -------------------------------------------------------------

  /// The input buffer. Its back is frozen while the transport does not own it:
  /// the user drains it, only the transport appends.
  input_buffer_type& input() noexcept { return input_; }
  const input_buffer_type& input() const noexcept { return input_; }
  /// The output buffer. Its front is frozen: the user appends, the transport drains.
  output_buffer_type& output() noexcept { return output_; }
  const output_buffer_type& output() const noexcept { return output_; }

  /// Appends bytes to the output. Never calls back synchronously; the transport
  /// sends them when writing is enabled. Safe from another thread with a locked
  /// policy, even from inside another bufferevent's callback (no lock-order
  /// deadlock: if the lock is busy the bytes go through a leaf-locked inbox).
  std::error_code write(const void* data, std::size_t n) {
    if constexpr (thread_safe) {
      if (!lock_.try_lock()) return write_to_inbox(data, n);
    }
    std::unique_lock<typename locking_policy::state> g(lock_, std::adopt_lock);
    if (closed_) return make_error_code(errc::closed);
    merge_inbox();
    return output_.add(data, n);
  }
  std::error_code write(std::string_view s) { return write(s.data(), s.size()); }

  /// Moves all of `src` to the output (segments relinked when types match).
  template <byte_buffer B>
  std::error_code write_buffer(B& src) {
    std::lock_guard g(lock_);
    if (closed_) return make_error_code(errc::closed);
    merge_inbox();
    const std::size_t n = src.size();
    if (detail::move_bytes(src, output_, n) != n) return make_error_code(errc::buffer_full);
    return {};
  }

  /// Removes up to n bytes from the input; returns how many.
  std::size_t read(void* out, std::size_t n) {
    std::lock_guard g(lock_);
    return input_.remove(out, n);
  }

  /// Moves all of the input to `dst`.
  template <byte_buffer B>
  std::error_code read_buffer(B& dst) {
    std::lock_guard g(lock_);
    const std::size_t n = input_.size();
    if (detail::move_bytes(input_, dst, n) != n) return make_error_code(errc::buffer_full);
    return {};
  }

  // ---- enable / disable ------------------------------------------------------

  /// Enables directions; restarts their timeouts.
  std::error_code enable(direction d) {
    detail::ref_ptr<basic_bufferevent> keep(this);
    std::lock_guard g(lock_);
    if (closed_) return make_error_code(errc::closed);
    enabled_ = enabled_ | d;
    update_read();
    update_write();
    if (any(d, direction::read)) restart_timeout(direction::read);
    if (any(d, direction::write)) restart_timeout(direction::write);
    return {};
  }

  /// Disables directions.
  void disable(direction d) {
    std::lock_guard g(lock_);
    enabled_ = enabled_ & ~d;
    update_read();
    update_write();
  }

  /// What the user enabled (never internal suspension).
  direction enabled() const noexcept { return enabled_; }

  // ---- watermarks ------------------------------------------------------------

  /// Sets low/high marks of the given directions (high 0 = unlimited).
  std::error_code setwatermark(direction d, std::size_t low, std::size_t high)
    requires watermark_policy::settable
  {
    std::lock_guard g(lock_);
    if (auto ec = marks_.set(d, {low, high})) return ec;
    check_read_high();
    check_writability();
    return {};
  }

  watermark getwatermark(direction d) const noexcept {
    return d == direction::write ? marks_.write_marks() : marks_.read_marks();
  }

  /// Writability with hysteresis: false once the output grows above the write
  /// high watermark, true again once it drains to the write low watermark.
  /// Changes are reported to `on_writability(bev, writable)`, once per change.
  bool writable() const noexcept { return writable_; }

  // ---- timeouts --------------------------------------------------------------

  /// Sets (or with nullopt clears) the read and write timeouts. A read timeout
  /// runs while reading is enabled and not suspended; a write timeout while
  /// writing is enabled and output is pending. On expiry the direction is
  /// disabled and event(timeout|reading or writing) fires once.
  void set_timeouts(std::optional<duration> read_timeout, std::optional<duration> write_timeout) {
    std::lock_guard g(lock_);
    if (closed_) return;
    if (!timeouts_) {
      if (!read_timeout && !write_timeout) return;
      timeouts_ = std::make_unique<detail::timeout_state<timer_policy>>(get_executor());
    }
    timeouts_->read.timeout = read_timeout;
    timeouts_->write.timeout = write_timeout;
    restart_timeout(direction::read);
    restart_timeout(direction::write);
  }

  std::optional<duration> read_timeout() const noexcept {
    return timeouts_ ? timeouts_->read.timeout : std::nullopt;
  }
  std::optional<duration> write_timeout() const noexcept {
    return timeouts_ ? timeouts_->write.timeout : std::nullopt;
  }

  // ---- limits ----------------------------------------------------------------

  /// Caps the bytes taken by one read (n > 0; `unlimited` for no cap).
  std::error_code set_max_single_read(std::size_t n) noexcept {
    if (n == 0) return make_error_code(errc::invalid_argument);
    max_single_read_ = n;
    return {};
  }
  /// Caps the bytes sent by one write (n > 0; `unlimited` for no cap).
  std::error_code set_max_single_write(std::size_t n) noexcept {
    if (n == 0) return make_error_code(errc::invalid_argument);
    max_single_write_ = n;
    return {};
  }
  std::size_t max_single_read() const noexcept { return max_single_read_; }
  std::size_t max_single_write() const noexcept { return max_single_write_; }

  /// Token buckets and groups (`rate_limited` policy; policies/rate_limit.hpp).
  auto rate_limit() noexcept
    requires rate_limit_policy::enabled
  {
    return rate_limiter<basic_bufferevent, rate_limit_state>(*this, rate_);
  }

  // ---- callbacks -------------------------------------------------------------

  /// The handler object (for dynamic callbacks: the set of callables).
  handler_storage& handler() noexcept { return handler_; }

  /// libevent-style callbacks; any callable, or nullptr to clear. Clearing a
  /// callback also suppresses a pending deferred call of it.
  template <class R, class W, class E>
  void setcb(R&& read_cb, W&& write_cb, E&& event_cb)
    requires dynamic
  {
    std::lock_guard g(lock_);
    handler_.read = std::forward<R>(read_cb);
    handler_.write = std::forward<W>(write_cb);
    handler_.event = std::forward<E>(event_cb);
  }
  /// Sets the writability callback (bufev extension).
  template <class F>
  void set_writability_cb(F&& f)
    requires dynamic
  {
    std::lock_guard g(lock_);
    handler_.writability = std::forward<F>(f);
  }
  const handler_storage& getcb() const noexcept
    requires dynamic
  {
    return handler_;
  }

  /// Runs the read and/or write callback as if the condition had happened.
  /// Honours watermarks unless told otherwise; synchronous unless the policy or
  /// the call defers.
  void trigger(direction d, trigger_options opt = {}) {
    detail::ref_ptr<basic_bufferevent> keep(this);
    std::lock_guard g(lock_);
    if (closed_) return;
    const bool defer = deferred || opt.defer;
    if (any(d, direction::read) &&
        (opt.ignore_watermarks || input_.size() >= marks_.read_marks().low)) {
      if (defer) { pending_.read = true; post_pending(); }
      else call_read();
    }
    if (!closed_ && any(d, direction::write) &&
        (opt.ignore_watermarks || output_.size() <= marks_.write_marks().low)) {
      if (defer) { pending_.write = true; post_pending(); }
      else call_write();
    }
  }

  /// Runs the event callback with these flags.
  void trigger_event(events what, std::error_code ec = {}, trigger_options opt = {}) {
    detail::ref_ptr<basic_bufferevent> keep(this);
    std::lock_guard g(lock_);
    if (closed_) return;
    if (deferred || opt.defer) queue_event(what, ec);
    else call_event(what, ec);
  }

  // ---- flush / close ---------------------------------------------------------

  /// Asks the transport to push data through (see the transport's docs):
  /// 1 if anything was processed, 0 if not, -1 on error.
  int flush(direction d, flush_mode mode) {
    detail::ref_ptr<basic_bufferevent> keep(this);
    std::lock_guard g(lock_);
    if (closed_) return -1;
    return transport_.flush(*this, d, mode);
  }

  /// Closes now: no callback runs after this returns, pending output is
  /// discarded, the transport is closed (a pair partner sees EOF). Idempotent.
  void close() {
    detail::ref_ptr<basic_bufferevent> keep(this);
    std::lock_guard g(lock_);
    close_now();
  }
  bool closed() const noexcept { return closed_.load(std::memory_order_relaxed); }

  // ---- locking ---------------------------------------------------------------

  /// The bufferevent's recursive lock (no-ops with the `unlocked` policy).
  /// Hold it to use input()/output() directly from another thread.
  void lock() { lock_.lock(); }
  void unlock() { lock_.unlock(); }
  bool try_lock() { return lock_.try_lock(); }

 private:
  void close_now() {
    if (closed_) return;
    closed_ = true;
    pending_ = {};
    // The timers go now, while their execution context surely exists: handlers
    // in flight may keep this object alive until that context is destroyed.
    timeouts_.reset();
    if constexpr (rate_limit_policy::enabled) rate_.close(*this);
    transport_reading_ = transport_writing_ = false;
    transport_.close(*this);
  }

 public:
  // ---- access ----------------------------------------------------------------

  /// The executor callbacks run on (a socket bufferevent's is its socket's).
  executor_type get_executor() const noexcept {
    if constexpr (transport_executor) return transport_.get_executor();
    else return ex_;
  }
  /// libevent's bufferevent_get_base: the executor.
  executor_type executor() const noexcept { return get_executor(); }
  Transport& transport() noexcept { return transport_; }
  const Transport& transport() const noexcept { return transport_; }

  /// Closes once every queued byte has left through the transport (sockets:
  /// after the output drains; pairs: flush(write, finished) first; filters:
  /// after each layer's trailer), then closes. No callback runs after this
  /// returns; an error or timeout while draining ends it at once. Use
  /// `bufferevent_ptr::reset_gracefully()` to hand over ownership too.
  void close_gracefully() {
    detail::ref_ptr<basic_bufferevent> keep(this);
    std::lock_guard g(lock_);
    if (closed_ || muted_) return;
    muted_ = true;
    const bool in_flight = pending_.posted;
    pending_ = pending_calls{};
    pending_.posted = in_flight;
    disable(direction::read);
    if constexpr (requires { transport_.close_gracefully(*this); }) {
      transport_.close_gracefully(*this);
    } else {
      (void)transport_.flush(*this, direction::write, flush_mode::finished);
      close_now();
    }
  }

  // ---- transport-specific operations, present when the transport has them ----

  /// Sockets: connect, opening a socket if there is none (rule 7).
  template <class Endpoint>
  std::error_code connect(const Endpoint& ep)
    requires requires(Transport& t, basic_bufferevent& b) { t.connect(b, ep); }
  {
    std::lock_guard g(lock_);
    if (closed_) return make_error_code(errc::closed);
    return transport_.connect(*this, ep);
  }
  /// TCP sockets: resolve asynchronously, then connect (rule 7).
  template <class... Args>
  std::error_code connect_hostname(const std::string& host, unsigned short port, Args... family)
    requires requires(Transport& t, basic_bufferevent& b) { t.connect_hostname(b, host, port, family...); }
  {
    std::lock_guard g(lock_);
    if (closed_) return make_error_code(errc::closed);
    return transport_.connect_hostname(*this, host, port, family...);
  }
  /// Sockets: half-close once the output has drained.
  std::error_code shutdown_write()
    requires requires(Transport& t, basic_bufferevent& b) { t.shutdown_write(b); }
  {
    std::lock_guard g(lock_);
    if (closed_) return make_error_code(errc::closed);
    return transport_.shutdown_write(*this);
  }
  /// Sockets: the Asio socket (socket options, endpoints...).
  auto& socket() requires requires(Transport& t) { t.socket(); }
  {
    return transport_.socket();
  }
  /// Sockets: replace the socket (bufferevent_setfd).
  template <class Socket>
  void assign(Socket&& s) requires requires(Transport& t, basic_bufferevent& b) { t.assign(b, std::forward<Socket>(s)); }
  {
    std::lock_guard g(lock_);
    transport_.assign(*this, std::forward<Socket>(s));
    update_read();
    update_write();
  }
  /// Sockets: the address connected to (bufferevent_socket_get_conn_address).
  auto get_conn_address() const requires requires(const Transport& t) { t.get_conn_address(); }
  {
    return transport_.get_conn_address();
  }
  /// Sockets: the resolver's error after a failed connect_hostname.
  std::error_code dns_error() const requires requires(const Transport& t) { t.dns_error(); }
  {
    return transport_.dns_error();
  }

  /// Pair: the other side (nullptr once it is gone).
  auto partner() requires requires(Transport& t, basic_bufferevent& b) { t.partner(b); }
  {
    return transport_.partner(*this);
  }
  /// Transports with a descriptor (a filter delegates to its underlying).
  auto native_handle() requires requires(Transport& t) { t.native_handle(); }
  {
    return transport_.native_handle();
  }
  /// Filters: the wrapped bufferevent.
  auto& underlying() requires requires(Transport& t) { t.underlying(); }
  {
    return transport_.underlying();
  }
  auto& next_layer() requires requires(Transport& t) { t.next_layer(); }
  {
    return transport_.next_layer();
  }
  auto& lowest_layer() requires requires(Transport& t) { t.lowest_layer(); }
  {
    return transport_.lowest_layer();
  }

 private:
  friend Transport;
  template <class, class>
  friend class filter_transport;  // a filter above this one shares its lock
  friend typename detail::transport_helper<Transport>::type;
  friend class detail::ref_ptr<basic_bufferevent>;
  friend class bufferevent_ptr<basic_bufferevent>;
  using rate_limit_state = typename rate_limit_policy::template state<basic_bufferevent, timer_policy>;
  friend rate_limit_state;

  template <class... TransportArgs>
  basic_bufferevent(create_tag, handler_storage h, executor_type ex, TransportArgs&&... args)
      : transport_(std::forward<TransportArgs>(args)...),
        ex_(own_executor(std::move(ex))),
        io_post_ex_(io_context_post_executor(get_executor())),
        handler_(std::move(h)),
        max_single_read_(detail::default_max_single_read<Transport>()),
        max_single_write_(detail::default_max_single_write<Transport>()) {
    input_.set_observer({&basic_bufferevent::input_changed, this});
    output_.set_observer({&basic_bufferevent::output_changed, this});
    freeze_user_ends();
    // A transport that must know its bufferevent from the start (a filter links
    // itself to the bufferevent it wraps) gets it once, fully constructed.
    if constexpr (requires(Transport& t) { t.attach(*this); }) transport_.attach(*this);
  }

  ~basic_bufferevent() {
    close_now();
    input_.set_observer({});
    output_.set_observer({});
  }

  void add_ref() noexcept { ++refs_; }
  void release() noexcept {
    if (--refs_ == 0) delete this;
  }

  // ---- interface for transports (friend Transport) ---------------------------

  /// While alive, the transport owns the frozen ends and buffer changes are its
  /// own I/O, which it reports explicitly.
  class io_scope {
   public:
    explicit io_scope(basic_bufferevent& b) : b_(b) {
      if (b_.io_depth_++ == 0) b_.thaw_user_ends();
    }
    ~io_scope() {
      if (--b_.io_depth_ == 0) b_.freeze_user_ends();
    }
    io_scope(const io_scope&) = delete;
    io_scope& operator=(const io_scope&) = delete;

   private:
    basic_bufferevent& b_;
  };

  /// Bytes the transport may add to the input now: the per-read cap, bounded by
  /// the room below the read high watermark.
  std::size_t read_budget() const noexcept {
    std::size_t n = max_single_read_;
    const std::size_t high = marks_.read_marks().high;
    if (high) n = std::min(n, high > input_.size() ? high - input_.size() : 0);
    if constexpr (rate_limit_policy::enabled) n = rate_.budget(0, n);
    return n;
  }
  std::size_t write_budget() const noexcept {
    const std::size_t n = std::min(max_single_write_, output_.size());
    if constexpr (rate_limit_policy::enabled) return rate_.budget(1, n);
    else return n;
  }

  bool reading_active() const noexcept { return transport_reading_; }
  bool writing_active() const noexcept { return transport_writing_; }

  void suspend(direction d, suspend_reason r) {
    if (any(d, direction::read)) read_suspend_ |= static_cast<std::uint8_t>(r);
    if (any(d, direction::write)) write_suspend_ |= static_cast<std::uint8_t>(r);
    update_read();
    update_write();
  }
  void unsuspend(direction d, suspend_reason r) {
    if (any(d, direction::read)) read_suspend_ &= static_cast<std::uint8_t>(~static_cast<std::uint8_t>(r));
    if (any(d, direction::write)) write_suspend_ &= static_cast<std::uint8_t>(~static_cast<std::uint8_t>(r));
    update_read();
    update_write();
  }

  /// The transport appended n bytes to the input.
  void transport_read_done(std::size_t n) {
    if (closed_ || n == 0) return;
    touch_timeout(direction::read);
    if constexpr (rate_limit_policy::enabled) rate_.consumed(*this, 0, n);
    check_read_high();
    if (input_.size() >= marks_.read_marks().low) {
      if constexpr (deferred) { pending_.read = true; post_pending(); }
      else call_read();
    }
  }

  /// The transport removed n bytes from the output (they are sent).
  void transport_wrote(std::size_t n) {
    if (closed_ || n == 0) return;
    touch_timeout(direction::write);
    if constexpr (rate_limit_policy::enabled) rate_.consumed(*this, 1, n);
    check_writability();
    update_write();
    if (output_.size() <= marks_.write_marks().low) {
      if constexpr (deferred) { pending_.write = true; post_pending(); }
      else call_write();
    }
  }

  /// eof / error / connected from the transport. EOF or an error on a direction
  /// disables it (as libevent does); the other direction stays as it was.
  void transport_event(events what, std::error_code ec = {}) {
    if (closed_) return;
    if (muted_) {  // closing gracefully: a failure ends it, nobody is told
      if (any(what, events::error | events::timeout | events::eof)) close_now();
      return;
    }
    direction off = direction::none;
    if (any(what, events::eof | events::error | events::timeout)) {
      if (any(what, events::reading)) off = off | direction::read;
      if (any(what, events::writing)) off = off | direction::write;
    }
    if (off != direction::none) disable(off);
    if constexpr (deferred) queue_event(what, ec);
    else call_event(what, ec);
  }

  /// transport_event from a fresh handler: for conditions found inside a user
  /// call (write, close of a partner) that must not call back synchronously.
  void post_transport_event(events what, std::error_code ec = {}) {
    post([self = detail::ref_ptr<basic_bufferevent>(this), what, ec] {
      std::lock_guard g(self->lock_);
      self->transport_event(what, ec);
    });
  }

  /// Runs `f` from a new handler on the executor (asio::post semantics).
  template <class F>
  void post(F&& f) {
    // An io_context executor (the common case) is posted to without type
    // erasure: its non-blocking form is made once, at construction, and each
    // post is one recycled handler allocation instead of two.
    if (io_post_ex_)
      asio::execution::execute(*io_post_ex_, std::forward<F>(f));
    else
      asio::execution::execute(asio::prefer(asio::require(get_executor(), asio::execution::blocking.never),
                                            asio::execution::relationship.fork),
                               std::forward<F>(f));
  }

  /// Collects deferred callbacks raised while a transport works inside a
  /// handler of its own (a pair transfer) and runs them when it ends: still
  /// "after the current handler" for user code, and one post fewer per hop.
  class callback_batch {
   public:
    explicit callback_batch(basic_bufferevent& b) noexcept
        : b_(b), owner_(!b.pending_.posted) {
      b_.pending_.posted = true;  // nobody posts while the batch is open
    }
    ~callback_batch() {
      if (owner_) b_.pending_.posted = false;
      if (b_.pending_.any()) b_.run_pending();
    }
    callback_batch(const callback_batch&) = delete;
    callback_batch& operator=(const callback_batch&) = delete;

   private:
    basic_bufferevent& b_;
    bool owner_;
  };

  typename locking_policy::state& lock_state() noexcept { return lock_; }
  input_buffer_type& input_buffer() noexcept { return input_; }
  output_buffer_type& output_buffer() noexcept { return output_; }

  // ---- state updates -------------------------------------------------------

  bool should_read() const noexcept {
    return !closed_ && any(enabled_, direction::read) && read_suspend_ == 0;
  }
  bool should_write() const noexcept {
    return !closed_ && any(enabled_, direction::write) && write_suspend_ == 0 && !output_.empty();
  }

  // State is recorded before the transport is called, so a transport that
  // calls back into the core (and so into update_*) sees it consistent.
  void update_read() {
    const bool active = should_read();
    if (active != transport_reading_) {
      transport_reading_ = active;
      if (active) transport_.start_reading(*this);
      else transport_.stop_reading(*this);
    }
    sync_timeout(direction::read);
  }
  void update_write() {
    const bool active = should_write();
    if (active != transport_writing_) {
      transport_writing_ = active;
      if (active) transport_.start_writing(*this);
      else transport_.stop_writing(*this);
    }
    sync_timeout(direction::write);
  }

  void check_read_high() {
    const std::size_t high = marks_.read_marks().high;
    const bool over = high != 0 && input_.size() >= high;
    const bool suspended = read_suspend_ & static_cast<std::uint8_t>(suspend_reason::watermark);
    if (over && !suspended) suspend(direction::read, suspend_reason::watermark);
    else if (!over && suspended) unsuspend(direction::read, suspend_reason::watermark);
  }

  void check_writability() {
    const watermark w = marks_.write_marks();
    bool now = writable_;
    if (w.high == 0) now = true;
    else if (output_.size() > w.high) now = false;
    else if (output_.size() <= w.low) now = true;
    if (now == writable_) return;
    writable_ = now;
    // Always queued, whatever the deferral policy: a change is found inside
    // write(), output().add() or setwatermark(), which never call back.
    pending_.writability = true;
    post_pending();
  }

  // Buffer observers: react to the user's own changes through the buffer API.
  static void input_changed(void* self, const buffer_change& c) {
    auto* b = static_cast<basic_bufferevent*>(self);
    if (b->io_depth_ == 0 && c.n_deleted != 0) b->check_read_high();
  }
  static void output_changed(void* self, const buffer_change&) {
    auto* b = static_cast<basic_bufferevent*>(self);
    if (b->io_depth_ != 0 || b->closed_) return;
    b->check_writability();
    b->update_write();
  }

  void freeze_user_ends() noexcept {
    if constexpr (freezable_buffer<input_buffer_type>) input_.freeze(buffer_end::back);
    if constexpr (freezable_buffer<output_buffer_type>) output_.freeze(buffer_end::front);
  }
  void thaw_user_ends() noexcept {
    if constexpr (freezable_buffer<input_buffer_type>) input_.unfreeze(buffer_end::back);
    if constexpr (freezable_buffer<output_buffer_type>) output_.unfreeze(buffer_end::front);
  }

  // ---- callbacks -----------------------------------------------------------

  // With unlock-callbacks the lock is released around user code. Callers hold it
  // exactly once (deferred handlers take it once).
  struct callback_unlock {
    explicit callback_unlock(basic_bufferevent& b) : b_(b) {
      if constexpr (locking_policy::unlock_callbacks) b_.lock_.unlock();
    }
    ~callback_unlock() {
      if constexpr (locking_policy::unlock_callbacks) b_.lock_.lock();
    }
    basic_bufferevent& b_;
  };

  void call_read() {
    if (muted_) return;
    if constexpr (read_handler<handler_storage, basic_bufferevent>) {
      callback_unlock u(*this);
      handler_.on_read(*this);
    }
  }
  void call_write() {
    if (muted_) return;
    if constexpr (write_handler<handler_storage, basic_bufferevent>) {
      callback_unlock u(*this);
      handler_.on_write(*this);
    }
  }
  void call_event(events what, std::error_code ec) {
    if (muted_) return;
    if constexpr (event_handler<handler_storage, basic_bufferevent>) {
      callback_unlock u(*this);
      handler_.on_event(*this, what, ec);
    }
  }
  void call_writability() {
    if (muted_) return;
    if constexpr (writability_handler<handler_storage, basic_bufferevent>) {
      // Reported whenever it changed since the last report, even if it changed
      // back: a producer that saw writable() == false must hear "true".
      callback_unlock u(*this);
      handler_.on_writability(*this, writable_);
    }
  }

  // Deferred callbacks: one post at a time; events coalesce by OR-ing flags.
  struct pending_calls {
    events connected = events::none;
    events other = events::none;
    std::error_code ec;
    bool read = false;
    bool write = false;
    bool writability = false;
    bool posted = false;
    bool any() const noexcept {
      return read || write || writability || connected != events::none || other != events::none;
    }
  };

  void queue_event(events what, std::error_code ec) {
    if (any(what, events::connected)) {
      pending_.connected |= events::connected;
      what &= ~events::connected;
    }
    if (what != events::none) {
      pending_.other |= what;
      if (!pending_.ec) pending_.ec = ec;
    }
    post_pending();
  }

  void post_pending() {
    if (pending_.posted) return;
    pending_.posted = true;
    post([self = detail::ref_ptr<basic_bufferevent>(this)] {
      std::lock_guard g(self->lock_);
      self->pending_.posted = false;
      self->run_pending();
    });
  }

  // Order: connected, read, write, writability, other events.
  void run_pending() {
    const bool in_flight = pending_.posted;  // a post in flight stays in flight
    pending_calls p = std::exchange(pending_, pending_calls{});
    pending_.posted = in_flight;
    if (closed_) return;
    if (p.connected != events::none) call_event(p.connected, {});
    if (p.read && !closed_) call_read();
    if (p.write && !closed_) call_write();
    if (p.writability && !closed_) call_writability();
    if (p.other != events::none && !closed_) call_event(p.other, p.ec);
  }

  // ---- timeouts ------------------------------------------------------------

  detail::timeout_slot<timer_policy>* slot(direction d) noexcept {
    if (!timeouts_) return nullptr;
    return d == direction::read ? &timeouts_->read : &timeouts_->write;
  }

  void touch_timeout(direction d) {
    if (auto* s = slot(d); s && s->armed) s->last = clock_type::now();
  }

  void disarm(detail::timeout_slot<timer_policy>& s) {
    if (!s.armed) return;
    s.armed = false;
    ++s.generation;
    s.timer.cancel();
  }

  void arm_at(direction d, detail::timeout_slot<timer_policy>& s,
              typename clock_type::time_point deadline) {
    s.armed = true;
    const std::uint32_t gen = ++s.generation;
    s.timer.expires_at(deadline);
    s.timer.async_wait([self = detail::ref_ptr<basic_bufferevent>(this), d, gen](std::error_code ec) {
      std::lock_guard g(self->lock_);
      self->on_timer(d, gen, ec);
    });
  }

  void sync_timeout(direction d) {
    auto* s = slot(d);
    if (!s) return;
    const bool run = s->timeout && (d == direction::read ? transport_reading_ : write_pending());
    if (run && !s->armed) {
      s->last = clock_type::now();
      arm_at(d, *s, s->last + *s->timeout);
    } else if (!run && s->armed) {
      disarm(*s);
    }
  }

  // Rule 2.8: the write timeout runs while output is pending: in this output,
  // or held below it by the transport (a filter's lower layers report it with
  // `write_pending()`), as long as writing is enabled and not suspended.
  bool write_pending() const noexcept {
    if (transport_writing_) return true;
    if constexpr (requires(const Transport& t) { { t.write_pending() } -> std::convertible_to<bool>; })
      return !closed_ && any(enabled_, direction::write) && write_suspend_ == 0 && transport_.write_pending();
    else return false;
  }

  /// For a transport that holds output below this bufferevent: re-checks the
  /// write timeout after that changed; `progress` restarts its period.
  void transport_write_progress(bool progress) {
    if (progress) touch_timeout(direction::write);
    sync_timeout(direction::write);
  }

  void restart_timeout(direction d) {
    if (auto* s = slot(d)) {
      disarm(*s);
      sync_timeout(d);
    }
  }

  void on_timer(direction d, std::uint32_t gen, std::error_code ec) {
    auto* s = slot(d);
    if (closed_ || !s || gen != s->generation || ec == asio::error::operation_aborted) return;
    s->armed = false;
    if (!s->timeout) return;
    if (d == direction::write && !write_pending()) return;  // drained below (filters)
    const auto due = s->last + *s->timeout;
    if (clock_type::now() < due) {  // activity since arming: wait for the rest
      arm_at(d, *s, due);
      return;
    }
    const events what = events::timeout | (d == direction::read ? events::reading : events::writing);
    transport_event(what, make_error_code(std::errc::timed_out));
  }

  // ---- cross-thread writes -------------------------------------------------

  struct inbox {
    std::mutex mutex;  // a leaf lock: nothing else is ever taken while it is held
    output_buffer_type bytes;
    std::atomic<bool> pending{false};
  };

  std::error_code write_to_inbox(const void* data, std::size_t n) {
    if constexpr (thread_safe) {
      if (closed_.load(std::memory_order_relaxed)) return make_error_code(errc::closed);
      std::call_once(inbox_once_, [this] { inbox_ = std::make_unique<inbox>(); });
      std::lock_guard g(inbox_->mutex);
      if (auto ec = inbox_->bytes.add(data, n)) return ec;
      if (!inbox_->pending.exchange(true)) {
        post([self = detail::ref_ptr<basic_bufferevent>(this)] {
          std::lock_guard lg(self->lock_);
          if (!self->closed_) self->merge_inbox();
        });
      }
      return {};
    } else {
      (void)data;
      (void)n;
      return {};
    }
  }

  // Caller holds the bufferevent lock. Bytes are taken out under the leaf lock
  // and appended after it is released.
  void merge_inbox() {
    if constexpr (thread_safe) {
      if (!inbox_ || !inbox_->pending.load(std::memory_order_acquire)) return;
      output_buffer_type bytes;
      {
        std::lock_guard g(inbox_->mutex);
        detail::move_bytes(inbox_->bytes, bytes, inbox_->bytes.size());
        inbox_->pending.store(false, std::memory_order_release);
      }
      detail::move_bytes(bytes, output_, bytes.size());
    }
  }

  // ---- data ------------------------------------------------------------------

  Transport transport_;
  input_buffer_type input_;
  output_buffer_type output_;
  // A transport whose executor is of this type (a socket) is asked for it: a
  // second copy would cost every connection sizeof(any_io_executor).
  static constexpr bool transport_executor = requires(const Transport& t) {
    { t.get_executor() } -> std::same_as<executor_type>;
  };
  using own_executor_type = std::conditional_t<transport_executor, std::tuple<>, executor_type>;
  static own_executor_type own_executor(executor_type ex) {
    if constexpr (transport_executor) return {};
    else return ex;
  }
  [[no_unique_address]] own_executor_type ex_;
  using io_post_executor = decltype(asio::prefer(
      asio::require(std::declval<asio::io_context::executor_type>(), asio::execution::blocking.never),
      asio::execution::relationship.fork));
  std::optional<io_post_executor> io_post_ex_;

  static std::optional<io_post_executor> io_context_post_executor(const executor_type& ex) {
    if (const auto* io = ex.template target<asio::io_context::executor_type>())
      return asio::prefer(asio::require(*io, asio::execution::blocking.never),
                          asio::execution::relationship.fork);
    return std::nullopt;
  }
  [[no_unique_address]] handler_storage handler_;
  [[no_unique_address]] watermark_policy marks_;
  [[no_unique_address]] typename locking_policy::state lock_;
  typename locking_policy::counter_type refs_{1};
  std::unique_ptr<detail::timeout_state<timer_policy>> timeouts_;
  [[no_unique_address]] std::conditional_t<thread_safe, std::unique_ptr<inbox>, std::tuple<>> inbox_{};
  [[no_unique_address]] std::conditional_t<thread_safe, std::once_flag, std::tuple<>> inbox_once_{};
  [[no_unique_address]] rate_limit_state rate_;
  std::size_t max_single_read_;
  std::size_t max_single_write_;
  pending_calls pending_{};
  int io_depth_ = 0;
  direction enabled_ = direction::write;
  std::uint8_t read_suspend_ = 0;
  std::uint8_t write_suspend_ = 0;
  bool transport_reading_ = false;
  bool transport_writing_ = false;
  // Atomic only so a cross-thread write() can refuse a closed bufferevent
  // without the lock; every other access holds the lock.
  std::atomic<bool> closed_{false};
  bool muted_ = false;  // closing gracefully: no more callbacks
  bool writable_ = true;
};

}  // namespace bufev
