// bufev's pair against libevent 2.1's bufferevent_pair_new, both with their
// defaults (libevent pairs always defer callbacks; so does pair_bufferevent<>),
// in the same process with interleaved repetitions.
//
//   pair_throughput_64B / 4KiB / 64KiB  one side writes messages of that size in
//       256 KiB batches (refilled from its write callback when the output is
//       empty), the other drains in its read callback (MiB/s)
//   pair_pingpong_64B  one 64-byte message bounces between the sides; each hop
//       is one read callback (callbacks/s)
//
// bufev runs on an io_context with concurrency hint 1 (single-threaded, like a
// libevent base without evthread locking).
#include "bench_common.hpp"

#include <bufev/bufev.hpp>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include <asio/io_context.hpp>

#include <memory>
#include <string>

namespace {

constexpr double mib = 1024.0 * 1024.0;
constexpr std::size_t batch_bytes = 256 * 1024;

using bench::fail;

using pair_t = bufev::pair_bufferevent<>;

// ---- bufev -----------------------------------------------------------------

struct bufev_stream {
  asio::io_context io{1};
  std::pair<bufev::bufferevent_ptr<pair_t>, bufev::bufferevent_ptr<pair_t>> p =
      bufev::make_pair(io.get_executor());
  std::string msg;
  std::size_t total = 0, sent = 0, received = 0;

  bufev_stream(std::size_t size, std::size_t total_bytes) : msg(size, 'm'), total(total_bytes) {
    p.first->setcb(nullptr, [this](pair_t& a) { refill(a); }, nullptr);
    p.second->setcb(
        [this](pair_t& b) {
          const std::size_t n = b.input().size();
          received += n;
          (void)b.input().drain(n);
        },
        nullptr, nullptr);
    p.second->enable(bufev::direction::read);
  }
  void refill(pair_t& a) {
    for (std::size_t k = 0; k < batch_bytes && sent < total; k += msg.size(), sent += msg.size())
      a.write(msg.data(), msg.size());
  }
  void run() {
    sent = received = 0;
    refill(*p.first);
    io.restart();
    io.run();
    if (received != total) fail("bufev pair stream");
  }
};

struct bufev_pingpong {
  asio::io_context io{1};
  std::pair<bufev::bufferevent_ptr<pair_t>, bufev::bufferevent_ptr<pair_t>> p =
      bufev::make_pair(io.get_executor());
  std::size_t hops = 0, limit = 0;
  char msg[64] = {};

  bufev_pingpong() {
    auto bounce = [this](pair_t& b) {
      if (b.read(msg, sizeof msg) != sizeof msg) fail("bufev pingpong read");
      if (++hops < limit) b.write(msg, sizeof msg);
    };
    p.first->setcb(bounce, nullptr, nullptr);
    p.second->setcb(bounce, nullptr, nullptr);
    p.first->enable(bufev::direction::read);
    p.second->enable(bufev::direction::read);
  }
  void run(std::size_t n) {
    hops = 0;
    limit = n;
    p.first->write(msg, sizeof msg);
    io.restart();
    io.run();
    if (hops != n) fail("bufev pingpong");
  }
};

// ---- libevent --------------------------------------------------------------

struct base_deleter {
  void operator()(event_base* b) const noexcept { event_base_free(b); }
};

struct libevent_pair {
  std::unique_ptr<event_base, base_deleter> base{event_base_new()};
  bufferevent* side[2] = {nullptr, nullptr};
  libevent_pair() {
    if (!base || bufferevent_pair_new(base.get(), 0, side) != 0) fail("bufferevent_pair_new");
  }
  ~libevent_pair() {
    bufferevent_free(side[0]);
    bufferevent_free(side[1]);
  }
};

struct libevent_stream : libevent_pair {
  std::string msg;
  std::size_t total = 0, sent = 0, received = 0;

  libevent_stream(std::size_t size, std::size_t total_bytes) : msg(size, 'm'), total(total_bytes) {
    bufferevent_setcb(side[0], nullptr, &on_write, nullptr, this);
    bufferevent_setcb(side[1], &on_read, nullptr, nullptr, this);
    bufferevent_enable(side[1], EV_READ);
  }
  static void on_write(bufferevent* a, void* self) { static_cast<libevent_stream*>(self)->refill(a); }
  static void on_read(bufferevent* b, void* arg) {
    auto* self = static_cast<libevent_stream*>(arg);
    evbuffer* in = bufferevent_get_input(b);
    const std::size_t n = evbuffer_get_length(in);
    self->received += n;
    evbuffer_drain(in, n);
  }
  void refill(bufferevent* a) {
    for (std::size_t k = 0; k < batch_bytes && sent < total; k += msg.size(), sent += msg.size())
      bufferevent_write(a, msg.data(), msg.size());
  }
  void run() {
    sent = received = 0;
    refill(side[0]);
    event_base_dispatch(base.get());
    if (received != total) fail("libevent pair stream");
  }
};

struct libevent_pingpong : libevent_pair {
  std::size_t hops = 0, limit = 0;
  char msg[64] = {};
  libevent_pingpong() {
    for (bufferevent* s : side) {
      bufferevent_setcb(s, &on_read, nullptr, nullptr, this);
      bufferevent_enable(s, EV_READ);
    }
  }
  static void on_read(bufferevent* b, void* arg) {
    auto* self = static_cast<libevent_pingpong*>(arg);
    if (bufferevent_read(b, self->msg, sizeof self->msg) != sizeof self->msg)
      fail("libevent pingpong read");
    if (++self->hops < self->limit) bufferevent_write(b, self->msg, sizeof self->msg);
  }
  void run(std::size_t n) {
    hops = 0;
    limit = n;
    bufferevent_write(side[0], msg, sizeof msg);
    event_base_dispatch(base.get());
    if (hops != n) fail("libevent pingpong");
  }
};

void throughput(bench::runner& r, std::size_t size, const char* name) {
  const std::size_t total = (size >= 4096 ? 32 : 4) * 1024 * 1024;
  auto ours = std::make_shared<bufev_stream>(size, total);
  auto theirs = std::make_shared<libevent_stream>(size, total);
  r.run(name, "MiB/s", static_cast<double>(total) / mib,
        {{"bufev", [=] { ours->run(); }}, {"libevent", [=] { theirs->run(); }}});
}

}  // namespace

int main(int argc, char** argv) {
  bench::runner r(bench::config::from_args(argc, argv));
  throughput(r, 64, "pair_throughput_64B");
  throughput(r, 4096, "pair_throughput_4KiB");
  throughput(r, 65536, "pair_throughput_64KiB");
  {
    constexpr std::size_t hops = 20000;
    auto ours = std::make_shared<bufev_pingpong>();
    auto theirs = std::make_shared<libevent_pingpong>();
    r.run("pair_pingpong_64B", "callbacks/s", hops,
          {{"bufev", [=] { ours->run(hops); }}, {"libevent", [=] { theirs->run(hops); }}});
  }
  r.summary();
}
