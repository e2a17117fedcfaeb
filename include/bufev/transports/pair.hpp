// The pair transport: two in-memory bufferevents wired to each other, behaving
// like a socketpair (closing one side is EOF for the other), with fault
// injection for testing protocols built on bufev.
#pragma once

#include <algorithm>
#include <cstddef>
#include <mutex>
#include <system_error>
#include <utility>

#include <asio/any_io_executor.hpp>
#include <asio/post.hpp>

#include <bufev/core/bufferevent.hpp>
#include <bufev/error.hpp>
#include <bufev/events.hpp>

namespace bufev {

/// Faults a pair injects, to test code built on bufev.
struct pair_faults {
  /// Short reads/writes: at most this many bytes move per transfer.
  std::size_t max_transfer = unlimited;
  /// The Nth transfer out of this side (1-based) fails with `fail_error`: this
  /// side gets event(writing|error), the partner event(reading|error). 0 = never.
  std::size_t fail_transfer = 0;
  std::error_code fail_error = make_error_code(errc::injected_fault);
};

/// Transport of one side of a pair. Data moves from a side's output to its
/// partner's input when the side is write-enabled and the partner read-enabled
/// and below its read high watermark; segments are relinked, not copied.
/// Transfers run from a handler posted to the executor, so a write never calls
/// back synchronously and callbacks that write to each other never recurse.
class pair_transport {
 public:
  static constexpr std::size_t default_max_single_read = unlimited;
  static constexpr std::size_t default_max_single_write = unlimited;

  pair_transport() = default;
  explicit pair_transport(pair_faults f) : faults_(std::move(f)) {}

  /// Wires two fresh sides together (make_pair does this).
  template <class Bev>
  static void link(Bev& a, Bev& b) {
    b.lock_state().share_with(a.lock_state());
    a.add_ref();
    b.add_ref();
    a.transport_.partner_ = &b;
    b.transport_.partner_ = &a;
  }

  /// The other side, or nullptr once either side is closed.
  template <class Bev>
  Bev* partner(Bev&) const noexcept {
    return static_cast<Bev*>(partner_);
  }

  /// The faults injected from this side; may be changed at any time.
  pair_faults& faults() noexcept { return faults_; }

  template <class Bev>
  void start_reading(Bev& self) {
    if (Bev* p = partner(self)) p->transport_.schedule_transfer(*p);
  }
  template <class Bev>
  void stop_reading(Bev&) noexcept {}

  template <class Bev>
  void start_writing(Bev& self) {
    if (partner_) schedule_transfer(self);
    else self.post_transport_event(events::writing | events::error, make_error_code(errc::partner_closed));
  }
  template <class Bev>
  void stop_writing(Bev&) noexcept {}

  /// normal: nothing (returns 0). flush/finished: move everything pending in
  /// the given directions, ignoring watermarks and enabled state; finished on
  /// the write direction also delivers EOF to the partner. 1 if data moved.
  template <class Bev>
  int flush(Bev& self, direction d, flush_mode mode) {
    if (mode == flush_mode::normal) return 0;
    Bev* p = partner(self);
    if (!p) return any(d, direction::write) && !self.output_buffer().empty() ? -1 : 0;
    detail::ref_ptr<Bev> keep(p);
    std::size_t moved = 0;
    if (any(d, direction::write)) moved += transfer(self, *p, true);
    if (any(d, direction::read) && !self.closed() && !p->closed()) moved += transfer(*p, self, true);
    if (mode == flush_mode::finished && any(d, direction::write) && !p->closed())
      p->post_transport_event(events::reading | events::eof);
    return moved ? 1 : 0;
  }

  /// Closing a side is EOF for the partner; bytes still in this side's output
  /// are discarded (use flush(write, finished) first for a graceful end).
  template <class Bev>
  void close(Bev& self) {
    if (Bev* p = unlink(self)) {
      p->post_transport_event(events::reading | events::eof);
      p->release();
      self.release();
    }
  }

  /// Resets the connection: both sides get event(reading|error, ec), pending
  /// output on both sides is discarded, and the pair is unlinked.
  template <class Bev>
  void inject_reset(Bev& self, std::error_code ec = make_error_code(errc::connection_reset)) {
    std::lock_guard g(self.lock_state());
    Bev* p = unlink(self);
    if (!p) return;
    for (Bev* side : {&self, p}) {
      {
        typename Bev::io_scope s(*side);
        (void)side->output_buffer().drain(side->output_buffer().size());
      }
      side->post_transport_event(events::reading | events::error, ec);
    }
    p->release();
    self.release();
  }

 private:
  template <class Bev>
  Bev* unlink(Bev& self) noexcept {
    Bev* p = partner(self);
    if (!p) return nullptr;
    partner_ = nullptr;
    p->transport_.partner_ = nullptr;
    return p;
  }

  // One transfer out of `src` in flight at a time.
  template <class Bev>
  void schedule_transfer(Bev& src) {
    if (transfer_posted_) return;
    transfer_posted_ = true;
    src.post([s = detail::ref_ptr<Bev>(&src)] {
      std::lock_guard g(s->lock_state());
      s->transport_.transfer_posted_ = false;
      Bev* d = s->transport_.partner(*s);
      if (!d || s->closed()) return;
      detail::ref_ptr<Bev> keep(d);
      // Already in a handler of our own: deliver the deferred callbacks when
      // the transfer ends (data first, then the sender's write callback)
      // instead of posting again.
      typename Bev::callback_batch sender(*s), receiver(*d);
      transfer(*s, *d, false);
    });
  }

  template <class Bev>
  static std::size_t transfer(Bev& src, Bev& dst, bool ignore_limits) {
    auto& out = src.output_buffer();
    std::size_t n = out.size();
    if (!ignore_limits) {
      if (!src.writing_active() || !dst.reading_active()) return 0;
      n = std::min({n, src.write_budget(), dst.read_budget()});
    }
    pair_faults& f = src.transport_.faults_;
    n = std::min(n, f.max_transfer);
    if (n == 0) return 0;
    if (f.fail_transfer != 0 && ++src.transport_.transfers_ == f.fail_transfer) {
      src.transport_event(events::writing | events::error, f.fail_error);
      dst.transport_event(events::reading | events::error, f.fail_error);
      return 0;
    }
    std::size_t moved;
    {
      typename Bev::io_scope a(src), b(dst);
      moved = detail::move_bytes(out, dst.input_buffer(), n);
    }
    dst.transport_read_done(moved);
    src.transport_wrote(moved);
    // Capped by a limit rather than by a watermark: keep going in a new handler.
    if (!ignore_limits && !src.closed() && src.writing_active() && dst.reading_active())
      src.transport_.schedule_transfer(src);
    return moved;
  }

  void* partner_ = nullptr;  // a Bev*: both sides have the same type
  bool transfer_posted_ = false;
  // Used through the sending side's transport (clang cannot see that).
  [[maybe_unused]] std::size_t transfers_ = 0;
  pair_faults faults_{};
};

/// A pair side. Pairs defer callbacks by default, as libevent's do.
template <class... Policies>
using pair_bufferevent = basic_bufferevent<pair_transport, Policies..., deferred_callbacks>;

/// Creates two connected bufferevents on `ex`.
template <class Bev = pair_bufferevent<>>
std::pair<bufferevent_ptr<Bev>, bufferevent_ptr<Bev>> make_pair(asio::any_io_executor ex,
                                                                pair_faults faults = {}) {
  auto a = Bev::create(ex, faults);
  auto b = Bev::create(ex, faults);
  pair_transport::link(*a, *b);
  return {std::move(a), std::move(b)};
}

/// Creates two connected bufferevents with the given handler objects.
template <class Bev, class H>
std::pair<bufferevent_ptr<Bev>, bufferevent_ptr<Bev>> make_pair_with(H ha, H hb, asio::any_io_executor ex,
                                                                     pair_faults faults = {}) {
  auto a = Bev::create_with(std::move(ha), ex, faults);
  auto b = Bev::create_with(std::move(hb), ex, faults);
  pair_transport::link(*a, *b);
  return {std::move(a), std::move(b)};
}

}  // namespace bufev
