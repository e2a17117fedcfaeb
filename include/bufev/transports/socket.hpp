// Socket transports over Asio stream sockets (TCP v4/v6, Unix stream sockets):
//
// - socket_transport: readiness-based, like libevent's socket bufferevent. It
//   waits for readability/writability and then reads/writes non-blocking
//   straight into/out of the buffers' segments. An idle connection holds no
//   read buffer.
// - completion_socket_transport: completion-based, like libevent's IOCP
//   bufferevent. It posts asynchronous reads/writes with buffers committed up
//   front: Windows IOCP, Linux epoll or io_uring (ASIO_HAS_IO_URING).
//
// Both behave the same to the user (libevent's two backends differ, issue 451).
#pragma once

#include <algorithm>
#include <cstddef>
#include <mutex>
#include <string>
#include <system_error>
#include <utility>

#include <asio/any_io_executor.hpp>
#include <asio/error.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/local/stream_protocol.hpp>

#include <bufev/core/bufferevent.hpp>
#include <bufev/core/detail/move_bytes.hpp>
#include <bufev/transports/detail/socket_base.hpp>

namespace bufev {

/// Readiness-based socket transport (libevent's socket bufferevent).
template <class Protocol, class Executor = asio::any_io_executor>
class socket_transport
    : public detail::socket_transport_common<socket_transport<Protocol, Executor>, Protocol, Executor> {
  using common = detail::socket_transport_common<socket_transport, Protocol, Executor>;

 public:
  using common::common;

  template <class Bev>
  void start_reading(Bev& bev) {
    want_read_ = true;
    if (!read_waiting_ && this->ready_for_io()) wait_readable(bev);
  }
  template <class Bev>
  void stop_reading(Bev&) noexcept {
    want_read_ = false;  // a wait in flight finds nothing wanted and ends
  }
  template <class Bev>
  void start_writing(Bev& bev) {
    want_write_ = true;
    if (write_waiting_ || write_posted_ || write_after_read_ || !this->ready_for_io()) return;
    // Bytes written from a read callback (an echo) go out when it returns, in
    // the same handler; otherwise try at once in a fresh handler (the socket is
    // usually writable) and wait only if it is not.
    if (in_read_) {
      write_after_read_ = true;
      return;
    }
    write_posted_ = true;
    bev.post([b = detail::ref_ptr<Bev>(&bev)] {
      std::lock_guard g(b->lock_state());
      b->transport().write_posted_ = false;
      b->transport().try_write(*b);
    });
  }
  template <class Bev>
  void stop_writing(Bev&) noexcept {
    want_write_ = false;
  }

 private:
  friend common;

  template <class Bev>
  void wait_readable(Bev& bev) {
    read_waiting_ = true;
    this->socket_.async_wait(asio::socket_base::wait_read,
                             [b = detail::ref_ptr<Bev>(&bev)](std::error_code ec) {
                               std::lock_guard g(b->lock_state());
                               auto& t = b->transport();
                               t.read_waiting_ = false;
                               if (b->closed() || ec == asio::error::operation_aborted) return;
                               if (ec) return t.read_failed(*b, ec);
                               if (t.want_read_) t.try_read(*b);
                             });
  }

  // One read of at most read_budget(), straight into the input's segments.
  template <class Bev>
  void try_read(Bev& bev) {
    const std::size_t budget = this->read_size(bev.read_budget());
    if (budget == 0) return;  // suspended; start_reading comes with the resume
    std::error_code ec;
    std::size_t n = 0;
    {
      typename Bev::io_scope s(bev);
      auto& in = bev.input_buffer();
      n = detail::with_buffers(in.prepare(budget), [&](const auto& bufs) { return this->socket_.read_some(bufs, ec); });
      in.commit(n);
    }
    if (!ec) this->read_result(budget, n);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
      if (want_read_) wait_readable(bev);
      return;
    }
    if (ec) return this->read_failed(bev, ec);
    {
      struct read_scope {  // reset even if a callback throws
        socket_transport& t;
        ~read_scope() { t.in_read_ = false; }
      } scope{*this};
      in_read_ = true;
      bev.transport_read_done(n);
    }
    if (write_after_read_) {
      write_after_read_ = false;
      try_write(bev);
    }
    if (!bev.closed() && want_read_ && !read_waiting_) wait_readable(bev);
  }

  template <class Bev>
  void try_write(Bev& bev) {
    if (bev.closed() || !want_write_) return;
    const std::size_t budget = bev.write_budget();
    if (budget == 0) return;
    std::error_code ec;
    const std::size_t n = detail::with_buffers(detail::gather(bev.output_buffer(), budget),
                                               [&](const auto& bufs) { return this->socket_.write_some(bufs, ec); });
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
      write_waiting_ = true;
      this->socket_.async_wait(asio::socket_base::wait_write,
                               [b = detail::ref_ptr<Bev>(&bev)](std::error_code e) {
                                 std::lock_guard g(b->lock_state());
                                 auto& t = b->transport();
                                 t.write_waiting_ = false;
                                 if (b->closed() || e == asio::error::operation_aborted) return;
                                 if (e) return b->transport_event(events::writing | events::error, e);
                                 t.try_write(*b);
                               });
      return;
    }
    if (ec) return bev.transport_event(events::writing | events::error, ec);
    this->wrote(bev, n);
    if (!bev.closed() && want_write_ && bev.writing_active()) start_writing(bev);
  }

  bool want_read_ = false;
  bool want_write_ = false;
  bool read_waiting_ = false;
  bool write_waiting_ = false;
  bool write_posted_ = false;
  bool in_read_ = false;           // inside transport_read_done
  bool write_after_read_ = false;  // try_write when it returns
};

/// Completion-based socket transport (libevent's IOCP bufferevent): reads and
/// writes are posted with their buffers committed up front. Reads land in a
/// staging buffer of the input's type and are moved (segments relinked) into the
/// input on completion, so user drains never race an operation in flight. A read
/// that completes while reading is disabled or suspended waits in staging, and
/// moves in no faster than the read budget allows (watermark, caps, rate limit):
/// the user sees what the readiness transport shows.
template <class Protocol, class Executor = asio::any_io_executor>
class completion_socket_transport
    : public detail::socket_transport_common<completion_socket_transport<Protocol, Executor>,
                                             Protocol, Executor> {
  using common = detail::socket_transport_common<completion_socket_transport, Protocol, Executor>;

 public:
  using common::common;

  template <class Bev>
  void start_reading(Bev& bev) {
    want_read_ = true;
    if ((staging_ && !staging_buffer(bev).empty()) || read_end_) {
      // What a read brought in while reading was off: delivered from a fresh
      // handler (enable() never calls back), then reading goes on.
      if (resume_posted_) return;
      resume_posted_ = true;
      bev.post([b = detail::ref_ptr<Bev>(&bev)] {
        std::lock_guard g(b->lock_state());
        auto& t = b->transport();
        t.resume_posted_ = false;
        if (!b->closed() && t.want_read_) t.deliver_staged(*b);
      });
      return;
    }
    if (!read_pending_ && this->ready_for_io()) issue_read(bev);
  }
  template <class Bev>
  void stop_reading(Bev&) noexcept {
    want_read_ = false;
  }
  template <class Bev>
  void start_writing(Bev& bev) {
    want_write_ = true;
    if (!write_pending_ && this->ready_for_io()) issue_write(bev);
  }
  template <class Bev>
  void stop_writing(Bev&) noexcept {
    want_write_ = false;
  }

 private:
  friend common;

  template <class Bev>
  void issue_read(Bev& bev) {
    const std::size_t budget = this->read_size(bev.read_budget());
    if (budget == 0) return;
    auto& staging = staging_buffer(bev);
    read_pending_ = true;
    auto on_read = [b = detail::ref_ptr<Bev>(&bev), budget](std::error_code ec, std::size_t n) {
      std::lock_guard g(b->lock_state());
      auto& t = b->transport();
      t.read_pending_ = false;
      if (!ec) t.read_result(budget, n);
      if (b->closed() || ec == asio::error::operation_aborted) return;
      t.staging_buffer(*b).commit(n);
      if (ec || n == 0) t.read_end_ = ec ? ec : asio::error::eof;
      if (t.want_read_) t.deliver_staged(*b);
    };
    detail::with_buffers(staging.prepare(budget),
                         [&](const auto& bufs) { this->socket_.async_read_some(bufs, std::move(on_read)); });
  }

  // Moves staged bytes into the input while reading is wanted, a read budget's
  // worth at a time (each move is one read to the user), then reports the end of
  // input that came after them, or reads on.
  template <class Bev>
  void deliver_staged(Bev& bev) {
    auto& staged = staging_buffer(bev);
    while (!staged.empty()) {
      const std::size_t k = std::min(staged.size(), bev.read_budget());
      if (k == 0) return;  // suspended; start_reading comes with the resume
      {
        typename Bev::io_scope s(bev);
        detail::move_bytes(staged, bev.input_buffer(), k);
      }
      bev.transport_read_done(k);
      if (bev.closed() || !want_read_) return;
    }
    if (read_end_) return this->read_failed(bev, std::exchange(read_end_, std::error_code{}));
    if (!read_pending_ && bev.reading_active()) issue_read(bev);
  }

  template <class Bev>
  void issue_write(Bev& bev) {
    const std::size_t budget = bev.write_budget();
    if (budget == 0) return;
    write_pending_ = true;
    auto on_write = [b = detail::ref_ptr<Bev>(&bev)](std::error_code ec, std::size_t n) {
      std::lock_guard g(b->lock_state());
      auto& t = b->transport();
      t.write_pending_ = false;
      if (b->closed() || ec == asio::error::operation_aborted) return;
      if (n > 0) t.wrote(*b, n);
      if (b->closed()) return;
      if (ec) return b->transport_event(events::writing | events::error, ec);
      if (t.want_write_ && b->writing_active()) t.issue_write(*b);
    };
    detail::with_buffers(detail::gather(bev.output_buffer(), budget),
                         [&](const auto& bufs) { this->socket_.async_write_some(bufs, std::move(on_write)); });
  }

  // Type-erased holder so the transport need not name the bufferevent's input
  // type; allocated on the first read (an idle, never-read connection has none).
  struct staging_base {
    virtual ~staging_base() = default;
  };
  template <class B>
  struct staging_holder final : staging_base {
    B buffer;
  };

  template <class Bev>
  typename Bev::input_buffer_type& staging_buffer(Bev&) {
    using holder = staging_holder<typename Bev::input_buffer_type>;
    if (!staging_) staging_ = std::make_unique<holder>();
    return static_cast<holder&>(*staging_).buffer;
  }

  std::unique_ptr<staging_base> staging_;
  std::error_code read_end_;    // EOF or error that came after the staged bytes
  bool want_read_ = false;
  bool want_write_ = false;
  bool read_pending_ = false;
  bool write_pending_ = false;
  bool resume_posted_ = false;  // a deliver_staged is posted
};

/// A TCP bufferevent on the readiness transport.
template <class... Policies>
using tcp_bufferevent = basic_bufferevent<socket_transport<asio::ip::tcp>, Policies...>;
/// A TCP bufferevent on the completion transport.
template <class... Policies>
using tcp_completion_bufferevent = basic_bufferevent<completion_socket_transport<asio::ip::tcp>, Policies...>;
#if defined(ASIO_HAS_LOCAL_SOCKETS)
/// A Unix stream socket bufferevent on the readiness transport.
template <class... Policies>
using unix_bufferevent = basic_bufferevent<socket_transport<asio::local::stream_protocol>, Policies...>;
#endif

/// Creates a bufferevent that adopts a connected (or accepted) socket.
template <class Bev>
bufferevent_ptr<Bev> make_socket_bufferevent(typename Bev::transport_type::socket_type socket,
                                             socket_options options = {}) {
  auto ex = socket.get_executor();
  return Bev::create(std::move(ex), std::move(socket), options);
}

/// Creates a bufferevent with no socket yet, for connect() / connect_hostname().
template <class Bev>
bufferevent_ptr<Bev> make_socket_bufferevent(const asio::any_io_executor& ex, socket_options options = {}) {
  return Bev::create(ex, typename Bev::transport_type::socket_type(ex), options);
}

}  // namespace bufev
