// What the readiness and completion socket transports share: the socket, its
// close-on-free option, connect / connect_hostname, half-close and graceful close.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <mutex>
#include <span>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include <asio/any_io_executor.hpp>
#include <asio/basic_stream_socket.hpp>
#include <asio/connect.hpp>
#include <asio/error.hpp>
#include <asio/execution/context.hpp>
#include <asio/execution_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/query.hpp>
#include <asio/steady_timer.hpp>

#include <bufev/core/bufferevent.hpp>
#include <bufev/core/ref_ptr.hpp>
#include <bufev/error.hpp>
#include <bufev/events.hpp>

namespace bufev {

/// Address family for connect_hostname (libevent's AF_UNSPEC / AF_INET / AF_INET6).
enum class address_family : unsigned char { unspecified, v4, v6 };

/// Options of a socket bufferevent.
struct socket_options {
  /// Close the socket when the bufferevent is closed or freed (BEV_OPT_CLOSE_ON_FREE).
  /// Otherwise the descriptor is released to the caller's care and stays open. (Where
  /// Asio cannot release a socket from its IOCP, before Windows 8.1 and under wine,
  /// it stays open but bound to the execution context until that is destroyed.)
  bool close_on_free = true;
  /// Lingering close: after a graceful close has sent everything and shut down
  /// the sending side, read and discard what the peer still sends until its EOF,
  /// an error, or this long, then close. Closing a socket with unread input makes
  /// the kernel reset the connection, and a reset can destroy the bytes just sent
  /// before the peer reads them (a TLS 1.3 server's session tickets arriving after
  /// the client's last write do exactly that). Zero closes right after the shutdown.
  std::chrono::milliseconds lingering_close{2000};
};

namespace detail {

// Gather list of the output's first extents, passed by value to Asio.
inline constexpr std::size_t max_gather = 16;

template <class Buffer>
std::array<asio::const_buffer, max_gather> gather(const Buffer& out, std::size_t n) {
  std::array<asio::const_buffer, max_gather> bufs{};
  if constexpr (requires { out.peek(n, std::span<asio::const_buffer>(bufs)); }) {
    (void)out.peek(n, std::span<asio::const_buffer>(bufs));
  } else {
    std::size_t i = 0;
    const auto seq = out.data();
    for (auto it = asio::buffer_sequence_begin(seq); i < bufs.size() && n > 0 &&
                                                   it != asio::buffer_sequence_end(seq);
         ++it, ++i) {
      asio::const_buffer b = *it;
      bufs[i] = asio::const_buffer(b.data(), std::min(b.size(), n));
      n -= bufs[i].size();
    }
  }
  return bufs;
}

// Calls f with the first extent alone when the sequence has only one: Asio then
// uses recv()/send() instead of recvmsg()/sendmsg(), whose iovec import costs a
// few percent of a small-message ping-pong.
template <class Sequence, class F>
decltype(auto) with_buffers(const Sequence& seq, F&& f) {
  auto it = asio::buffer_sequence_begin(seq);
  const auto end = asio::buffer_sequence_end(seq);
  if (it != end) {
    const auto first = *it;
    if (++it == end || (*it).size() == 0) return f(first);
  }
  return f(seq);
}

/// Sockets that close_on_free=false could not release (see close_socket): kept open
/// until their execution context is destroyed.
template <class Socket>
class unreleased_sockets final : public asio::execution_context::service {
 public:
  using key_type = unreleased_sockets;
  static inline asio::execution_context::id id;
  explicit unreleased_sockets(asio::execution_context& ctx) : asio::execution_context::service(ctx) {}
  void keep(Socket s) {
    std::lock_guard g(mutex_);
    sockets_.push_back(std::move(s));
  }

 private:
  void shutdown() override {}
  std::mutex mutex_;
  std::vector<Socket> sockets_;
};

/// Everything the readiness and completion socket transports share. It is the
/// transports' `transport_helper_type`, so it may use the core's transport interface.
template <class Derived, class Protocol, class Executor>
class socket_transport_common {
 public:
  using protocol_type = Protocol;
  using executor_type = Executor;
  using socket_type = asio::basic_stream_socket<Protocol, Executor>;
  using endpoint_type = typename Protocol::endpoint;
  /// Caps per read / write, the same on both transports (chosen with bench_sockets).
  static constexpr std::size_t default_max_single_read = 64 * 1024;
  static constexpr std::size_t default_max_single_write = 256 * 1024;

  explicit socket_transport_common(socket_type s, socket_options o = {}) : socket_(std::move(s)) {
    set_options(o);
    prepare_socket();
  }
  explicit socket_transport_common(const Executor& ex, socket_options o = {}) : socket_(ex) { set_options(o); }

  /// The Asio socket: socket options, local/remote endpoints, and so on.
  socket_type& socket() noexcept { return socket_; }
  const socket_type& socket() const noexcept { return socket_; }
  /// The socket's executor; the bufferevent runs on it.
  executor_type get_executor() const noexcept {
    return const_cast<socket_type&>(socket_).get_executor();  // not const in Asio 1.22; reads only
  }
  /// The descriptor (libevent's bufferevent_getfd).
  auto native_handle() { return socket_.native_handle(); }

  /// The address connect() or connect_hostname() connected to
  /// (bufferevent_socket_get_conn_address).
  std::optional<endpoint_type> get_conn_address() const {
    return extra_ ? extra_->address : std::nullopt;
  }

  /// The resolver's error after a failed connect_hostname (bufferevent_socket_get_dns_error).
  std::error_code dns_error() const noexcept { return extra_ ? extra_->dns_error : std::error_code{}; }

  bool connecting() const noexcept { return connecting_; }

  using transport_helper_type = socket_transport_common;

  /// Sets or replaces the socket (libevent's bufferevent_setfd).
  template <class Bev>
  void assign(Bev&, socket_type s) {
    close_socket();
    socket_ = std::move(s);
    prepare_socket();
  }

  /// Opens a socket if there is none and connects it (bufferevent_socket_connect).
  /// Data written before the connection completes is sent after it.
  template <class Bev>
  std::error_code connect(Bev& bev, const endpoint_type& ep) {
    if (connecting_) return make_error_code(errc::invalid_argument);
    std::error_code ec;
    if (!socket_.is_open()) {
      socket_.open(ep.protocol(), ec);
      if (ec) return ec;
    }
    prepare_socket();
    connecting_ = true;
    bev.suspend(direction::both, suspend_reason::lookup);
    socket_.async_connect(ep, [b = detail::ref_ptr<Bev>(&bev), ep](std::error_code e) {
      std::lock_guard g(b->lock_state());
      b->transport().finish_connect(*b, e, ep);
    });
    return {};
  }

  /// Resolves `host` with Asio's async resolver, then connects to the first
  /// address that accepts (bufferevent_socket_connect_hostname). Both
  /// directions are suspended until then; exactly one event follows.
  template <class Bev>
  std::error_code connect_hostname(Bev& bev, const std::string& host, unsigned short port,
                                   address_family family = address_family::unspecified)
    requires std::is_same_v<Protocol, asio::ip::tcp>
  {
    if (connecting_) return make_error_code(errc::invalid_argument);
    connecting_ = true;
    extra_state& cs = extra();
    cs.dns_error = {};
    bev.suspend(direction::both, suspend_reason::lookup);
    cs.resolver.emplace(socket_.get_executor());
    auto on_resolved = [b = detail::ref_ptr<Bev>(&bev)](std::error_code ec,
                                                        asio::ip::tcp::resolver::results_type results) {
      std::lock_guard g(b->lock_state());
      auto& t = b->transport();
      if (b->closed()) return;
      if (ec) {
        t.extra_->dns_error = ec;
        t.connect_failed(*b, ec);
        return;
      }
      asio::async_connect(t.socket_, results,
                          [b](std::error_code e, const asio::ip::tcp::endpoint& ep) {
                            std::lock_guard g2(b->lock_state());
                            b->transport().finish_connect(*b, e, ep);
                          });
    };
    const std::string service = std::to_string(port);
    if (family == address_family::unspecified)
      cs.resolver->async_resolve(host, service, std::move(on_resolved));
    else
      cs.resolver->async_resolve(family == address_family::v4 ? asio::ip::tcp::v4() : asio::ip::tcp::v6(),
                               host, service, std::move(on_resolved));
    return {};
  }

  /// Half-close: shuts down the sending side once every queued byte is sent.
  template <class Bev>
  std::error_code shutdown_write(Bev& bev) {
    shutdown_pending_ = true;
    after_output(bev);
    return {};
  }

  /// Graceful close: closes once every queued byte is sent (spec rule 10).
  template <class Bev>
  void close_gracefully(Bev& bev) {
    graceful_pending_ = true;
    after_output(bev);
  }

  template <class Bev>
  int flush(Bev&, direction, flush_mode) noexcept {
    return 0;  // a socket has nothing to push through (rule 13)
  }

  template <class Bev>
  void close(Bev&) {
    close_socket();
  }

 protected:
  friend Derived;

  // No socket yet (waiting for connect) or connecting: I/O starts when the
  // connection completes (connect suspends and then resumes both directions).
  bool ready_for_io() const noexcept { return socket_.is_open() && !connecting_; }

  // Non-blocking, so the readiness transport's read_some/write_some never block.
  void prepare_socket() {
    if (!socket_.is_open()) return;
    std::error_code ec;
    socket_.non_blocking(true, ec);
    if constexpr (std::is_same_v<Protocol, asio::ip::tcp>) socket_.set_option(asio::ip::tcp::no_delay(true), ec);
  }

  template <class Bev>
  void finish_connect(Bev& bev, std::error_code ec, const endpoint_type& ep) {
    if (bev.closed()) return;
    if (ec) {
      connect_failed(bev, ec);
      return;
    }
    connecting_ = false;
    extra().address = ep;
    prepare_socket();
    // Order (rule 7): event(connected) first; the write callback follows once
    // the data written before the connection completed has been sent.
    bev.transport_event(events::connected);
    if (!bev.closed()) bev.unsuspend(direction::both, suspend_reason::lookup);
  }

  // Exactly one event(error), no reading/writing bit; both directions stay
  // suspended, so no read or write callback follows.
  template <class Bev>
  void connect_failed(Bev& bev, std::error_code ec) {
    connecting_ = false;
    std::error_code ignored;
    socket_.close(ignored);
    bev.transport_event(events::error, ec);
  }

  // Runs after output was sent: completes a pending half-close or graceful
  // close once the output is empty.
  template <class Bev>
  void after_output(Bev& bev) {
    if (!bev.output_buffer().empty() || connecting_) return;
    std::error_code ec;
    if (shutdown_pending_ || graceful_pending_) {
      shutdown_pending_ = false;
      if (socket_.is_open()) socket_.shutdown(asio::socket_base::shutdown_send, ec);
    }
    if (graceful_pending_) {
      graceful_pending_ = false;
      // (A socket left open for its owner, close_on_free = false, needs no linger.)
      if (linger_ms_ > 0 && close_on_free_ && socket_.is_open() && !ec)
        linger(bev);
      else bev.close();
    }
  }

  // Lingering close: the sending side is shut down; discard input until the
  // peer's EOF (or an error, or the time bound), then close. The pending read
  // and the timer hold the bufferevent alive meanwhile.
  template <class Bev>
  void linger(Bev& bev) {
    extra_state& x = extra();
    if (!x.discard) x.discard = std::make_unique<unsigned char[]>(linger_discard_size);
    x.linger_timer.emplace(socket_.get_executor());
    x.linger_timer->expires_after(std::chrono::milliseconds(linger_ms_));
    x.linger_timer->async_wait([b = detail::ref_ptr<Bev>(&bev)](std::error_code) {
      std::lock_guard g(b->lock_state());
      if (!b->closed()) b->close();
    });
    linger_read(bev);
  }
  template <class Bev>
  void linger_read(Bev& bev) {
    socket_.async_read_some(asio::buffer(extra_->discard.get(), linger_discard_size),
                            [b = detail::ref_ptr<Bev>(&bev)](std::error_code ec, std::size_t) {
                              std::lock_guard g(b->lock_state());
                              if (b->closed()) return;
                              if (ec) b->close();  // EOF (the peer closed too) or an error
                              else b->transport().linger_read(*b);
                            });
  }

  // Adaptive read size: start small, double while reads fill the request, halve
  // after four reads in a row used under a quarter of it (one short read is
  // usually the tail of a message the previous read just missed: halving on it
  // would make a 16 KiB ping-pong alternate between two sizes, two reads per
  // message). Small messages then take small segments (an idle
  // completion-transport connection commits 512 bytes, a 64-byte ping-pong
  // touches one cache-warm block), bulk transfers still reach the cap.
  // Requests are power-of-two allocation sizes less a segment header, so a read
  // buffer fills its block instead of spilling into one twice as large.
  static constexpr std::uint32_t min_read_alloc = 512;
  static constexpr std::size_t read_header_room = 64;
  std::size_t read_size(std::size_t budget) const noexcept {
    return std::min(budget, read_alloc_ - read_header_room);
  }
  void read_result(std::size_t requested, std::size_t got) noexcept {
    if (got >= requested / 4) short_reads_ = 0;
    if (got == requested && requested == read_alloc_ - read_header_room) {
      read_alloc_ = std::min<std::uint32_t>(read_alloc_ * 2, std::uint32_t{1} << 30);
    } else if (got < requested / 4 && read_alloc_ > min_read_alloc && ++short_reads_ == 4) {
      read_alloc_ /= 2;
      short_reads_ = 0;
    }
  }

  template <class Bev>
  void read_failed(Bev& bev, std::error_code ec) {
    if (ec == asio::error::eof) bev.transport_event(events::reading | events::eof);
    else bev.transport_event(events::reading | events::error, ec);
  }

  // n bytes of the output were sent.
  template <class Bev>
  void wrote(Bev& bev, std::size_t n) {
    {
      typename Bev::io_scope s(bev);
      (void)bev.output_buffer().drain(n);
    }
    bev.transport_wrote(n);
    if (!bev.closed()) after_output(bev);
  }

  void close_socket() {
    std::error_code ec;
    if (extra_ && extra_->resolver) extra_->resolver->cancel();
    // The timer goes now, while its execution context surely exists; the read
    // buffer stays until the transport is destroyed (a read may still own it).
    if (extra_) extra_->linger_timer.reset();
    if (!socket_.is_open()) return;
    if (close_on_free_) {
      socket_.close(ec);
    } else {
      socket_.cancel(ec);
      (void)socket_.release(ec);
      // Asio cannot take a socket back from its IOCP before Windows 8.1 (nor under
      // wine): rather than close what the caller owns, keep it open while the
      // execution context lives.
      if (socket_.is_open()) {
        auto& ctx = asio::query(socket_.get_executor(), asio::execution::context);
        asio::use_service<unreleased_sockets<socket_type>>(ctx).keep(std::move(socket_));
      }
    }
  }

  void set_options(const socket_options& o) noexcept {
    close_on_free_ = o.close_on_free;
    const auto ms = std::max<std::chrono::milliseconds::rep>(o.lingering_close.count(), 0);
    linger_ms_ = static_cast<std::uint32_t>(std::min<std::chrono::milliseconds::rep>(ms, UINT32_MAX));
  }

  // Every connection has these fields: they are packed (an idle connection's
  // bytes are the point of bench_idle).
  socket_type socket_;
  // What only connecting or lingering bufferevents need, allocated then:
  // an accepted connection that is closed at once never pays for it.
  static constexpr std::size_t linger_discard_size = 4096;
  struct extra_state {
    std::optional<asio::ip::tcp::resolver> resolver;
    std::optional<endpoint_type> address;
    std::error_code dns_error;
    std::optional<asio::steady_timer> linger_timer;
    std::unique_ptr<unsigned char[]> discard;  // lingering reads land here
  };
  extra_state& extra() {
    if (!extra_) extra_ = std::make_unique<extra_state>();
    return *extra_;
  }
  std::unique_ptr<extra_state> extra_;
  std::uint32_t read_alloc_ = min_read_alloc;
  std::uint32_t linger_ms_ = 0;
  std::uint8_t short_reads_ = 0;  // reads in a row under a quarter of the request
  bool close_on_free_ = true;
  bool connecting_ = false;
  bool shutdown_pending_ = false;  // half-close once the output drains
  bool graceful_pending_ = false;  // close once the output drains
};

}  // namespace detail
}  // namespace bufev
