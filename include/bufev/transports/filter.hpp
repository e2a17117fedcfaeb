// The filter transport: a bufferevent that wraps another one (a pair side, a
// socket, another filter) and transforms the bytes each way (spec section 4).
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <system_error>
#include <type_traits>
#include <utility>

#include <asio/steady_timer.hpp>

#include <bufev/core/bufferevent.hpp>
#include <bufev/core/handler.hpp>
#include <bufev/core/ref_ptr.hpp>
#include <bufev/error.hpp>
#include <bufev/events.hpp>
#include <bufev/filters/concepts.hpp>

namespace bufev {

/// Handler of a bufferevent that sits below a filter in a stack built by
/// `make_stack`: three function pointers into the filter above, set when it
/// attaches. No `std::function`, no virtual call, no allocation; a bufferevent
/// with `handler<filter_link>` has no user callbacks of its own.
struct filter_link {
  void* up = nullptr;
  void (*read)(void*) = nullptr;
  void (*write)(void*) = nullptr;
  void (*event)(void*, events, std::error_code) = nullptr;

  template <class Bev>
  void on_read(Bev&) {
    if (up) read(up);
  }
  template <class Bev>
  void on_write(Bev&) {
    if (up) write(up);
  }
  template <class Bev>
  void on_event(Bev&, events what, std::error_code ec) {
    if (up) event(up, what, ec);
  }
};

/// Transport of a filter bufferevent. It owns the lower bufferevent (closing or
/// freeing the filter frees it) and takes over its callbacks:
/// - input: lower input -> `filter_input` -> this input, in a loop while it
///   returns ok, reading is active, source data remains and this input is below
///   its high watermark; at the lower's EOF the filter runs once more in
///   `finished` mode before EOF is forwarded, so no trailer is lost;
/// - output: this output -> `filter_output` -> lower output, when the user
///   writes and when the lower output drains; in normal mode up to the lower
///   bufferevent's write high watermark;
/// - `flush(dir, mode)` runs the filter in that mode, ignoring watermarks, then
///   flushes the lower bufferevent; 1 if anything was processed;
/// - a graceful close waits, if it must, until this layer's output and trailer
///   have gone down (a TLS handshake, or input the filter needs, may come
///   first), then closes the lower bufferevent gracefully (spec rule 10);
/// - other events of the lower bufferevent are forwarded.
/// `Lower` must use dynamic callbacks (the transport calls `setcb`) or
/// `handler<filter_link>`.
template <class Lower, class Filter>
class filter_transport {
 public:
  using lower_type = Lower;
  using filter_type = Filter;
  // A filter moves what the watermarks allow; caps belong to the lowest layer.
  static constexpr std::size_t default_max_single_read = unlimited;
  static constexpr std::size_t default_max_single_write = unlimited;
  /// How much a filter queues in a lower bufferevent that has no write high
  /// watermark before it waits for that layer to drain.
  static constexpr std::size_t default_lower_batch = 256 * 1024;

  explicit filter_transport(bufferevent_ptr<Lower> lower, Filter f = Filter{})
      : lower_(std::move(lower)), filter_(std::move(f)) {}

  filter_transport(const filter_transport&) = delete;
  filter_transport& operator=(const filter_transport&) = delete;

  /// The filter object (its state, its options).
  Filter& filter() noexcept { return filter_; }
  const Filter& filter() const noexcept { return filter_; }

  /// The wrapped bufferevent (libevent's bufferevent_get_underlying). Valid
  /// until the filter bufferevent is closed.
  Lower& underlying() noexcept { return *lower_; }
  Lower& next_layer() noexcept { return *lower_; }
  /// The bufferevent at the bottom of the stack.
  auto& lowest_layer() noexcept {
    if constexpr (requires(Lower& l) { l.lowest_layer(); }) return lower_->lowest_layer();
    else return *lower_;
  }
  /// The lowest layer's descriptor, when it has one.
  auto native_handle()
    requires requires(Lower& l) { l.native_handle(); }
  {
    return lower_->native_handle();
  }

  /// Output held below this filter (rule 2.8: the write timeout runs while it
  /// is pending anywhere in the stack).
  bool write_pending() const noexcept {
    if (!lower_) return false;
    if (!lower_->output().empty()) return true;
    if constexpr (requires(const Lower& l) { l.transport().write_pending(); })
      return lower_->transport().write_pending();
    else return false;
  }

  // ---- transport_for --------------------------------------------------------

  template <class Up>
  void attach(Up& up) {
    static_assert(input_filter<Filter, typename Lower::input_buffer_type, typename Up::input_buffer_type>,
                  "bufev: Filter has no filter_input(lower input&, filter input&, std::size_t, "
                  "flush_mode) -> filter_result for these buffer types");
    static_assert(output_filter<Filter, typename Up::output_buffer_type, typename Lower::output_buffer_type>,
                  "bufev: Filter has no filter_output(filter output&, lower output&, std::size_t, "
                  "flush_mode) -> filter_result for these buffer types");
    if (!lower_) return;
    // One lock for the whole stack (rule 2.11) when the locking policies agree.
    if constexpr (std::is_same_v<typename Up::locking_policy::state, typename Lower::locking_policy::state>)
      up.lock_state().share_with(lower_->lock_state());
    link(up);
    if (detail::filter_needs_input(filter_)) (void)lower_->enable(direction::read);
    if (detail::filter_output_pending(filter_)) schedule_output(up);
  }

  template <class Up>
  void start_reading(Up& up) {
    if (!lower_) return;
    (void)lower_->enable(direction::read);
    schedule_input(up);  // pending lower data is never stranded (issues 362, 613)
  }
  template <class Up>
  void stop_reading(Up&) {
    if (lower_ && !wants_input()) lower_->disable(direction::read);
  }

  template <class Up>
  void start_writing(Up& up) {
    if (!lower_) {
      up.post_transport_event(events::writing | events::error, make_error_code(errc::closed));
      return;
    }
    schedule_output(up);  // a write never calls back synchronously (rule 2.4)
  }
  template <class Up>
  void stop_writing(Up&) noexcept {}

  /// Rule 2.13: runs the filter in `mode` (flush/finished ignore watermarks and
  /// run even with no data), then flushes the lower bufferevent. 1 if anything
  /// was processed, 0 if not, -1 on error.
  template <class Up>
  int flush(Up& up, direction d, flush_mode mode) {
    if (!lower_) return -1;
    detail::ref_ptr<Lower> keep(lower_.get());
    int result = 0;
    if (any(d, direction::read)) {
      if (mode != flush_mode::normal && lower_->flush(direction::read, mode) > 0) result = 1;
      if (run_input(up, mode)) result = 1;
    }
    if (any(d, direction::write) && !up.closed() && lower_) {
      if (run_output(up, mode)) result = 1;
      if (failed_) return -1;
      if (lower_) {
        const int r = lower_->flush(direction::write, mode);
        if (r < 0) return -1;
        if (r > 0) result = 1;
      }
    }
    return failed_ ? -1 : result;
  }

  /// Graceful close (`bev.close_gracefully()`, spec rule 10): this layer's
  /// output and trailer go down (`filter_output(finished)`), then the lower
  /// bufferevent is closed gracefully in turn, and so on to the bottom.
  ///
  /// If the filter cannot finish yet (its output is not empty afterwards, it
  /// returned `need_more`, or it still has output pending, e.g. a TLS
  /// handshake in flight), the layer stays alive on its own: it keeps reading
  /// from the lower layer as the filter needs, runs the output in `finished`
  /// mode again whenever the lower layer makes progress, and closes the lower
  /// layer gracefully once everything is down. A filter error, an error or
  /// timeout of the lower layer, or the lower layer's EOF while the filter
  /// still waits for input end it early. `close()` ends it at once.
  template <class Up>
  void close_gracefully(Up& up) {
    if (!lower_) {
      up.close();
      return;
    }
    graceful_ = true;
    run_output(up, flush_mode::finished);  // ends the close when all is down
    if (graceful_ && lower_ && !up.closed()) schedule_input(up);  // lower data already there
  }

  template <class Up>
  void close(Up&) {
    graceful_ = false;
    unlink();
    lower_.reset();  // close-on-free: the lower bufferevent goes with the filter
    hold_.reset();   // a waiting graceful close: its wait completes and lets go
  }

 private:
  template <class T>
  static constexpr bool always_false = false;

  // ---- links from the lower bufferevent ------------------------------------

  template <class Up>
  void link(Up& up) {
    Lower& l = *lower_;
    if constexpr (Lower::dynamic) {
      Up* p = &up;
      l.setcb([p](Lower&) { lower_read<Up>(p); }, [p](Lower&) { lower_write<Up>(p); },
              [p](Lower&, events what, std::error_code ec) { lower_event<Up>(p, what, ec); });
    } else if constexpr (std::is_same_v<typename Lower::handler_type, filter_link>) {
      l.handler() = filter_link{&up, &lower_read<Up>, &lower_write<Up>, &lower_event<Up>};
    } else {
      static_assert(always_false<Up>,
                    "bufev: the bufferevent below a filter must use dynamic callbacks or "
                    "handler<filter_link>");
    }
  }

  void unlink() {
    if (!lower_) return;
    if constexpr (Lower::dynamic) lower_->setcb(nullptr, nullptr, nullptr);
    else if constexpr (std::is_same_v<typename Lower::handler_type, filter_link>) lower_->handler() = filter_link{};
  }

  // Entered once per callback of the lower layer. "Closed" is tested as "the
  // lower layer is gone" (close and close_gracefully both drop it): testing
  // the atomic `closed()` here makes g++ 12 -O3 report a bogus
  // -Wstringop-overflow through the void* link.
  template <class Up>
  static void lower_read(void* p) {
    Up& up = *static_cast<Up*>(p);
    detail::ref_ptr<Up> keep(&up);
    std::lock_guard g(up.lock_state());
    if (up.transport_.lower_) up.transport_.run_input(up, flush_mode::normal);
  }

  template <class Up>
  static void lower_write(void* p) {
    Up& up = *static_cast<Up*>(p);
    detail::ref_ptr<Up> keep(&up);
    std::lock_guard g(up.lock_state());
    if (!up.transport_.lower_) return;
    up.transport_.run_output(up, flush_mode::normal);
    if (up.transport_.lower_) up.transport_write_progress(true);
  }

  template <class Up>
  static void lower_event(void* p, events what, std::error_code ec) {
    Up& up = *static_cast<Up*>(p);
    detail::ref_ptr<Up> keep(&up);
    std::lock_guard g(up.lock_state());
    auto& t = up.transport_;
    if (!t.lower_) return;
    what = detail::filter_on_lower_event(t.filter_, what, ec);
    if (any(what, events::eof) && any(what, events::reading)) {
      // End of input reaches the filter as `finished` first; EOF is forwarded
      // once the lower input has been filtered (run_input).
      t.eof_ = eof_state::pending;
      what &= ~(events::eof | events::reading);
    }
    if (what != events::none) up.transport_event(what, ec);
    if (!t.lower_) return;
    if (any(what, events::connected) && detail::filter_output_pending(t.filter_))
      t.run_output(up, flush_mode::normal);
    if (t.lower_ && t.eof_ == eof_state::pending) t.run_input(up, flush_mode::normal);
    if (t.graceful_ && t.lower_ && !up.closed() && t.eof_ == eof_state::pending) {
      // A graceful close still waiting when the lower input ends: the input it
      // may wait for will never come. One last pass, then the close ends.
      t.run_output(up, flush_mode::finished);
      if (t.graceful_ && t.lower_ && !up.closed()) t.end_graceful(up);
    }
  }

  // ---- scheduling ------------------------------------------------------------

  template <class Up>
  void schedule_input(Up& up) {
    if (in_posted_) return;
    in_posted_ = true;
    up.post([s = detail::ref_ptr<Up>(&up)] {
      std::lock_guard g(s->lock_state());
      s->transport_.in_posted_ = false;
      if (s->closed()) return;
      typename Up::callback_batch batch(*s);  // our own handler: deliver at its end
      s->transport_.run_input(*s, flush_mode::normal);
    });
  }

  template <class Up>
  void schedule_output(Up& up) {
    if (out_posted_) return;
    out_posted_ = true;
    up.post([s = detail::ref_ptr<Up>(&up)] {
      std::lock_guard g(s->lock_state());
      s->transport_.out_posted_ = false;
      if (s->closed()) return;
      typename Up::callback_batch batch(*s);
      s->transport_.run_output(*s, flush_mode::normal);
    });
  }

  template <class Up>
  void raise_filter_events(Up& up) {
    auto [what, ec] = detail::filter_take_events(filter_);
    if (what != events::none && !up.closed()) up.transport_event(what, ec);
  }

  template <class Up>
  void fail(Up& up, events what) {
    failed_ = true;
    if (graceful_) {
      // Nobody to tell: the close ends. A filter with output of its own (TLS:
      // the alert that says why) gets one last pass, then what is already
      // below goes as the lower layer closes gracefully.
      if (lower_ && detail::filter_output_pending(filter_)) {
        typename Up::io_scope scope(up);
        (void)filter_.filter_output(up.output_buffer(), lower_->output(), unlimited, flush_mode::finished);
        (void)detail::filter_take_events(filter_);
      }
      end_graceful(up);
      return;
    }
    up.transport_event(what | events::error, detail::filter_error(filter_));
  }

  // ---- graceful close ----------------------------------------------------------

  // The lower layer must keep reading: a handshake, or a graceful close whose
  // last `finished` pass asked for input.
  bool wants_input() const noexcept {
    return detail::filter_needs_input(filter_) || (graceful_ && graceful_need_more_);
  }

  // After each output pass of a graceful close: end it once this layer's
  // output and trailer are down, else wait for the lower layer.
  template <class Up>
  void graceful_step(Up& up) {
    if (!graceful_ || out_busy_ || up.closed() || !lower_) return;
    if (up.output_buffer().empty() && !graceful_need_more_ && !detail::filter_output_pending(filter_)) {
      end_graceful(up);
      return;
    }
    // Something still waits: input the filter needs, or the lower layer
    // draining (its write callback runs the next pass). If neither can come,
    // the filter will never make progress: end it rather than hang. (Reading
    // is never turned off here: input left unread in a socket when it closes
    // makes the kernel reset the connection.)
    const bool input = wants_input();
    if (input) (void)lower_->enable(direction::read);
    bool below = !lower_->output().empty();
    if constexpr (requires(const Lower& l) { l.transport().write_pending(); })
      below = below || lower_->transport().write_pending();
    if (!input && !below) {
      end_graceful(up);
      return;
    }
    hold(up);
  }

  // A waiting graceful close keeps this layer alive (the user may have let go
  // of it, and the lower layer calls back into it): a wait that never expires
  // owns a reference, as a socket's pending write does, so the execution
  // context sees the work and no reference cycle outlives it.
  template <class Up>
  struct hold_handler {
    detail::ref_ptr<Up> up;
    explicit hold_handler(Up& u) noexcept : up(&u) {}
    hold_handler(hold_handler&&) noexcept = default;
    hold_handler& operator=(hold_handler&&) = delete;
    void operator()(std::error_code) noexcept { up = {}; }  // the close has ended
    ~hold_handler() {
      // Destroyed without running: the execution context is shutting down. The
      // close cannot go on; close now, while the context still exists.
      if (up) up->close();
    }
  };

  template <class Up>
  void hold(Up& up) {
    if (hold_) return;
    hold_ = std::make_unique<asio::steady_timer>(up.get_executor());
    hold_->expires_at(asio::steady_timer::time_point::max());
    hold_->async_wait(hold_handler<Up>(up));
  }

  // Ends a graceful close: this layer closes (and lets go of its hold), the
  // lower bufferevent is closed gracefully in turn.
  template <class Up>
  void end_graceful(Up& up) {
    graceful_ = false;
    unlink();
    bufferevent_ptr<Lower> lower = std::move(lower_);
    up.close();
    if (lower) lower.reset_gracefully();
  }

  // ---- the input path ----------------------------------------------------------

  // Returns true if anything was consumed or produced.
  template <class Up>
  bool run_input(Up& up, flush_mode mode) {
    if (in_busy_) {  // re-entered from a callback: the running loop goes on
      in_again_ = true;
      return false;
    }
    in_busy_ = true;
    bool processed = false;
    do {
      in_again_ = false;
      processed |= input_loop(up, mode);
    } while (in_again_ && !up.closed());
    in_busy_ = false;
    return processed;
  }

  template <class Up>
  bool input_loop(Up& up, flush_mode mode) {
    bool processed = false;
    bool stalled = false;  // after EOF: the filter wants bytes that will never come
    while (!up.closed() && lower_) {
      auto& src = lower_->input();
      const bool handshake = wants_input();
      if (mode == flush_mode::normal && !up.reading_active() && !handshake) break;
      flush_mode m = mode;
      bool finishing = false;
      if ((src.empty() && !detail::filter_input_pending(filter_)) || stalled) {
        if (eof_ == eof_state::pending && up.reading_active()) {
          m = flush_mode::finished;
          finishing = true;
        } else if (mode == flush_mode::normal) {
          break;
        }
      }
      // dst_limit: room below this input's high mark (an explicit flush ignores
      // it; so does a graceful close, whose input nobody reads any more).
      const std::size_t limit =
          (m == flush_mode::normal || finishing) && !graceful_ ? up.read_budget() : unlimited;
      if (limit == 0 && up.reading_active()) break;
      const std::size_t src_before = src.size();
      const std::size_t dst_before = up.input_buffer().size();
      filter_result r;
      {
        typename Up::io_scope scope(up);
        r = filter_.filter_input(src, up.input_buffer(), limit, m);
      }
      const std::size_t dst_after = up.input_buffer().size();
      const std::size_t produced = dst_after > dst_before ? dst_after - dst_before : 0;
      const std::size_t consumed = src_before > src.size() ? src_before - src.size() : 0;
      processed |= produced != 0 || consumed != 0;
      raise_filter_events(up);
      if (produced) up.transport_read_done(produced);  // may run user code
      if (up.closed()) break;
      if (r == filter_result::error) {
        fail(up, events::reading);
        break;
      }
      // Input may unblock output (a handshake done, a reply the protocol owes,
      // a graceful close waiting for either).
      if (graceful_ || detail::filter_output_pending(filter_) || ((produced || consumed) && up.writing_active()))
        run_output(up, flush_mode::normal);
      if (up.closed()) break;
      if (finishing) {
        // A finished call that returns ok below dst_limit is the last one.
        if (produced < limit || r != filter_result::ok) {
          eof_ = eof_state::delivered;
          up.transport_event(events::reading | events::eof);
          break;
        }
        continue;  // the tail may take several passes under a high mark
      }
      if (r == filter_result::need_more || (produced == 0 && consumed == 0)) {
        if (eof_ == eof_state::pending && mode == flush_mode::normal && !stalled) {
          stalled = true;  // no more input will come: let the filter finish (or fail)
          continue;
        }
        break;  // no progress: never spin
      }
      // flush/finished run at least once, then while source data remains.
      if (mode != flush_mode::normal && src.empty() && !detail::filter_input_pending(filter_)) break;
    }
    return processed;
  }

  // ---- the output path ---------------------------------------------------------

  template <class Up>
  bool run_output(Up& up, flush_mode mode) {
    // A graceful close in progress: every pass is a `finished` one (the
    // filter writes what it can of the output and its trailer).
    if (graceful_) mode = flush_mode::finished;
    // Re-entered from a callback of this loop, or by the filter writing to its
    // own bufferevent: the running loop goes on. An explicit flush/finished
    // (flush() or close_gracefully() from a write callback) must be done before
    // the lower layer is flushed, so it runs now, unless the filter itself is
    // on the stack.
    if (out_busy_ && (mode == flush_mode::normal || in_output_filter_)) {
      out_again_ = true;
      if (mode > out_again_mode_) out_again_mode_ = mode;
      return false;
    }
    const bool nested = out_busy_;
    out_busy_ = true;
    bool processed = false;
    for (;;) {
      out_again_ = false;
      out_again_mode_ = flush_mode::normal;
      processed |= output_loop(up, mode);
      if (!out_again_ || up.closed()) break;
      mode = out_again_mode_;
    }
    out_busy_ = nested;
    if (!up.closed()) up.transport_write_progress(processed);
    if (!nested) graceful_step(up);
    return processed;
  }

  template <class Up>
  bool output_loop(Up& up, flush_mode mode) {
    bool processed = false;
    while (!up.closed() && lower_) {
      auto& src = up.output_buffer();
      auto& dst = lower_->output();
      std::size_t limit = unlimited;
      if (mode == flush_mode::normal) {
        const bool allowed = any(up.enabled(), direction::write) && up.write_suspend_ == 0;
        if (!allowed || (src.empty() && !detail::filter_output_pending(filter_))) break;
        // Normal mode stops at the lower write high mark (libevent's use of it).
        // Without one it still stops at default_lower_batch: the lower layer's
        // transport then gets to run, and memory stays bounded.
        std::size_t high = lower_->getwatermark(direction::write).high;
        if (high == 0) high = default_lower_batch;
        if (dst.size() >= high) break;  // resumed by the lower's write callback
        limit = high - dst.size();
      }
      const std::size_t src_before = src.size();
      const std::size_t dst_before = dst.size();
      filter_result r;
      {
        typename Up::io_scope scope(up);
        in_output_filter_ = true;
        r = filter_.filter_output(src, dst, limit, mode);
        in_output_filter_ = false;
      }
      const std::size_t consumed = src_before > src.size() ? src_before - src.size() : 0;
      const std::size_t produced = dst.size() > dst_before ? dst.size() - dst_before : 0;
      processed |= produced != 0 || consumed != 0;
      if (graceful_) graceful_need_more_ = r == filter_result::need_more;
      raise_filter_events(up);
      if (consumed) up.transport_wrote(consumed);  // may run user code
      if (up.closed()) break;
      if (r == filter_result::error) {
        fail(up, events::writing);
        break;
      }
      if (r == filter_result::need_more) break;
      if (produced == 0 && consumed == 0) break;  // no progress: never spin
      // As libevent: the filter runs while source data remains; flush/finished
      // (and a filter with output of its own) at least once.
      if (src.empty() && (mode != flush_mode::normal || !detail::filter_output_pending(filter_))) break;
    }
    return processed;
  }

  enum class eof_state : unsigned char { none, pending, delivered };

  bufferevent_ptr<Lower> lower_;
  [[no_unique_address]] Filter filter_;
  std::unique_ptr<asio::steady_timer> hold_;  // a graceful close waiting (see hold)
  eof_state eof_ = eof_state::none;
  bool in_posted_ = false;
  bool out_posted_ = false;
  bool in_busy_ = false;
  bool in_again_ = false;
  bool out_busy_ = false;
  bool out_again_ = false;
  bool in_output_filter_ = false;
  bool failed_ = false;
  bool graceful_ = false;           // closing gracefully, waiting for the filter
  bool graceful_need_more_ = false;  // its last `finished` pass returned need_more
  flush_mode out_again_mode_ = flush_mode::normal;
};

/// A filter bufferevent: `Filter` over a `Lower` bufferevent.
template <class Lower, class Filter, class... Policies>
using filter_bufferevent = basic_bufferevent<filter_transport<Lower, Filter>, Policies...>;

/// Wraps `lower` in a filter bufferevent on the lower's executor (libevent's
/// bufferevent_filter_new); the new bufferevent owns `lower`. `Policies...`
/// configure the filter bufferevent itself.
template <class... Policies, class Lower, class Filter>
bufferevent_ptr<filter_bufferevent<Lower, std::decay_t<Filter>, Policies...>> make_filter_bufferevent(
    bufferevent_ptr<Lower> lower, Filter&& f) {
  using bev = filter_bufferevent<Lower, std::decay_t<Filter>, Policies...>;
  auto ex = lower->get_executor();
  return bev::create(std::move(ex), std::move(lower), std::forward<Filter>(f));
}

}  // namespace bufev
