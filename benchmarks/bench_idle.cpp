// Heap bytes per idle connection: 1000 accepted, connected, read-enabled
// connections that receive nothing, each implementation with its defaults.
//
//   bufev_readiness   tcp_bufferevent<> adopting the socket, enable(read)
//   bufev_completion  tcp_completion_bufferevent<> the same (a read is posted)
//   libevent          bufferevent_socket_new(fd, BEV_OPT_CLOSE_ON_FREE), EV_READ
//   asio_raw          the echo connection of bench_sockets: socket, 64 KiB
//                     buffer, async_read_some pending
//   asio_wait         the leanest Asio idiom: socket and async_wait(wait_read)
//   asio_socket       an assigned socket and nothing else (Asio's own cost)
//   bufev_readiness_lean  the readiness transport with a handler object and the
//                     socket typed on io_context::executor_type
//
// Figures come from mallinfo2 (uordblks + hblkhd: bytes in use, malloc's
// chunk headers included), so C++ operator new and libevent's malloc are counted
// alike. The operator new column misses Asio's operations (Asio 1.22 allocates
// them with aligned_alloc). The socket descriptors are made before the baseline is taken (kernel
// memory is not heap), and each implementation runs on a fresh io_context /
// event_base whose services exist already, so the figure is only what one more
// connection costs. A second table splits the C++ figures by operator new calls.
#include "bench_common.hpp"
#include "bench_net.hpp"

#include <bufev/bufev.hpp>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/util.h>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

#include <arpa/inet.h>
#include <malloc.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <memory>
#include <new>
#include <string>
#include <vector>

// ---- operator new counting (the breakdown of the C++ figures) -------------------

namespace {
std::atomic<long long> new_calls{0};
std::atomic<long long> new_live{0};  // usable bytes of live operator new blocks
}  // namespace

void* operator new(std::size_t n) {
  void* p = std::malloc(n ? n : 1);
  if (!p) throw std::bad_alloc();
  new_calls.fetch_add(1, std::memory_order_relaxed);
  new_live.fetch_add(static_cast<long long>(malloc_usable_size(p)), std::memory_order_relaxed);
  return p;
}
void* operator new[](std::size_t n) { return ::operator new(n); }
void operator delete(void* p) noexcept {
  if (!p) return;
  new_live.fetch_sub(static_cast<long long>(malloc_usable_size(p)), std::memory_order_relaxed);
  std::free(p);
}
void operator delete[](void* p) noexcept { ::operator delete(p); }
void operator delete(void* p, std::size_t) noexcept { ::operator delete(p); }
void operator delete[](void* p, std::size_t) noexcept { ::operator delete(p); }
// Asio allocates its operations with aligned new.
void* operator new(std::size_t n, std::align_val_t a) {
  void* p = nullptr;
  const std::size_t align = std::max(static_cast<std::size_t>(a), sizeof(void*));
  if (posix_memalign(&p, align, n ? n : 1) != 0) throw std::bad_alloc();
  new_calls.fetch_add(1, std::memory_order_relaxed);
  new_live.fetch_add(static_cast<long long>(malloc_usable_size(p)), std::memory_order_relaxed);
  return p;
}
void* operator new[](std::size_t n, std::align_val_t a) { return ::operator new(n, a); }
void operator delete(void* p, std::align_val_t) noexcept { ::operator delete(p); }
void operator delete[](void* p, std::align_val_t) noexcept { ::operator delete(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { ::operator delete(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { ::operator delete(p); }

namespace {

using tcp = asio::ip::tcp;
constexpr std::size_t connections = 1000;

using bench::fail;

long long heap_in_use() {
  const struct mallinfo2 m = mallinfo2();
  return static_cast<long long>(m.uordblks + m.hblkhd);
}

using bench::net::fd_pair;
using bench::net::make_connections;

void close_clients(const std::vector<fd_pair>& fds) {
  for (const fd_pair& p : fds) ::close(p.client);
}

struct figure {
  std::string impl;
  double heap = 0;       // mallinfo2 bytes per connection
  double new_bytes = 0;  // operator new usable bytes per connection (C++ only)
  double new_calls = 0;  // operator new calls per connection
};

// Measures what `setup` adds for `connections` connections, then lets `teardown`
// free it. Both get the accepted descriptors.
template <class Setup, class Teardown>
figure measure(const char* impl, Setup setup, Teardown teardown) {
  auto fds = make_connections(connections);
  std::vector<int> server_fds;
  for (const fd_pair& p : fds) server_fds.push_back(p.server);
  const long long heap0 = heap_in_use(), live0 = new_live.load(), calls0 = new_calls.load();
  setup(server_fds);
  const long long heap1 = heap_in_use(), live1 = new_live.load(), calls1 = new_calls.load();
  teardown();
  close_clients(fds);
  const double n = static_cast<double>(connections);
  return {impl, static_cast<double>(heap1 - heap0) / n, static_cast<double>(live1 - live0) / n,
          static_cast<double>(calls1 - calls0) / n};
}

// A fresh io_context whose socket service and reactor already exist.
std::unique_ptr<asio::io_context> warm_io_context() {
  auto io = std::make_unique<asio::io_context>(1);
  tcp::socket s(*io);
  s.open(tcp::v4());
  s.async_wait(tcp::socket::wait_read, [](std::error_code) {});
  s.close();
  io->run();
  io->restart();
  return io;
}

// A handler object instead of run-time callbacks (no std::function storage).
struct drain_handler {
  template <class Bev>
  void on_read(Bev& b) {
    (void)b.input().drain(b.input().size());
  }
};

template <class Bev>
void set_drain_callback(Bev& b) {
  if constexpr (Bev::dynamic) b.setcb([](Bev& x) { (void)x.input().drain(x.input().size()); }, nullptr, nullptr);
}

template <class Bev>
figure measure_bufev(const char* impl) {
  auto io = warm_io_context();
  std::vector<bufev::bufferevent_ptr<Bev>> bevs;
  bevs.reserve(connections);
  return measure(
      impl,
      [&](const std::vector<int>& fds) {
        for (int fd : fds) {
          auto b = bufev::make_socket_bufferevent<Bev>(typename Bev::transport_type::socket_type(*io, tcp::v4(), fd));
          set_drain_callback(*b);
          b->enable(bufev::direction::read);
          bevs.push_back(std::move(b));
        }
        io->poll();  // whatever the first turn of the loop allocates
      },
      [&] {
        for (auto& b : bevs) b->close();
        io->restart();
        io->run();
        bevs.clear();
      });
}

figure measure_asio_raw() {
  struct conn {
    tcp::socket socket;
    std::unique_ptr<char[]> buf{new char[64 * 1024]};
    explicit conn(tcp::socket s) : socket(std::move(s)) {}
  };
  auto io = warm_io_context();
  std::vector<std::unique_ptr<conn>> conns;
  conns.reserve(connections);
  return measure(
      "asio_raw",
      [&](const std::vector<int>& fds) {
        for (int fd : fds) {
          conns.push_back(std::make_unique<conn>(tcp::socket(*io, tcp::v4(), fd)));
          conns.back()->socket.async_read_some(asio::buffer(conns.back()->buf.get(), 64 * 1024),
                                               [](std::error_code, std::size_t) {});
        }
        io->poll();
      },
      [&] {
        for (auto& c : conns) c->socket.close();
        io->restart();
        io->run();
        conns.clear();
      });
}

figure measure_asio_wait(bool wait) {
  auto io = warm_io_context();
  std::vector<tcp::socket> socks;
  socks.reserve(connections);
  return measure(
      wait ? "asio_wait" : "asio_socket",
      [&](const std::vector<int>& fds) {
        for (int fd : fds) {
          socks.emplace_back(*io, tcp::v4(), fd);
          if (wait) socks.back().async_wait(tcp::socket::wait_read, [](std::error_code) {});
        }
        io->poll();
      },
      [&] {
        for (auto& s : socks) s.close();
        io->restart();
        io->run();
        socks.clear();
      });
}

struct base_deleter {
  void operator()(event_base* b) const noexcept { event_base_free(b); }
};

figure measure_libevent() {
  std::unique_ptr<event_base, base_deleter> base{event_base_new()};
  if (!base) fail("event_base_new");
  std::vector<bufferevent*> bevs;
  bevs.reserve(connections);
  return measure(
      "libevent",
      [&](const std::vector<int>& fds) {
        for (int fd : fds) {
          evutil_make_socket_nonblocking(fd);
          bufferevent* b = bufferevent_socket_new(base.get(), fd, BEV_OPT_CLOSE_ON_FREE);
          if (!b) fail("bufferevent_socket_new");
          bufferevent_setcb(b, [](bufferevent*, void*) {}, nullptr, nullptr, nullptr);
          bufferevent_enable(b, EV_READ);
          bevs.push_back(b);
        }
        event_base_loop(base.get(), EVLOOP_NONBLOCK);
      },
      [&] {
        for (bufferevent* b : bevs) bufferevent_free(b);
        event_base_loop(base.get(), EVLOOP_NONBLOCK);  // finalizers close the sockets
        bevs.clear();
      });
}

}  // namespace

int main(int argc, char** argv) {
  (void)bench::config::from_args(argc, argv);  // --quick changes nothing: one pass is exact
  bench::net::raise_fd_limit();
  if (bench::net::fd_limit() < 2 * connections + 64) {
    std::printf("idle_heap_per_conn: skipped, needs %zu descriptors\n", 2 * connections + 64);
    return 0;
  }
  // Keep freed memory in the heap between measurements (the figures are deltas
  // of bytes in use, trimming would not change them but costs time).
  mallopt(M_TRIM_THRESHOLD, 64 << 20);

  using readiness_bev = bufev::tcp_bufferevent<>;
  using completion_bev = bufev::tcp_completion_bufferevent<>;
  std::vector<figure> figs;
  figs.push_back(measure_bufev<readiness_bev>("bufev_readiness"));
  figs.push_back(measure_bufev<completion_bev>("bufev_completion"));
  // The leanest configuration available today: a handler object and the
  // socket typed on io_context's executor (40-byte socket instead of 88).
  using lean_bev = bufev::basic_bufferevent<bufev::socket_transport<tcp, asio::io_context::executor_type>,
                                            bufev::handler<drain_handler>>;
  figs.push_back(measure_bufev<lean_bev>("bufev_readiness_lean"));
  figs.push_back(measure_libevent());
  figs.push_back(measure_asio_raw());
  figs.push_back(measure_asio_wait(true));
  figs.push_back(measure_asio_wait(false));

  const char* scenario = "idle_heap_per_conn";
  std::printf("%s (%zu idle read-enabled connections, bytes per connection)\n", scenario, connections);
  std::printf("  %-18s %12s %14s %12s\n", "impl", "heap B", "operator new B", "new calls");
  for (const figure& f : figs)
    std::printf("  %-18s %12.1f %14.1f %12.2f\n", f.impl.c_str(), f.heap, f.new_bytes, f.new_calls);
  std::printf("  sizes: basic_bufferevent readiness %zu, completion %zu; evbuffer %zu; "
              "tcp::socket %zu; epoll descriptor_state %zu\n",
              sizeof(readiness_bev), sizeof(completion_bev), sizeof(bufev::evbuffer), sizeof(tcp::socket),
              sizeof(asio::detail::epoll_reactor::descriptor_state));
  for (const figure& f : figs)
    std::printf("BENCH scenario=%s impl=%s value=%.1f unit=B\n", scenario, f.impl.c_str(), f.heap);
  // Lower is better: the ratio is the peer's bytes over bufev's.
  for (std::size_t ours = 0; ours < 2; ++ours)
    for (const char* peer : {"libevent", "asio_raw"})
      for (const figure& f : figs)
        if (f.impl == peer)
          std::printf("RATIO scenario=%s_%s vs=%s value=%.4f\n", scenario, ours == 0 ? "readiness" : "completion",
                      peer, figs[ours].heap > 0 ? f.heap / figs[ours].heap : 0.0);
  std::printf("  bufev_readiness_lean: sizeof %zu\n", sizeof(lean_bev));
  std::printf("  bufev_readiness minus asio_wait (bufev's own bytes): %.1f B per connection\n",
              figs[0].heap - figs[5].heap);
  std::fflush(stdout);
}
