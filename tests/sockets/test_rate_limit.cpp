// Rate limiting (spec section 6): configuration, deterministic bucket logic on a
// pair with the manual clock, and measured rates on real loopback sockets with
// both socket transports (this file is also built for io_uring).
#include <bufev/bufev.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

#include "support/catch.hpp"
#include "support/drive.hpp"
#include "support/sockets.hpp"

using namespace bufev;
using bufev::test::drain_ready;
using bufev::test::run_until;
using bufev::test::socket_pair;
using namespace std::chrono_literals;

namespace {

struct readiness {
  template <class... P>
  using bev = basic_bufferevent<socket_transport<asio::ip::tcp>, P...>;
};
struct completion {
  template <class... P>
  using bev = basic_bufferevent<completion_socket_transport<asio::ip::tcp>, P...>;
};

using pbev = pair_bufferevent<rate_limited, manual_timers>;
using manual_group = basic_rate_limit_group<manual_timers>;

std::string bytes(std::size_t n, char c = 'x') { return std::string(n, c); }

// ---- the default policy costs nothing --------------------------------------

using plain_bev = tcp_bufferevent<>;
using plain_state = no_rate_limit::state<plain_bev, steady_timers>;
static_assert(std::is_empty_v<plain_state>, "no_rate_limit keeps no state");
struct probe {
  [[no_unique_address]] plain_state s;
  std::size_t x;
};
static_assert(sizeof(probe) == sizeof(std::size_t), "no_rate_limit takes no room in a bufferevent");
static_assert(sizeof(tcp_bufferevent<>) == sizeof(tcp_bufferevent<no_rate_limit>));
static_assert(sizeof(tcp_bufferevent<>) < sizeof(tcp_bufferevent<rate_limited>));
template <class B>
concept has_rate_limit = requires(B& b) { b.rate_limit(); };
static_assert(!has_rate_limit<tcp_bufferevent<>>, "rate_limit() exists only with rate_limited");
static_assert(has_rate_limit<tcp_bufferevent<rate_limited>>);

}  // namespace

TEST_CASE("rate limit: invalid configurations are refused with an error code", "[rate_limit]") {
  std::error_code ec;
  const auto good = make_rate_limit_config(100, 200, 10, 10, 50ms, ec);
  CHECK_FALSE(ec);
  CHECK(good.read_rate == 100);
  CHECK(good.write_burst == 10);

  (void)make_rate_limit_config(0, 200, 10, 10, 50ms, ec);
  CHECK(ec == errc::invalid_argument);  // rate < 1
  (void)make_rate_limit_config(100, 200, 0, 10, 50ms, ec);
  CHECK(ec == errc::invalid_argument);
  (void)make_rate_limit_config(300, 200, 10, 10, 50ms, ec);
  CHECK(ec == errc::invalid_configuration);  // rate > burst
  (void)make_rate_limit_config(10, 10, 11, 10, 50ms, ec);
  CHECK(ec == errc::invalid_configuration);
  (void)make_rate_limit_config(10, 10, 10, 10, 0ms, ec);
  CHECK(ec == errc::invalid_argument);  // no tick
  (void)make_rate_limit_config(10, 10, 10, 10, -5ms, ec);
  CHECK(ec == errc::invalid_argument);
  (void)make_rate_limit_config(10, max_rate_limit + 1, 10, 10, 1s, ec);
  CHECK(ec == errc::invalid_argument);  // too large for the signed buckets
  (void)make_rate_limit_config(max_rate_limit, max_rate_limit, 1, 1, 1s, ec);
  CHECK_FALSE(ec);
  CHECK(rate_limit_config{}.validate() == errc::invalid_argument);

  asio::io_context io;
  auto [a, b] = bufev::make_pair<pbev>(io.get_executor());
  CHECK(a->rate_limit().set(rate_limit_config{5, 4, 5, 5, 1ms}) == errc::invalid_configuration);
  CHECK_FALSE(a->rate_limit().config());  // nothing changed
  CHECK(a->rate_limit().read_limit() == INT64_MAX);
  CHECK(a->rate_limit().decrement_read_limit(5) == errc::invalid_argument);  // no bucket
  REQUIRE_FALSE(a->rate_limit().set(good));
  CHECK(a->rate_limit().set(rate_limit_config{}) == errc::invalid_argument);
  CHECK(*a->rate_limit().config() == good);  // the old one stays

  auto g = manual_group::create(io.get_executor(), rate_limit_config{2, 1, 1, 1, 1s}, ec);
  CHECK_FALSE(g);
  CHECK(ec == errc::invalid_configuration);
  g = manual_group::create(io.get_executor(), good, ec);
  REQUIRE(g);
  CHECK(g->set_config(rate_limit_config{1, 1, 1, 1, 0s}) == errc::invalid_argument);
  CHECK(g->config() == good);
  CHECK(a->rate_limit().add_to_group(nullptr) == errc::invalid_argument);

  a->close();
  CHECK(a->rate_limit().set(good) == errc::closed);
  CHECK(a->rate_limit().add_to_group(g) == errc::closed);
}

#if !defined(ASIO_HAS_IO_URING)
// Manual-clock timers need the reactor to re-check them on every turn; Asio's
// io_uring backend arms a kernel timeout per wait instead. These tests use no
// socket, so the epoll build covers them.
TEST_CASE("rate limit: pair write bucket empties, suspends, refills per tick (manual clock)",
          "[rate_limit][pair]") {
  asio::io_context io;
  auto [a, b] = bufev::make_pair<pbev>(io.get_executor());
  b->enable(direction::read);
  int writes = 0;
  a->setcb(nullptr, [&](pbev&) { ++writes; }, nullptr);
  REQUIRE_FALSE(a->rate_limit().set(rate_limit_config{1000, 1000, 100, 300, 10ms}));
  CHECK(a->rate_limit().write_limit() == 100);  // buckets start at the rate
  CHECK(a->rate_limit().read_limit() == 1000);
  CHECK(a->rate_limit().max_to_write() == 100);
  CHECK_FALSE(a->rate_limit().refill_pending());  // no timer while nothing is suspended

  REQUIRE_FALSE(a->write(bytes(1000)));
  drain_ready(io);
  CHECK(b->input().size() == 100);
  CHECK(a->rate_limit().write_limit() == 0);
  CHECK(a->rate_limit().suspended(direction::write));
  CHECK_FALSE(a->rate_limit().suspended(direction::read));
  CHECK(a->rate_limit().refill_pending());
  CHECK(a->enabled() == direction::write);  // rule 2.1: suspension never shows
  CHECK(writes == 0);
  drain_ready(io);
  CHECK(b->input().size() == 100);  // nothing moves before the tick

  manual_clock::advance(9ms);
  drain_ready(io);
  CHECK(b->input().size() == 100);
  manual_clock::advance(1ms);
  drain_ready(io);
  CHECK(b->input().size() == 200);  // one tick: one rate
  CHECK(a->rate_limit().suspended(direction::write));

  // Ticks missed while suspended add up, capped at the burst.
  manual_clock::advance(50ms);
  drain_ready(io);
  CHECK(b->input().size() == 500);  // burst 300, not 5 * 100
  CHECK(a->enabled() == direction::write);

  // Bytes are deducted after the I/O: a manual decrement takes the bucket
  // below zero, and it takes several ticks to come back above it.
  REQUIRE_FALSE(a->rate_limit().decrement_write_limit(250));
  CHECK(a->rate_limit().write_limit() == -250);
  manual_clock::advance(10ms);
  drain_ready(io);
  CHECK(a->rate_limit().write_limit() == -150);
  CHECK(a->rate_limit().refill_pending());  // still empty: re-armed
  manual_clock::advance(10ms);
  drain_ready(io);
  CHECK(b->input().size() == 500);
  manual_clock::advance(10ms);
  drain_ready(io);
  CHECK(b->input().size() == 550);  // back at +50
  // A negative decrement gives tokens and resumes at once.
  REQUIRE_FALSE(a->rate_limit().decrement_write_limit(-100));
  drain_ready(io);
  CHECK(b->input().size() == 650);

  // The rest, tick by tick; the write callback fires once everything is out.
  for (int i = 0; i < 10 && b->input().size() < 1000; ++i) {
    manual_clock::advance(10ms);
    drain_ready(io);
  }
  CHECK(b->input().size() == 1000);
  CHECK(writes >= 1);
  CHECK(a->enabled() == direction::write);
}

// Also with the lock policy: the buckets take the bufferevent's (recursive) lock.
TEMPLATE_TEST_CASE("rate limit: pair read bucket limits what the reader takes", "[rate_limit][pair]", pbev,
                   (pair_bufferevent<rate_limited, manual_timers, locked>)) {
  using pbev = TestType;
  asio::io_context io;
  auto [a, b] = bufev::make_pair<pbev>(io.get_executor());
  b->enable(direction::read);
  int reads = 0;
  b->setcb([&](pbev&) { ++reads; }, nullptr, nullptr);
  REQUIRE_FALSE(b->rate_limit().set(rate_limit_config{64, 64, 1, 1, 5ms}));
  REQUIRE_FALSE(a->write(bytes(200)));
  drain_ready(io);
  CHECK(b->input().size() == 64);
  CHECK(a->output().size() == 136);  // the rest waits in the writer's output
  CHECK(b->rate_limit().suspended(direction::read));
  CHECK(b->enabled() == (direction::read | direction::write));
  CHECK(reads == 1);
  manual_clock::advance(5ms);
  drain_ready(io);
  CHECK(b->input().size() == 128);
  // Removing the limit lets everything through at once and stops the timer.
  b->rate_limit().clear();
  CHECK_FALSE(b->rate_limit().refill_pending());
  CHECK_FALSE(b->rate_limit().suspended(direction::read));
  drain_ready(io);
  CHECK(b->input().size() == 200);
}

TEST_CASE("rate limit: runtime reconfiguration raises, lowers and removes (manual clock)",
          "[rate_limit][pair]") {
  asio::io_context io;
  auto [a, b] = bufev::make_pair<pbev>(io.get_executor());
  b->enable(direction::read);
  REQUIRE_FALSE(a->rate_limit().set(rate_limit_config{1, 1, 100, 100, 10ms}));
  REQUIRE_FALSE(a->write(bytes(100000)));
  drain_ready(io);
  CHECK(b->input().size() == 100);

  // Raise: the new rate applies from the next tick.
  REQUIRE_FALSE(a->rate_limit().set(rate_limit_config{1, 1, 1000, 1000, 10ms}));
  drain_ready(io);
  CHECK(b->input().size() == 100);
  manual_clock::advance(10ms);
  drain_ready(io);
  CHECK(b->input().size() == 1100);

  // Lower, with a longer tick: the balance is clipped to the new burst.
  manual_clock::advance(10ms);  // bucket would be 1000 on the next look
  REQUIRE_FALSE(a->rate_limit().set(rate_limit_config{1, 1, 10, 20, 20ms}));
  CHECK(a->rate_limit().write_limit() == 20);
  drain_ready(io);
  CHECK(b->input().size() == 1120);
  manual_clock::advance(10ms);
  drain_ready(io);
  CHECK(b->input().size() == 1120);  // half a tick: nothing
  manual_clock::advance(10ms);
  drain_ready(io);
  CHECK(b->input().size() == 1130);

  // Remove: everything left goes at once.
  a->rate_limit().clear();
  CHECK_FALSE(a->rate_limit().config());
  drain_ready(io);
  CHECK(b->input().size() == 100000);
  CHECK(a->enabled() == direction::write);
}

TEST_CASE("rate limit: a group shares its bucket, with a minimum share (manual clock)",
          "[rate_limit][pair][group]") {
  asio::io_context io;
  std::error_code ec;
  auto g = manual_group::create(io.get_executor(), rate_limit_config{1000, 1000, 100, 100, 10ms}, ec);
  REQUIRE(g);
  CHECK(g->min_share() == 64);
  auto [a1, b1] = bufev::make_pair<pbev>(io.get_executor());
  auto [a2, b2] = bufev::make_pair<pbev>(io.get_executor());
  b1->enable(direction::read);
  b2->enable(direction::read);
  REQUIRE_FALSE(a1->rate_limit().add_to_group(g));
  REQUIRE_FALSE(a2->rate_limit().add_to_group(g));
  REQUIRE_FALSE(a2->rate_limit().add_to_group(g));  // again: no-op
  CHECK(g->size() == 2);
  CHECK(a1->rate_limit().group() == g);

  REQUIRE_FALSE(a1->write(bytes(1000)));
  REQUIRE_FALSE(a2->write(bytes(1000)));
  drain_ready(io);
  // a1: share max(100 / 2, 64) = 64 -> bucket 36; a2: max(36 / 2, 64) = 64 ->
  // bucket -28, every member suspended.
  CHECK(b1->input().size() == 64);
  CHECK(b2->input().size() == 64);
  CHECK(g->write_limit() == -28);
  CHECK(g->suspended(direction::write));
  CHECK(a1->rate_limit().suspended(direction::write));
  CHECK(a2->rate_limit().suspended(direction::write));
  CHECK(a1->enabled() == direction::write);
  CHECK(g->total_written() == 128);
  CHECK(g->total_read() == 0);

  manual_clock::advance(10ms);  // -28 + 100 = 72 >= min share: everyone resumes
  drain_ready(io);
  CHECK(b1->input().size() == 128);
  CHECK(b2->input().size() == 128);
  CHECK(g->write_limit() == -56);
  CHECK(g->total_written() == 256);

  g->reset_totals();
  CHECK(g->total_written() == 0);
  CHECK(g->total_read() == 0);

  // Runtime change of the group: a larger rate.
  REQUIRE_FALSE(g->set_config(rate_limit_config{1000, 1000, 1000, 1000, 10ms}));
  manual_clock::advance(10ms);  // -56 + 1000 = 944: 472 each
  drain_ready(io);
  CHECK(b1->input().size() + b2->input().size() > 256 + 900);
  CHECK(g->total_written() == b1->input().size() + b2->input().size() - 256);

  // Leaving the group lifts its limit; closing a member removes it.
  a2->rate_limit().remove_from_group();
  CHECK(g->size() == 1);
  CHECK_FALSE(a2->rate_limit().group());
  CHECK_FALSE(a2->rate_limit().suspended(direction::write));
  drain_ready(io);
  CHECK(b2->input().size() == 1000);
  a1->close();
  CHECK(g->size() == 0);
}

TEST_CASE("rate limit: own bucket and group bucket together, members keep the group alive",
          "[rate_limit][pair][group]") {
  asio::io_context io;
  std::error_code ec;
  std::weak_ptr<manual_group> weak;
  auto [a, b] = bufev::make_pair<pbev>(io.get_executor());
  b->enable(direction::read);
  {
    auto g = manual_group::create(io.get_executor(), rate_limit_config{10, 10, 500, 500, 10ms}, ec);
    REQUIRE(g);
    weak = g;
    REQUIRE_FALSE(a->rate_limit().add_to_group(g));
  }
  REQUIRE_FALSE(weak.expired());
  REQUIRE_FALSE(a->rate_limit().set(rate_limit_config{10, 10, 30, 30, 10ms}));
  REQUIRE_FALSE(a->write(bytes(100)));
  drain_ready(io);
  CHECK(b->input().size() == 30);  // min(own 30, group share 500)
  CHECK(a->rate_limit().max_to_write() == 0);
  manual_clock::advance(10ms);
  drain_ready(io);
  CHECK(b->input().size() == 60);
  CHECK(weak.lock()->total_written() == 60);
  a.reset();  // frees the bufferevent: it leaves the group, the group goes
  drain_ready(io);
  CHECK(weak.expired());
}

#endif  // !ASIO_HAS_IO_URING

// ---- real sockets -------------------------------------------------------------

namespace {

constexpr auto tick = 50ms;
constexpr std::size_t per_tick = (std::size_t(1) << 20) / 20;  // 1 MiB/s in 50 ms ticks
constexpr double configured_rate = double(per_tick) / std::chrono::duration<double>(tick).count();

template <class Bev>
struct counted_reader {
  bufferevent_ptr<Bev> bev;
  std::size_t got = 0;
  void start() {
    bev->setcb([this](Bev& b) { got += b.input().size(); (void)b.input().drain(b.input().size()); },
               nullptr, nullptr);
    REQUIRE_FALSE(bev->enable(direction::read));
  }
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

TEMPLATE_TEST_CASE("rate limit: measured socket rates are within 10% of the configured rate",
                   "[rate_limit][sockets][slow]", readiness, completion) {
  using bev_t = typename TestType::template bev<rate_limited>;
  asio::io_context io;
  const rate_limit_config cfg{per_tick, per_tick, per_tick, per_tick, tick};
  // Connection 1 limits the writer, connection 2 the reader; both run at once.
  auto [s1, r1] = socket_pair(io);
  auto [s2, r2] = socket_pair(io);
  auto writer = make_socket_bufferevent<bev_t>(std::move(s1));
  counted_reader<bev_t> sink1{make_socket_bufferevent<bev_t>(std::move(r1))};
  auto source = make_socket_bufferevent<bev_t>(std::move(s2));
  counted_reader<bev_t> reader{make_socket_bufferevent<bev_t>(std::move(r2))};
  REQUIRE_FALSE(writer->rate_limit().set(cfg));
  REQUIRE_FALSE(reader.bev->rate_limit().set(cfg));

  // The first bucket goes at once; then 40 ticks: 2 s.
  const std::size_t total = per_tick * 41;
  const std::string data = bytes(total);
  sink1.start();
  reader.start();
  const auto t0 = std::chrono::steady_clock::now();
  REQUIRE_FALSE(writer->write(data));
  REQUIRE_FALSE(source->write(data));
  double t_write = 0, t_read = 0;
  REQUIRE(run_until(io, [&] {
    if (!t_write && sink1.got == total) t_write = seconds_since(t0);
    if (!t_read && reader.got == total) t_read = seconds_since(t0);
    return t_write && t_read;
  }, 10s));
  const double write_rate = double(total - per_tick) / t_write;
  const double read_rate = double(total - per_tick) / t_read;
  INFO("configured " << configured_rate << " B/s, write " << write_rate << " B/s, read " << read_rate << " B/s");
  CHECK(write_rate > configured_rate * 0.9);
  CHECK(write_rate < configured_rate * 1.1);
  CHECK(read_rate > configured_rate * 0.9);
  CHECK(read_rate < configured_rate * 1.1);
  CHECK(writer->enabled() == direction::write);
  CHECK(reader.bev->enabled() == (direction::read | direction::write));
}

TEMPLATE_TEST_CASE("rate limit: a group of 4 shares fairly and holds the group rate",
                   "[rate_limit][sockets][group][slow]", readiness, completion) {
  using bev_t = typename TestType::template bev<rate_limited>;
  asio::io_context io;
  std::error_code ec;
  auto group = rate_limit_group::create(io.get_executor(), rate_limit_config{per_tick, per_tick, per_tick, per_tick, tick}, ec);
  REQUIRE(group);
  constexpr int n = 4;
  std::vector<bufferevent_ptr<bev_t>> writers;
  std::vector<std::unique_ptr<counted_reader<bev_t>>> readers;
  const std::size_t each = per_tick * 41;  // nobody runs dry within the test
  const std::string data = bytes(each);
  for (int i = 0; i < n; ++i) {
    auto [s, r] = socket_pair(io);
    writers.push_back(make_socket_bufferevent<bev_t>(std::move(s)));
    readers.push_back(std::make_unique<counted_reader<bev_t>>(counted_reader<bev_t>{make_socket_bufferevent<bev_t>(std::move(r))}));
    REQUIRE_FALSE(writers.back()->rate_limit().add_to_group(group));
    readers.back()->start();
  }
  CHECK(group->size() == n);
  const auto t0 = std::chrono::steady_clock::now();
  for (auto& w : writers) REQUIRE_FALSE(w->write(data));
  // The first bucket goes at once; then 40 ticks: 2 s for the group.
  const std::size_t target = per_tick * 41;
  double t_done = 0;
  REQUIRE(run_until(io, [&] {
    if (group->total_written() >= target) t_done = seconds_since(t0);
    return t_done != 0;
  }, 10s));
  const double group_rate = double(group->total_written() - per_tick) / t_done;
  std::vector<double> sent;
  std::uint64_t sum = 0;
  for (auto& w : writers) {
    sent.push_back(double(each - w->output().size()));
    sum += each - w->output().size();
  }
  CHECK(sum == group->total_written());
  const double mean = double(sum) / n;
  INFO("group " << group_rate << " B/s of " << configured_rate << "; per member " << sent[0] << " " << sent[1]
                << " " << sent[2] << " " << sent[3]);
  CHECK(group_rate > configured_rate * 0.9);
  CHECK(group_rate < configured_rate * 1.1);
  for (double s : sent) {
    CHECK(s > mean * 0.75);
    CHECK(s < mean * 1.25);
  }
  CHECK(group->total_read() == 0);
  group->reset_totals();
  CHECK(group->total_written() == 0);
  for (auto& w : writers) CHECK(w->enabled() == direction::write);
}

TEMPLATE_TEST_CASE("rate limit: removing the limit on a socket at run time lets the rest through",
                   "[rate_limit][sockets]", readiness, completion) {
  using bev_t = typename TestType::template bev<rate_limited>;
  asio::io_context io;
  auto [s, r] = socket_pair(io);
  auto writer = make_socket_bufferevent<bev_t>(std::move(s));
  counted_reader<bev_t> sink{make_socket_bufferevent<bev_t>(std::move(r))};
  // 1 KiB per 10 ms: 1 MiB would take ten seconds.
  REQUIRE_FALSE(writer->rate_limit().set(rate_limit_config{1, 1, 1024, 1024, 10ms}));
  sink.start();
  const std::size_t total = std::size_t(1) << 20;
  REQUIRE_FALSE(writer->write(bytes(total)));
  REQUIRE(run_until(io, [&] { return sink.got >= 3 * 1024; }));
  CHECK(sink.got < total / 4);
  CHECK((writer->rate_limit().suspended(direction::write) || writer->rate_limit().write_limit() > 0));
  // Raise: 1 MiB per tick.
  REQUIRE_FALSE(writer->rate_limit().set(rate_limit_config{1, 1, total, total, 10ms}));
  REQUIRE(run_until(io, [&] { return sink.got >= total / 2 || writer->output().size() < total / 2; }, 5s));
  // Remove.
  writer->rate_limit().clear();
  CHECK_FALSE(writer->rate_limit().suspended(direction::write));
  REQUIRE(run_until(io, [&] { return sink.got == total; }, 5s));
  CHECK(writer->output().empty());
}
