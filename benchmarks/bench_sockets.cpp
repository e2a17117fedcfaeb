// Socket benchmarks on loopback TCP, bufev's two socket transports against
// libevent 2.1's socket bufferevent and a hand-written raw Asio echo, every
// peer with its defaults (libevent: bufferevent_socket_new, no options; it reads
// at most 4096 bytes per call).
//
//   pingpong_<size>_c<N>  muduo-style ping-pong: N connections; every client
//       connection sends one message of <size>, the server echoes whatever it
//       reads, the client echoes back whatever it reads, for a fixed time.
//       Figure: MiB/s received by the clients. One process, two threads: the
//       server loop (io_context / event_base) runs on a thread of its own, the
//       client loop on the main thread (2 cores, one loop each).
//   bulk_read_cap_<cap>  one connection, a blocking sender thread pushes bytes
//       one way, a bufferevent receives with set_max_single_read(cap).
//   bulk_write_cap_<cap>  the same the other way: a bufferevent sends with
//       set_max_single_write(cap), a blocking thread receives.
//
// Connections are made with plain blocking sockets before a scenario starts and
// adopted by each implementation; TCP_NODELAY is set on all of them (bufev sets it
// anyway, so every implementation gets the same sockets).
//
// --quick: connection counts 1 and 100 only, 3 samples of 80 ms per contender,
// 64 MiB bulk transfers. Full: 1, 10, 100, 1000 connections, 5 samples of 250 ms,
// 1 GiB bulk transfers.
#include "bench_common.hpp"
#include "bench_net.hpp"

#include <bufev/bufev.hpp>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/util.h>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/write.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

using tcp = asio::ip::tcp;
std::size_t max_read_override = 0;  // --max-read=N: set_max_single_read(N) on bufev's ping-pong ends
using clock_type = std::chrono::steady_clock;
constexpr double mib = 1024.0 * 1024.0;

using bench::fail;

// ---- plain sockets -----------------------------------------------------------

using bench::net::fd_limit;
using bench::net::fd_pair;
using bench::net::make_connections;
using bench::net::raise_fd_limit;
using bench::net::set_nodelay;

// ---- the ping-pong ---------------------------------------------------------------

// Client-side bookkeeping shared by every implementation. Each connection has
// `size` bytes in flight; after `stop` the client no longer echoes, and a
// connection is idle once its bytes are all back.
struct pingpong_state {
  std::size_t size = 0;
  std::vector<std::size_t> pending;  // per connection: bytes expected back
  std::uint64_t received = 0;        // counted until stop
  std::size_t idle = 0;
  bool stop = false;

  void reset(std::size_t conns) {
    pending.assign(conns, size);
    received = 0;
    idle = 0;
    stop = false;
  }
  // n bytes came back on connection i; true: echo them.
  bool on_bytes(std::size_t i, std::size_t n) {
    if (n > pending[i]) fail("echo returned more than was sent");
    pending[i] -= n;
    if (!stop) {
      received += n;
      pending[i] += n;
      return true;
    }
    if (pending[i] == 0) ++idle;
    return false;
  }
};

/// One implementation of both ends. sample() runs the ping-pong for `ms`
/// and returns MiB/s; the destructor tears everything down.
struct pingpong_impl {
  virtual ~pingpong_impl() = default;
  virtual double sample(double ms) = 0;
};

// Drives the client loop: `run_one` runs at least one handler (blocking). Stops
// echoing at the deadline and waits for every connection's bytes to come back.
template <class RunOne>
double drive(pingpong_state& st, double ms, RunOne run_one) {
  const auto start = clock_type::now();
  const auto deadline = start + std::chrono::duration_cast<clock_type::duration>(
                                    std::chrono::duration<double, std::milli>(ms));
  double secs = 0;
  std::uint64_t bytes = 0;
  while (st.idle < st.pending.size()) {
    run_one();
    if (!st.stop) {
      const auto now = clock_type::now();
      if (now >= deadline) {
        st.stop = true;
        bytes = st.received;
        secs = std::chrono::duration<double>(now - start).count();
        for (std::size_t p : st.pending)
          if (p == 0) ++st.idle;  // cannot happen between handlers, but be exact
      }
    }
  }
  return static_cast<double>(bytes) / mib / secs;
}

// bufev: both transports, default policies (evbuffers, immediate callbacks, unlocked).
template <class Bev>
struct bufev_pingpong final : pingpong_impl {
  asio::io_context sio{1}, cio{1};
  std::vector<bufev::bufferevent_ptr<Bev>> servers, clients;
  pingpong_state st;
  std::string msg;
  std::thread server_thread;

  bufev_pingpong(const std::vector<fd_pair>& fds, std::size_t size) : msg(size, 'p') {
    st.size = size;
    for (std::size_t i = 0; i < fds.size(); ++i) {
      auto s = bufev::make_socket_bufferevent<Bev>(tcp::socket(sio, tcp::v4(), fds[i].server));
      s->setcb([](Bev& b) { b.write_buffer(b.input()); }, nullptr,
               [](Bev& b, bufev::events e, std::error_code) {
                 if (bufev::any(e, bufev::events::eof | bufev::events::error)) b.close();
               });
      if (max_read_override) (void)s->set_max_single_read(max_read_override);
      s->enable(bufev::direction::read);
      servers.push_back(std::move(s));
      auto c = bufev::make_socket_bufferevent<Bev>(tcp::socket(cio, tcp::v4(), fds[i].client));
      c->setcb(
          [this, i](Bev& b) {
            const std::size_t n = b.input().size();
            if (st.on_bytes(i, n)) b.write_buffer(b.input());
            else (void)b.input().drain(n);
          },
          nullptr, [](Bev&, bufev::events e, std::error_code) {
            if (bufev::any(e, bufev::events::eof | bufev::events::error)) fail("bufev client event");
          });
      if (max_read_override) (void)c->set_max_single_read(max_read_override);
      c->enable(bufev::direction::read);
      clients.push_back(std::move(c));
    }
    server_thread = std::thread([this] { sio.run(); });
  }
  ~bufev_pingpong() override {
    for (auto& c : clients) c->setcb(nullptr, nullptr, nullptr);
    for (auto& c : clients) c->close();  // the servers see EOF and close
    cio.restart();
    cio.run();
    clients.clear();
    server_thread.join();
    servers.clear();
  }
  double sample(double ms) override {
    st.reset(clients.size());
    for (auto& c : clients) c->write(msg);
    cio.restart();
    return drive(st, ms, [this] { cio.run_one(); });
  }
};

// Raw Asio: the straightforward echo, async_read_some into a fixed buffer per
// connection, async_write of what was read, read again.
constexpr std::size_t raw_buffer_size = 64 * 1024;

struct raw_conn {
  tcp::socket socket;
  std::unique_ptr<char[]> buf{new char[raw_buffer_size]};
  explicit raw_conn(tcp::socket s) : socket(std::move(s)) {}
};

struct asio_pingpong final : pingpong_impl {
  asio::io_context sio{1}, cio{1};
  std::vector<std::unique_ptr<raw_conn>> servers, clients;
  pingpong_state st;
  std::string msg;
  std::thread server_thread;

  asio_pingpong(const std::vector<fd_pair>& fds, std::size_t size) : msg(size, 'p') {
    st.size = size;
    for (const fd_pair& p : fds) {
      servers.push_back(std::make_unique<raw_conn>(tcp::socket(sio, tcp::v4(), p.server)));
      server_read(*servers.back());
      clients.push_back(std::make_unique<raw_conn>(tcp::socket(cio, tcp::v4(), p.client)));
    }
    server_thread = std::thread([this] { sio.run(); });
  }
  ~asio_pingpong() override {
    std::error_code ec;
    for (auto& c : clients) c->socket.close(ec);
    cio.restart();
    cio.run();
    server_thread.join();
  }
  static void server_read(raw_conn& c) {
    c.socket.async_read_some(asio::buffer(c.buf.get(), raw_buffer_size),
                             [&c](std::error_code ec, std::size_t n) {
                               if (ec) {
                                 c.socket.close(ec);
                                 return;
                               }
                               asio::async_write(c.socket, asio::buffer(c.buf.get(), n),
                                                 [&c](std::error_code e, std::size_t) {
                                                   if (e) {
                                                     c.socket.close(e);
                                                     return;
                                                   }
                                                   server_read(c);
                                                 });
                             });
  }
  void client_read(std::size_t i) {
    raw_conn& c = *clients[i];
    c.socket.async_read_some(asio::buffer(c.buf.get(), raw_buffer_size),
                             [this, i, &c](std::error_code ec, std::size_t n) {
                               if (ec) fail("asio client read");
                               if (!st.on_bytes(i, n)) {
                                 if (st.pending[i] != 0) client_read(i);
                                 return;
                               }
                               asio::async_write(c.socket, asio::buffer(c.buf.get(), n),
                                                 [this, i](std::error_code e, std::size_t) {
                                                   if (e) fail("asio client write");
                                                   client_read(i);
                                                 });
                             });
  }
  double sample(double ms) override {
    st.reset(clients.size());
    for (std::size_t i = 0; i < clients.size(); ++i) {
      asio::async_write(clients[i]->socket, asio::buffer(msg), [](std::error_code e, std::size_t) {
        if (e) fail("asio kick");
      });
      client_read(i);
    }
    cio.restart();
    return drive(st, ms, [this] { cio.run_one(); });
  }
};

// libevent: bufferevent_socket_new with no options (what users get by default).
struct base_deleter {
  void operator()(event_base* b) const noexcept { event_base_free(b); }
};

struct libevent_pingpong final : pingpong_impl {
  std::unique_ptr<event_base, base_deleter> sbase{event_base_new()}, cbase{event_base_new()};
  std::vector<bufferevent*> clients;
  struct client_ctx {
    libevent_pingpong* self;
    std::size_t index;
  };
  std::vector<client_ctx> ctx;
  pingpong_state st;
  std::string msg;
  std::thread server_thread;

  libevent_pingpong(const std::vector<fd_pair>& fds, std::size_t size) : msg(size, 'p') {
    if (!sbase || !cbase) fail("event_base_new");
    st.size = size;
    ctx.reserve(fds.size());
    for (std::size_t i = 0; i < fds.size(); ++i) {
      evutil_make_socket_nonblocking(fds[i].server);
      evutil_make_socket_nonblocking(fds[i].client);
      bufferevent* s = bufferevent_socket_new(sbase.get(), fds[i].server, BEV_OPT_CLOSE_ON_FREE);
      bufferevent* c = bufferevent_socket_new(cbase.get(), fds[i].client, BEV_OPT_CLOSE_ON_FREE);
      if (!s || !c) fail("bufferevent_socket_new");
      bufferevent_setcb(s, &server_read, nullptr, &server_event, nullptr);
      bufferevent_enable(s, EV_READ);
      ctx.push_back({this, i});
      bufferevent_setcb(c, &client_read, nullptr, &client_event, &ctx.back());
      bufferevent_enable(c, EV_READ);
      clients.push_back(c);
    }
    server_thread = std::thread([this] { event_base_dispatch(sbase.get()); });
  }
  ~libevent_pingpong() override {
    // libevent closes a freed bufferevent's socket from its own loop (a
    // finalizer), so shut the sockets down first: the servers see EOF at once.
    for (bufferevent* c : clients) {
      ::shutdown(bufferevent_getfd(c), SHUT_RDWR);
      bufferevent_free(c);
    }
    event_base_loop(cbase.get(), EVLOOP_NONBLOCK);  // runs the finalizers
    server_thread.join();  // the loop ends when no event is left
  }
  static void server_read(bufferevent* b, void*) { bufferevent_write_buffer(b, bufferevent_get_input(b)); }
  static void server_event(bufferevent* b, short what, void*) {
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) bufferevent_free(b);
  }
  static void client_read(bufferevent* b, void* arg) {
    auto* c = static_cast<client_ctx*>(arg);
    evbuffer* in = bufferevent_get_input(b);
    const std::size_t n = evbuffer_get_length(in);
    if (c->self->st.on_bytes(c->index, n)) bufferevent_write_buffer(b, in);
    else evbuffer_drain(in, n);
  }
  static void client_event(bufferevent*, short, void*) { fail("libevent client event"); }
  double sample(double ms) override {
    st.reset(clients.size());
    for (bufferevent* c : clients) bufferevent_write(c, msg.data(), msg.size());
    return drive(st, ms, [this] { event_base_loop(cbase.get(), EVLOOP_ONCE); });
  }
};

using readiness_bev = bufev::tcp_bufferevent<>;
using completion_bev = bufev::tcp_completion_bufferevent<>;

// ---- results (same line formats as bench_common.hpp) ----------------------------

struct row {
  std::string scenario;
  std::vector<std::pair<std::string, double>> values;
};
std::vector<row> all_rows;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

double value_of(const row& r, const std::string& impl) {
  for (const auto& [name, v] : r.values)
    if (name == impl) return v;
  return 0;
}

void print_row(const row& r, const char* unit, bool ratios) {
  std::printf("%s\n", r.scenario.c_str());
  for (const auto& [impl, v] : r.values) std::printf("  %-22s %14.1f %s\n", impl.c_str(), v, unit);
  for (const auto& [impl, v] : r.values)
    std::printf("BENCH scenario=%s impl=%s value=%.3f unit=%s\n", r.scenario.c_str(), impl.c_str(), v, unit);
  if (ratios) {
    // bufev's two transports each over each peer; the transport is part of the scenario name.
    for (const char* ours : {"bufev_readiness", "bufev_completion"})
      for (const char* peer : {"libevent", "asio_raw"}) {
        const double a = value_of(r, ours), b = value_of(r, peer);
        if (a > 0 && b > 0)
          std::printf("RATIO scenario=%s_%s vs=%s value=%.4f\n", r.scenario.c_str(), ours + 6, peer, a / b);
      }
  }
  std::fflush(stdout);
}

struct settings {
  bool quick = false;
  int repetitions = 5;
  double sample_ms = 250;
  std::uint64_t bulk_bytes = 1ull << 30;
  std::string filter;
  std::string impl;  // run only this ping-pong implementation (for profiling)
  bool wants(const std::string& s) const { return filter.empty() || s.find(filter) != std::string::npos; }
  bool wants_impl(const std::string& s) const { return impl.empty() || s == impl; }
};

std::string size_name(std::size_t n) {
  return n >= 1024 ? std::to_string(n / 1024) + "KiB" : std::to_string(n) + "B";
}

void pingpong(const settings& cfg, std::size_t conns, std::size_t size) {
  const std::string name = "pingpong_" + size_name(size) + "_c" + std::to_string(conns);
  if (!cfg.wants(name)) return;
  // Four implementations hold their connections at once: 2 fds per connection each.
  if (8 * conns + 64 > fd_limit()) {
    std::printf("%s: skipped, needs %zu descriptors (limit %zu)\n", name.c_str(), 8 * conns + 64, fd_limit());
    return;
  }
  std::vector<std::pair<std::string, std::unique_ptr<pingpong_impl>>> impls;
  if (cfg.wants_impl("bufev_readiness"))
    impls.emplace_back("bufev_readiness", std::make_unique<bufev_pingpong<readiness_bev>>(make_connections(conns), size));
  if (cfg.wants_impl("bufev_completion"))
    impls.emplace_back("bufev_completion", std::make_unique<bufev_pingpong<completion_bev>>(make_connections(conns), size));
  if (cfg.wants_impl("libevent"))
    impls.emplace_back("libevent", std::make_unique<libevent_pingpong>(make_connections(conns), size));
  if (cfg.wants_impl("asio_raw"))
    impls.emplace_back("asio_raw", std::make_unique<asio_pingpong>(make_connections(conns), size));
  const std::size_t n = impls.size();
  std::vector<std::vector<double>> samples(n);
  for (auto& [_, impl] : impls) (void)impl->sample(cfg.sample_ms / 4);  // warm-up
  for (int rep = 0; rep < cfg.repetitions; ++rep)
    for (std::size_t k = 0; k < n; ++k) {
      const std::size_t i = (k + static_cast<std::size_t>(rep)) % n;
      samples[i].push_back(impls[i].second->sample(cfg.sample_ms));
    }
  row r{name, {}};
  for (std::size_t i = 0; i < n; ++i) r.values.emplace_back(impls[i].first, median(samples[i]));
  print_row(r, "MiB/s", true);
  all_rows.push_back(std::move(r));
}

// ---- bulk transfers: the max single read / write caps ------------------------------

// A blocking sender thread writes `total` bytes; a bufferevent receives.
template <class Bev>
double bulk_read(std::size_t cap, std::uint64_t total) {
  asio::io_context io{1};
  auto fds = make_connections(1).front();
  auto b = bufev::make_socket_bufferevent<Bev>(tcp::socket(io, tcp::v4(), fds.server));
  if (b->set_max_single_read(cap)) fail("set_max_single_read");
  std::uint64_t got = 0;
  b->setcb([&got](Bev& bev) {
    const std::size_t n = bev.input().size();
    got += n;
    (void)bev.input().drain(n);
  }, nullptr, nullptr);
  b->enable(bufev::direction::read);
  const auto start = clock_type::now();
  std::thread sender([fd = fds.client, total] {
    std::vector<char> chunk(1 << 20, 'b');
    std::uint64_t left = total;
    while (left > 0) {
      const ssize_t n = ::send(fd, chunk.data(), std::min<std::uint64_t>(left, chunk.size()), 0);
      if (n <= 0) fail("bulk send");
      left -= static_cast<std::uint64_t>(n);
    }
  });
  while (got < total) io.run_one();
  const double secs = std::chrono::duration<double>(clock_type::now() - start).count();
  sender.join();
  ::close(fds.client);
  b->close();
  io.restart();
  io.run();
  return static_cast<double>(total) / mib / secs;
}

double bulk_read_libevent(std::uint64_t total) {
  std::unique_ptr<event_base, base_deleter> base{event_base_new()};
  auto fds = make_connections(1).front();
  evutil_make_socket_nonblocking(fds.server);
  bufferevent* b = bufferevent_socket_new(base.get(), fds.server, BEV_OPT_CLOSE_ON_FREE);
  std::uint64_t got = 0;
  bufferevent_setcb(b, [](bufferevent* bev, void* arg) {
    evbuffer* in = bufferevent_get_input(bev);
    const std::size_t n = evbuffer_get_length(in);
    *static_cast<std::uint64_t*>(arg) += n;
    evbuffer_drain(in, n);
  }, nullptr, nullptr, &got);
  bufferevent_enable(b, EV_READ);
  const auto start = clock_type::now();
  std::thread sender([fd = fds.client, total] {
    std::vector<char> chunk(1 << 20, 'b');
    std::uint64_t left = total;
    while (left > 0) {
      const ssize_t n = ::send(fd, chunk.data(), std::min<std::uint64_t>(left, chunk.size()), 0);
      if (n <= 0) fail("bulk send");
      left -= static_cast<std::uint64_t>(n);
    }
  });
  while (got < total) event_base_loop(base.get(), EVLOOP_ONCE);
  const double secs = std::chrono::duration<double>(clock_type::now() - start).count();
  sender.join();
  ::close(fds.client);
  bufferevent_free(b);
  return static_cast<double>(total) / mib / secs;
}

// A bufferevent sends `total` bytes (refilled by reference from its write
// callback, so no copy is measured); a blocking thread receives.
template <class Bev>
double bulk_write(std::size_t cap, std::uint64_t total) {
  asio::io_context io{1};
  auto fds = make_connections(1).front();
  auto b = bufev::make_socket_bufferevent<Bev>(tcp::socket(io, tcp::v4(), fds.server));
  if (b->set_max_single_write(cap)) fail("set_max_single_write");
  static const std::vector<char> chunk(1 << 20, 'w');
  std::uint64_t queued = 0;
  auto refill = [&queued, total](Bev& bev) {
    while (queued < total && bev.output().size() < (4u << 20)) {
      const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(chunk.size(), total - queued));
      if (bev.output().add_reference(chunk.data(), n)) fail("add_reference");
      queued += n;
    }
  };
  b->setwatermark(bufev::direction::write, 2u << 20, 0);
  b->setcb(nullptr, refill, nullptr);
  std::thread receiver([fd = fds.client, total] {
    std::vector<char> buf(1 << 20);
    std::uint64_t left = total;
    while (left > 0) {
      const ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
      if (n <= 0) fail("bulk recv");
      left -= static_cast<std::uint64_t>(n);
    }
  });
  const auto start = clock_type::now();
  refill(*b);
  while (!(queued == total && b->output().empty())) io.run_one();
  receiver.join();  // every byte has arrived
  const double secs = std::chrono::duration<double>(clock_type::now() - start).count();
  ::close(fds.client);
  b->close();
  io.restart();
  io.run();
  return static_cast<double>(total) / mib / secs;
}

void bulk(const settings& cfg) {
  const std::size_t caps[] = {4096, 16384, 65536, 262144, 1048576};
  const int reps = cfg.quick ? 2 : 3;
  for (const bool reading : {true, false}) {
    for (std::size_t cap : caps) {
      if (reading && cap > 262144) continue;
      if (!reading && cap < 16384) continue;
      const std::string name = std::string(reading ? "bulk_read_cap_" : "bulk_write_cap_") + size_name(cap);
      if (!cfg.wants(name)) continue;
      std::vector<double> r, c;
      for (int i = 0; i < reps; ++i) {
        if (reading) {
          r.push_back(bulk_read<readiness_bev>(cap, cfg.bulk_bytes));
          c.push_back(bulk_read<completion_bev>(cap, cfg.bulk_bytes));
        } else {
          r.push_back(bulk_write<readiness_bev>(cap, cfg.bulk_bytes));
          c.push_back(bulk_write<completion_bev>(cap, cfg.bulk_bytes));
        }
      }
      row rw{name, {{"bufev_readiness", median(r)}, {"bufev_completion", median(c)}}};
      print_row(rw, "MiB/s", false);
      all_rows.push_back(std::move(rw));
    }
  }
  const std::string ref = "bulk_read_reference";
  if (cfg.wants(ref)) {
    std::vector<double> l;
    for (int i = 0; i < reps; ++i) l.push_back(bulk_read_libevent(cfg.bulk_bytes));
    row rw{ref, {{"libevent", median(l)}}};
    print_row(rw, "MiB/s", false);
    all_rows.push_back(std::move(rw));
  }
}

}  // namespace

int main(int argc, char** argv) {
  settings cfg;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--quick") {
      cfg.quick = true;
      cfg.repetitions = 3;
      cfg.sample_ms = 80;
      cfg.bulk_bytes = 64ull << 20;
    } else if (a.rfind("--filter=", 0) == 0) {
      cfg.filter = std::string(a.substr(9));
    } else if (a.rfind("--max-read=", 0) == 0) {
      max_read_override = std::stoul(std::string(a.substr(11)));
    } else if (a.rfind("--impl=", 0) == 0) {
      cfg.impl = std::string(a.substr(7));
    } else if (a == "--help" || a == "-h") {
      std::printf("usage: %s [--quick] [--filter=SUBSTRING] [--impl=bufev_readiness|bufev_completion|libevent|asio_raw] [--max-read=BYTES]\n", argv[0]);
      return 0;
    } else {
      std::fprintf(stderr, "unknown argument: %s\n", argv[i]);
      return 2;
    }
  }
  raise_fd_limit();
  const std::vector<std::size_t> conns =
      cfg.quick ? std::vector<std::size_t>{1, 100} : std::vector<std::size_t>{1, 10, 100, 1000};
  for (std::size_t size : {std::size_t{64}, std::size_t{4096}, std::size_t{16384}})
    for (std::size_t n : conns) pingpong(cfg, n, size);
  bulk(cfg);

  std::printf("\n%-28s %-18s %-10s %10s\n", "scenario", "bufev", "vs", "ratio");
  for (const row& r : all_rows) {
    for (const char* ours : {"bufev_readiness", "bufev_completion"})
      for (const char* peer : {"libevent", "asio_raw"}) {
        const double a = value_of(r, ours), b = value_of(r, peer);
        if (a > 0 && b > 0) std::printf("%-28s %-18s %-10s %9.2fx\n", r.scenario.c_str(), ours, peer, a / b);
      }
  }
  std::fflush(stdout);
}
