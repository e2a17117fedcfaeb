// Locking policies across threads, and timeouts on a manual clock.
#include <bufev/bufev.hpp>

#include <atomic>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>

#include "support/catch.hpp"
#include "support/drive.hpp"

using namespace bufev;
using bufev::test::drain_ready;
using bufev::test::run_until;

namespace {

// Two threads, two bufferevents that write into each other from their
// callbacks (libevent issues 1361, 1670: lock-order deadlock).
template <class Bev>
void cross_thread_ping_pong() {
  asio::io_context io1, io2;
  auto p1 = bufev::make_pair<Bev>(io1.get_executor());
  auto p2 = bufev::make_pair<Bev>(io2.get_executor());
  Bev& x = *p1.first;
  Bev& y = *p2.first;
  constexpr std::size_t target = 32 * 1024 * 1024;
  std::atomic<std::size_t> moved1{0}, moved2{0};
  std::atomic<bool> done{false};
  std::promise<void> finished_promise;
  std::future<void> finished = finished_promise.get_future();
  // x's partner forwards what x sent into y (another thread's bufferevent), and
  // y's partner forwards into x: each callback writes into the other.
  auto forward = [&](Bev& from, Bev& to, std::atomic<std::size_t>& moved) {
    char buf[512];
    std::size_t n;
    while ((n = from.read(buf, sizeof buf)) > 0) {
      moved += n;
      if (moved1 + moved2 < target) to.write(buf, n);
      else if (!done.exchange(true)) finished_promise.set_value();  // once, from either thread
    }
  };
  p1.second->setcb([&](Bev& b) { forward(b, y, moved1); }, nullptr, nullptr);
  p2.second->setcb([&](Bev& b) { forward(b, x, moved2); }, nullptr, nullptr);
  p1.second->enable(direction::read);
  p2.second->enable(direction::read);
  const std::string seed(1024, 's');
  x.write(seed);
  y.write(seed);

  auto g1 = asio::make_work_guard(io1);
  auto g2 = asio::make_work_guard(io2);
  std::thread t1([&] { io1.run(); });
  std::thread t2([&] { io2.run(); });
  const bool ok = finished.wait_for(std::chrono::seconds(60)) == std::future_status::ready;
  if (!ok) {
    // A deadlock cannot be undone; report and leave without hanging CI.
    std::fprintf(stderr, "cross-thread ping-pong deadlocked (moved %zu)\n", moved1 + moved2.load());
    std::_Exit(1);
  }
  g1.reset();
  g2.reset();
  io1.stop();
  io2.stop();
  t1.join();
  t2.join();
  CHECK(moved1 + moved2 >= target);
  CHECK(moved1 > 0);
  CHECK(moved2 > 0);
  // Tear down on this thread, io contexts stopped.
  p1 = {};
  p2 = {};
}

}  // namespace

TEST_CASE("rule 11: two threads writing into each other's bufferevents never deadlock",
          "[core][rule11][threads]") {
  SECTION("locked: callbacks run with the lock held") {
    cross_thread_ping_pong<pair_bufferevent<locked>>();
  }
  SECTION("locked_unlock_callbacks") {
    cross_thread_ping_pong<pair_bufferevent<locked_unlock_callbacks>>();
  }
}

TEST_CASE("rule 11: lock() and unlock() are recursive and guard the pair", "[core][rule11]") {
  asio::io_context io;
  auto p = bufev::make_pair<pair_bufferevent<locked>>(io.get_executor());
  auto& a = *p.first;
  auto& b = *p.second;
  a.lock();
  a.lock();
  CHECK(b.try_lock());  // one mutex for both sides; recursive for this thread
  b.unlock();
  a.unlock();
  a.unlock();
  std::atomic<bool> got{false};
  std::thread t([&] {
    got = b.try_lock();
    if (got) b.unlock();
  });
  t.join();
  CHECK(got);  // balanced: free again
}

namespace {
using timed_pair = pair_bufferevent<manual_timers>;
struct timeout_fixture {
  asio::io_context io;
  std::pair<bufferevent_ptr<timed_pair>, bufferevent_ptr<timed_pair>> p =
      bufev::make_pair<timed_pair>(io.get_executor());
  timed_pair& a = *p.first;
  timed_pair& b = *p.second;
  std::vector<events> ea, eb;
  timeout_fixture() {
    a.setcb(nullptr, nullptr, [this](timed_pair&, events e, std::error_code ec) {
      ea.push_back(e);
      CHECK(ec == std::errc::timed_out);
    });
    b.setcb(nullptr, nullptr, [this](timed_pair&, events e, std::error_code ec) {
      eb.push_back(e);
      CHECK(ec == std::errc::timed_out);
    });
  }
  void advance(std::chrono::milliseconds d) {
    manual_clock::advance(d);
    drain_ready(io);
  }
};
using namespace std::chrono_literals;
}  // namespace

TEST_CASE("rule 8: read timeout fires once, only while reading is enabled and not suspended",
          "[core][rule8]") {
  timeout_fixture f;
  f.b.set_timeouts(5s, std::nullopt);
  f.advance(10s);
  CHECK(f.eb.empty());  // reading disabled: no timeout runs
  f.b.enable(direction::read);
  f.advance(4s);
  CHECK(f.eb.empty());
  f.a.write("x", 1);  // a successful read restarts it
  f.advance(10ms);
  f.advance(4s);
  CHECK(f.eb.empty());
  f.advance(1s);
  CHECK(f.eb == std::vector<events>{events::timeout | events::reading});
  CHECK(f.b.enabled() == direction::write);  // the direction is disabled
  f.advance(60s);
  CHECK(f.eb.size() == 1);  // exactly once

  // Suspended by the high watermark: no read timeout.
  f.eb.clear();
  REQUIRE_FALSE(f.b.setwatermark(direction::read, 0, 4));
  f.a.write("12345678", 8);
  f.b.enable(direction::read);
  f.advance(10ms);
  CHECK(f.b.input().size() == 4);
  f.advance(60s);
  CHECK(f.eb.empty());
  // Draining resumes reading, and with it the timeout.
  f.b.input().drain(4);
  f.advance(10ms);
  CHECK(f.b.input().size() == 4);
  f.b.input().drain(4);
  f.advance(10ms);
  f.advance(6s);
  CHECK(f.eb == std::vector<events>{events::timeout | events::reading});
}

TEST_CASE("rule 8: write timeout runs only while output is pending", "[core][rule8]") {
  timeout_fixture f;
  f.a.set_timeouts(std::nullopt, 5s);
  f.advance(60s);
  CHECK(f.ea.empty());  // write enabled, output empty: nothing
  f.a.write("stuck", 5);  // b's read is disabled: the bytes stay
  f.advance(4s);
  CHECK(f.ea.empty());
  f.advance(2s);
  CHECK(f.ea == std::vector<events>{events::timeout | events::writing});
  CHECK(f.a.enabled() == direction::none);
  f.advance(60s);
  CHECK(f.ea.size() == 1);
  CHECK(f.a.output().size() == 5);  // nothing lost
}

TEST_CASE("rule 8: set_timeouts and enable restart, clearing stops", "[core][rule8]") {
  timeout_fixture f;
  f.b.enable(direction::read);
  f.b.set_timeouts(5s, std::nullopt);
  f.advance(4s);
  f.b.set_timeouts(5s, std::nullopt);  // restart
  f.advance(4s);
  CHECK(f.eb.empty());
  f.b.enable(direction::read);  // restart again
  f.advance(4s);
  CHECK(f.eb.empty());
  f.b.set_timeouts(std::nullopt, std::nullopt);
  f.advance(60s);
  CHECK(f.eb.empty());
  f.b.set_timeouts(1s, std::nullopt);
  f.advance(2s);
  CHECK(f.eb.size() == 1);
}
