// The bufferevent core over the pair transport: spec sections 2 and 3.
#include <bufev/bufev.hpp>

#include <array>
#include <cstring>
#include <functional>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include <asio/io_context.hpp>

#include "support/catch.hpp"
#include "support/data.hpp"
#include "support/drive.hpp"

using namespace bufev;
using bufev::test::drain_ready;
using bufev::test::run_until;
using bufev::test::pattern;
using bufev::test::take_all;

namespace {

using pair_t = pair_bufferevent<>;
using immediate_pair_t = pair_bufferevent<immediate_callbacks>;



struct event_log {
  std::vector<std::pair<events, std::error_code>> items;
  void operator()(pair_t&, events e, std::error_code ec) { items.emplace_back(e, ec); }
};

struct counting_handler {
  int reads = 0;
  std::vector<events> evs;
  void on_read(auto& bev) {
    ++reads;
    bev.input().drain(bev.input().size());
  }
  void on_event(auto&, events e, std::error_code) { evs.push_back(e); }
};

}  // namespace

TEST_CASE("rule 1: new bufferevent: write enabled, read disabled, no marks, no timeouts",
          "[core][rule1]") {
  asio::io_context io;
  auto ab_pair = bufev::make_pair(io.get_executor());
  [[maybe_unused]] auto& a = ab_pair.first;
  [[maybe_unused]] auto& b = ab_pair.second;
  CHECK(a->enabled() == direction::write);
  CHECK(b->enabled() == direction::write);
  CHECK(a->getwatermark(direction::read) == watermark{0, 0});
  CHECK(a->getwatermark(direction::write) == watermark{0, 0});
  CHECK_FALSE(a->read_timeout());
  CHECK_FALSE(a->write_timeout());
  CHECK(a->partner() == b.get());
  CHECK(b->partner() == a.get());

  // Read disabled on b: bytes wait in a's output.
  REQUIRE_FALSE(a->write("hello", 5));
  drain_ready(io);
  CHECK(a->output().size() == 5);
  CHECK(b->input().size() == 0);
  b->enable(direction::read);
  drain_ready(io);
  CHECK(b->input().size() == 5);
  CHECK(a->output().empty());
}

TEST_CASE("rule 1: enabled() never shows internal suspension", "[core][rule1][rule3]") {
  asio::io_context io;
  auto ab_pair = bufev::make_pair(io.get_executor());
  [[maybe_unused]] auto& a = ab_pair.first;
  [[maybe_unused]] auto& b = ab_pair.second;
  REQUIRE_FALSE(b->setwatermark(direction::read, 0, 4));
  b->enable(direction::read);
  a->write("0123456789", 10);
  drain_ready(io);
  CHECK(b->input().size() == 4);  // suspended at the high mark
  CHECK(b->enabled() == (direction::read | direction::write));
}

TEST_CASE("pair: 8333 bytes arrive intact with callbacks and no error", "[core][pair]") {
  asio::io_context io;
  auto ab_pair = bufev::make_pair(io.get_executor());
  [[maybe_unused]] auto& a = ab_pair.first;
  [[maybe_unused]] auto& b = ab_pair.second;
  const std::string data = pattern(8333);
  std::string got;
  int writes = 0, errors = 0;
  a->setcb(nullptr, [&](pair_t& bev) { ++writes; CHECK(bev.output().empty()); },
           [&](pair_t&, events, std::error_code) { ++errors; });
  b->setcb([&](pair_t& bev) { got += take_all(bev); }, nullptr,
           [&](pair_t&, events, std::error_code) { ++errors; });
  b->enable(direction::read);
  REQUIRE_FALSE(a->write(data));
  REQUIRE(run_until(io, [&] { return got.size() == data.size() && writes > 0; }));
  CHECK(got == data);
  CHECK(errors == 0);
}

TEST_CASE("rules 2-4: watermarks 10/20 read and 100 write over 65000 bytes", "[core][pair][rule2]") {
  asio::io_context io;
  auto ab_pair = bufev::make_pair(io.get_executor());
  [[maybe_unused]] auto& a = ab_pair.first;
  [[maybe_unused]] auto& b = ab_pair.second;
  REQUIRE_FALSE(a->setwatermark(direction::write, 100, 0));
  REQUIRE_FALSE(b->setwatermark(direction::read, 10, 20));
  const std::string data = pattern(65000);
  std::string got;
  std::size_t bad_reads = 0, reads = 0, bad_writes = 0, writes = 0;
  b->setcb(
      [&](pair_t& bev) {
        ++reads;
        const std::size_t n = bev.input().size();
        if (n < 10 || n > 20) ++bad_reads;
        got += take_all(bev);
      },
      nullptr, nullptr);
  a->setcb(nullptr,
           [&](pair_t& bev) {
             ++writes;
             if (bev.output().size() > 100) ++bad_writes;
           },
           nullptr);
  b->enable(direction::read);
  REQUIRE_FALSE(a->write(data));
  REQUIRE(run_until(io, [&] { return got.size() == data.size(); }));
  drain_ready(io);
  CHECK(got == data);
  CHECK(reads >= 65000 / 20);
  CHECK(bad_reads == 0);
  CHECK(writes > 0);
  CHECK(bad_writes == 0);
}

TEST_CASE("rule 2: below the read low watermark nothing fires until more data arrives",
          "[core][rule2]") {
  asio::io_context io;
  auto ab_pair = bufev::make_pair(io.get_executor());
  [[maybe_unused]] auto& a = ab_pair.first;
  [[maybe_unused]] auto& b = ab_pair.second;
  REQUIRE_FALSE(b->setwatermark(direction::read, 8, 0));
  int reads = 0;
  b->setcb([&](pair_t&) { ++reads; }, nullptr, nullptr);
  b->enable(direction::read);
  a->write("12345", 5);
  drain_ready(io);
  CHECK(b->input().size() == 5);
  CHECK(reads == 0);
  a->write("678", 3);
  drain_ready(io);
  CHECK(reads == 1);
  CHECK(b->input().size() == 8);
}

TEST_CASE("rule 3: high watermark suspends reading, draining resumes, no spin without drain",
          "[core][rule3]") {
  asio::io_context io;
  auto ab_pair = bufev::make_pair(io.get_executor());
  [[maybe_unused]] auto& a = ab_pair.first;
  [[maybe_unused]] auto& b = ab_pair.second;
  REQUIRE_FALSE(b->setwatermark(direction::read, 0, 16));
  int reads = 0;
  b->setcb([&](pair_t&) { ++reads; }, nullptr, nullptr);  // never drains
  b->enable(direction::read);
  a->write(pattern(100));
  drain_ready(io);
  CHECK(b->input().size() == 16);
  CHECK(a->output().size() == 84);
  const int after_fill = reads;
  CHECK(after_fill == 1);
  // libevent 2.1.9+ re-runs a non-draining callback every loop; bufev does not.
  for (int i = 0; i < 50; ++i) io.poll();
  CHECK(reads == after_fill);
  // Draining below the mark resumes reading by itself.
  REQUIRE_FALSE(b->input().drain(10));
  drain_ready(io);
  CHECK(b->input().size() == 16);
  CHECK(a->output().size() == 74);
  CHECK(reads == after_fill + 1);
  // Raising the mark also resumes.
  REQUIRE_FALSE(b->setwatermark(direction::read, 0, 0));
  drain_ready(io);
  CHECK(b->input().size() == 90);
  CHECK(a->output().empty());
}

TEST_CASE("rule 4: write() never calls back synchronously, write cb when output <= low",
          "[core][rule4]") {
  asio::io_context io;
  auto ab_pair = bufev::make_pair<immediate_pair_t>(io.get_executor());
  [[maybe_unused]] auto& a = ab_pair.first;
  [[maybe_unused]] auto& b = ab_pair.second;
  int writes = 0;
  a->setcb(nullptr, [&](immediate_pair_t& bev) { ++writes; CHECK(bev.output().size() <= 3); },
           nullptr);
  REQUIRE_FALSE(a->setwatermark(direction::write, 3, 0));
  b->enable(direction::read);
  REQUIRE_FALSE(b->setwatermark(direction::read, 0, 4));
  a->write("0123456789", 10);
  CHECK(writes == 0);  // nothing inline, even with immediate callbacks
  drain_ready(io);
  CHECK(b->input().size() == 4);
  CHECK(a->output().size() == 6);
  CHECK(writes == 0);  // 6 > low mark 3
  b->input().drain(4);
  drain_ready(io);
  CHECK(a->output().size() == 2);
  CHECK(writes == 1);
  // A direct append to output() is noticed too (libevent users do this).
  b->setwatermark(direction::read, 0, 0);
  REQUIRE_FALSE(a->output().add("xyz", 3));
  drain_ready(io);
  CHECK(a->output().empty());
  CHECK(b->input().size() == 9);
}

TEST_CASE("rule 5: writability with hysteresis, one notification per change", "[core][rule5]") {
  asio::io_context io;
  auto ab_pair = bufev::make_pair(io.get_executor());
  [[maybe_unused]] auto& a = ab_pair.first;
  [[maybe_unused]] auto& b = ab_pair.second;
  REQUIRE_FALSE(a->setwatermark(direction::write, 10, 20));
  std::vector<bool> changes;
  a->set_writability_cb([&](pair_t&, bool w) { changes.push_back(w); });
  CHECK(a->writable());
  a->write(pattern(15));
  CHECK(a->writable());  // 15 <= high
  a->write(pattern(10));
  CHECK_FALSE(a->writable());  // 25 > high
  a->write(pattern(10));
  drain_ready(io);
  CHECK(changes == std::vector<bool>{false});
  // Drain to 15 (above low): still unwritable.
  REQUIRE_FALSE(b->setwatermark(direction::read, 0, 20));
  b->enable(direction::read);
  drain_ready(io);
  CHECK(a->output().size() == 15);
  CHECK_FALSE(a->writable());
  b->input().drain(20);
  drain_ready(io);
  CHECK(a->output().size() == 0);
  CHECK(a->writable());
  CHECK(changes == std::vector<bool>{false, true});
  // write() itself is never refused: the mark is advice for producers.
  CHECK_FALSE(a->write(pattern(100)));
}

TEST_CASE("rule 6 / pair: closing one side is EOF for the other, its input stays",
          "[core][pair][rule6]") {
  asio::io_context io;
  auto ab_pair = bufev::make_pair(io.get_executor());
  [[maybe_unused]] auto& a = ab_pair.first;
  [[maybe_unused]] auto& b = ab_pair.second;
  std::vector<std::pair<events, std::error_code>> evs;
  b->setcb(nullptr, nullptr, [&](pair_t&, events e, std::error_code ec) { evs.emplace_back(e, ec); });
  b->enable(direction::read);
  a->write("last words", 10);
  drain_ready(io);
  a.reset();
  REQUIRE(run_until(io, [&] { return !evs.empty(); }));
  drain_ready(io);
  REQUIRE(evs.size() == 1);
  CHECK(evs[0].first == (events::reading | events::eof));
  CHECK(b->enabled() == direction::write);  // reading disabled, writing as it was
  CHECK(b->input().size() == 10);           // data already received stays
  CHECK(b->partner() == nullptr);

  // Writing to a side whose partner is gone is an error event, not a silent loss.
  evs.clear();
  b->write("lost?", 5);
  REQUIRE(run_until(io, [&] { return !evs.empty(); }));
  drain_ready(io);
  REQUIRE(evs.size() == 1);
  CHECK(evs[0].first == (events::writing | events::error));
  CHECK(evs[0].second == errc::partner_closed);
  CHECK(b->output().size() == 5);  // the bytes are still there
  CHECK(b->enabled() == direction::none);
}

TEST_CASE("pair: data moves segments, not bytes", "[core][pair]") {
  asio::io_context io;
  auto ab_pair = bufev::make_pair(io.get_executor());
  [[maybe_unused]] auto& a = ab_pair.first;
  [[maybe_unused]] auto& b = ab_pair.second;
  b->enable(direction::read);
  const std::string big = pattern(64 * 1024);
  a->write(big);
  std::array<asio::const_buffer, 8> before{};
  const std::size_t n = a->output().peek(evbuffer::npos, before);
  REQUIRE(n >= 1);
  drain_ready(io);
  std::array<asio::const_buffer, 8> after{};
  REQUIRE(b->input().peek(evbuffer::npos, after) == n);
  for (std::size_t i = 0; i < n; ++i) CHECK(after[i].data() == before[i].data());
  CHECK(take_all(*b) == big);
}

TEST_CASE("rule 12: trigger honours watermarks unless told, sync unless deferred",
          "[core][rule12]") {
  asio::io_context io;
  SECTION("immediate policy: synchronous") {
    auto ab_pair = bufev::make_pair<immediate_pair_t>(io.get_executor());
    [[maybe_unused]] auto& a = ab_pair.first;
    [[maybe_unused]] auto& b = ab_pair.second;
    int reads = 0, writes = 0;
    std::vector<events> evs;
    a->setcb([&](immediate_pair_t&) { ++reads; }, [&](immediate_pair_t&) { ++writes; },
             [&](immediate_pair_t&, events e, std::error_code) { evs.push_back(e); });
    REQUIRE_FALSE(a->setwatermark(direction::read, 5, 0));
    a->trigger(direction::read);  // input 0 < low 5
    CHECK(reads == 0);
    a->trigger(direction::read, {.ignore_watermarks = true});
    CHECK(reads == 1);
    a->trigger(direction::write);  // output 0 <= low 0
    CHECK(writes == 1);
    a->trigger(direction::read, {.ignore_watermarks = true, .defer = true});
    CHECK(reads == 1);
    drain_ready(io);
    CHECK(reads == 2);
    a->trigger_event(events::eof | events::reading);
    REQUIRE(evs.size() == 1);
    CHECK(evs[0] == (events::eof | events::reading));
  }
  SECTION("deferred policy: queued, then run once") {
    auto ab_pair = bufev::make_pair(io.get_executor());
    [[maybe_unused]] auto& a = ab_pair.first;
    [[maybe_unused]] auto& b = ab_pair.second;
    int reads = 0;
    a->setcb([&](pair_t&) { ++reads; }, nullptr, nullptr);
    a->trigger(direction::read, {.ignore_watermarks = true});
    a->trigger(direction::read, {.ignore_watermarks = true});
    CHECK(reads == 0);
    drain_ready(io);
    CHECK(reads == 1);  // coalesced
  }
}

TEST_CASE("rule 9: deferred callbacks coalesce and run in order connected, read, write, events",
          "[core][rule9]") {
  asio::io_context io;
  auto ab_pair = bufev::make_pair(io.get_executor());
  [[maybe_unused]] auto& a = ab_pair.first;
  [[maybe_unused]] auto& b = ab_pair.second;
  std::vector<std::string> order;
  events seen = events::none;
  a->setcb([&](pair_t&) { order.push_back("read"); }, [&](pair_t&) { order.push_back("write"); },
           [&](pair_t&, events e, std::error_code) {
             order.push_back(any(e, events::connected) ? "connected" : "event");
             if (!any(e, events::connected)) seen = e;
           });
  a->trigger_event(events::timeout | events::reading);
  a->trigger(direction::write);
  a->trigger_event(events::eof | events::reading);
  a->trigger(direction::read, {.ignore_watermarks = true});
  a->trigger_event(events::connected);
  CHECK(order.empty());
  drain_ready(io);
  CHECK(order == std::vector<std::string>{"connected", "read", "write", "event"});
  CHECK(seen == (events::timeout | events::eof | events::reading));

  // Clearing a callback suppresses a pending call.
  order.clear();
  a->trigger(direction::read, {.ignore_watermarks = true});
  a->setcb(nullptr, nullptr, nullptr);
  drain_ready(io);
  CHECK(order.empty());
}

TEST_CASE("rule 13: flush modes on a pair", "[core][rule13][pair]") {
  asio::io_context io;
  auto ab_pair = bufev::make_pair(io.get_executor());
  [[maybe_unused]] auto& a = ab_pair.first;
  [[maybe_unused]] auto& b = ab_pair.second;
  std::vector<events> evs;
  b->setcb(nullptr, nullptr, [&](pair_t&, events e, std::error_code) { evs.push_back(e); });
  a->write("abc", 3);  // b's read is disabled: the bytes wait
  drain_ready(io);
  CHECK(a->flush(direction::write, flush_mode::normal) == 0);
  CHECK(b->input().size() == 0);
  CHECK(a->flush(direction::write, flush_mode::flush) == 1);  // ignores disabled read
  CHECK(b->input().size() == 3);
  CHECK(a->flush(direction::write, flush_mode::flush) == 0);  // nothing left
  // read direction pulls from the partner
  b->write("xy", 2);
  CHECK(a->flush(direction::read, flush_mode::flush) == 1);
  CHECK(a->input().size() == 2);
  // finished: moves and delivers EOF to the partner
  a->write("end", 3);
  CHECK(a->flush(direction::write, flush_mode::finished) == 1);
  drain_ready(io);
  CHECK(b->input().size() == 6);
  REQUIRE(evs.size() == 1);
  CHECK(evs[0] == (events::reading | events::eof));
}

TEST_CASE("rule 10: free from inside a callback, no callback after close", "[core][rule10]") {
  asio::io_context io;
  SECTION("destroy own bufferevent inside its read callback") {
    auto ab_pair = bufev::make_pair(io.get_executor());
    [[maybe_unused]] auto& a = ab_pair.first;
    [[maybe_unused]] auto& b = ab_pair.second;
    int reads = 0;
    b->setcb(
        [&](pair_t&) {
          ++reads;
          b.reset();  // frees the bufferevent whose callback is running
        },
        nullptr, nullptr);
    b->enable(direction::read);
    a->write("1", 1);
    drain_ready(io);
    a->write("2", 1);
    drain_ready(io);
    CHECK(reads == 1);
    CHECK_FALSE(b);
  }
  SECTION("pending deferred callbacks never run after close") {
    auto ab_pair = bufev::make_pair(io.get_executor());
    [[maybe_unused]] auto& a = ab_pair.first;
    [[maybe_unused]] auto& b = ab_pair.second;
    int calls = 0;
    a->setcb([&](pair_t&) { ++calls; }, [&](pair_t&) { ++calls; },
             [&](pair_t&, events, std::error_code) { ++calls; });
    a->trigger(direction::read | direction::write, {.ignore_watermarks = true});
    a->trigger_event(events::error);
    a->close();
    CHECK(a->closed());
    drain_ready(io);
    CHECK(calls == 0);
    CHECK(a->write("x", 1) == errc::closed);
  }
  SECTION("immediate callbacks: writability changes never call back inside write()") {
    auto ab_pair = bufev::make_pair<immediate_pair_t>(io.get_executor());
    auto& a = ab_pair.first;
    REQUIRE_FALSE(a->setwatermark(direction::write, 1, 4));
    int calls = 0;
    a->set_writability_cb([&](immediate_pair_t&, bool w) {
      ++calls;
      if (!w) a.reset();  // freeing from this callback is safe
    });
    a.get()->write("123456", 6);
    CHECK(calls == 0);
    drain_ready(io);
    CHECK(calls == 1);
    CHECK_FALSE(a);
  }
  SECTION("immediate callbacks: destroy the partner from inside a callback") {
    auto ab_pair = bufev::make_pair<immediate_pair_t>(io.get_executor());
    [[maybe_unused]] auto& a = ab_pair.first;
    [[maybe_unused]] auto& b = ab_pair.second;
    int reads = 0;
    b->setcb(
        [&](immediate_pair_t&) {
          ++reads;
          a.reset();
        },
        nullptr, nullptr);
    b->enable(direction::read);
    a->write("abc", 3);
    drain_ready(io);
    CHECK(reads == 1);
    CHECK_FALSE(a);
    CHECK(b->partner() == nullptr);
  }
}

TEST_CASE("pair fault injection: short transfers, failing Nth transfer, reset",
          "[core][pair][faults]") {
  asio::io_context io;
  SECTION("short transfers") {
    auto ab_pair = bufev::make_pair(io.get_executor(), pair_faults{.max_transfer = 3});
    [[maybe_unused]] auto& a = ab_pair.first;
    [[maybe_unused]] auto& b = ab_pair.second;
    std::vector<std::size_t> sizes;
    b->setcb([&](pair_t& bev) { sizes.push_back(take_all(bev).size()); }, nullptr, nullptr);
    b->enable(direction::read);
    a->write(pattern(10));
    drain_ready(io);
    CHECK(sizes == std::vector<std::size_t>{3, 3, 3, 1});
  }
  SECTION("the 2nd transfer fails") {
    pair_faults f;
    f.fail_transfer = 2;
    auto ab_pair = bufev::make_pair(io.get_executor(), f);
    [[maybe_unused]] auto& a = ab_pair.first;
    [[maybe_unused]] auto& b = ab_pair.second;
    std::vector<events> ea, eb;
    a->setcb(nullptr, nullptr, [&](pair_t&, events e, std::error_code ec) {
      ea.push_back(e);
      CHECK(ec == errc::injected_fault);
    });
    b->setcb(nullptr, nullptr, [&](pair_t&, events e, std::error_code) { eb.push_back(e); });
    b->enable(direction::read);
    a->write("one", 3);
    drain_ready(io);
    a->write("two", 3);
    drain_ready(io);
    CHECK(b->input().size() == 3);
    CHECK(ea == std::vector<events>{events::writing | events::error});
    CHECK(eb == std::vector<events>{events::reading | events::error});
    CHECK(a->output().size() == 3);  // not lost: still in the output
  }
  SECTION("reset") {
    auto ab_pair = bufev::make_pair(io.get_executor());
    [[maybe_unused]] auto& a = ab_pair.first;
    [[maybe_unused]] auto& b = ab_pair.second;
    std::vector<std::error_code> ea, eb;
    a->setcb(nullptr, nullptr, [&](pair_t&, events, std::error_code ec) { ea.push_back(ec); });
    b->setcb(nullptr, nullptr, [&](pair_t&, events, std::error_code ec) { eb.push_back(ec); });
    a->write("pending", 7);
    a->transport().inject_reset(*a);
    drain_ready(io);
    CHECK(ea == std::vector<std::error_code>{make_error_code(errc::connection_reset)});
    CHECK(eb == std::vector<std::error_code>{make_error_code(errc::connection_reset)});
    CHECK(a->output().empty());
    CHECK(a->partner() == nullptr);
  }
}

TEST_CASE("rule 9: deep ping-pong through two pairs does not grow the stack", "[core][rule9]") {
  // b1 forwards to a2, b2 forwards to a1: one token circles a1 -> b1 -> a2 -> b2.
  auto ping_pong = [](auto tag, std::size_t rounds) {
    using bev_t = typename decltype(tag)::type;
    asio::io_context io;
    auto a1b1_pair = bufev::make_pair<bev_t>(io.get_executor());
    [[maybe_unused]] auto& a1 = a1b1_pair.first;
    [[maybe_unused]] auto& b1 = a1b1_pair.second;
    auto a2b2_pair = bufev::make_pair<bev_t>(io.get_executor());
    [[maybe_unused]] auto& a2 = a2b2_pair.first;
    [[maybe_unused]] auto& b2 = a2b2_pair.second;
    std::size_t count = 0;
    std::uintptr_t lo = UINTPTR_MAX, hi = 0;
    auto forward = [&](bev_t& from, bev_t& to) {
      char c;
      while (from.read(&c, 1) == 1) {
        volatile char probe = c;
        const auto sp = reinterpret_cast<std::uintptr_t>(&probe);
        lo = std::min(lo, sp);
        hi = std::max(hi, sp);
        if (++count < rounds) to.write(&c, 1);
      }
    };
    b1->setcb([&](bev_t& b) { forward(b, *a2); }, nullptr, nullptr);
    b2->setcb([&](bev_t& b) { forward(b, *a1); }, nullptr, nullptr);
    b1->enable(direction::read);
    b2->enable(direction::read);
    a1->write("x", 1);
    io.run();
    return std::pair{count, hi - lo};
  };
  SECTION("deferred callbacks, 1,000,000 rounds") {
    auto [count, depth] = ping_pong(std::type_identity<pair_t>{}, 1'000'000);
    CHECK(count == 1'000'000);
    CHECK(depth < 16 * 1024);
  }
  SECTION("immediate callbacks: pair transfers are still posted, so the stack is flat too") {
    auto [count, depth] = ping_pong(std::type_identity<immediate_pair_t>{}, 100'000);
    CHECK(count == 100'000);
    CHECK(depth < 16 * 1024);
  }
}

TEST_CASE("immediate callbacks run inline: trigger from a callback recurses", "[core][rule9]") {
  asio::io_context io;
  auto ab_pair = bufev::make_pair<immediate_pair_t>(io.get_executor());
  [[maybe_unused]] auto& a = ab_pair.first;
  [[maybe_unused]] auto& b = ab_pair.second;
  int depth = 0, max_depth = 0;
  a->setcb(
      [&](immediate_pair_t& bev) {
        ++depth;
        max_depth = std::max(max_depth, depth);
        if (max_depth < 5) bev.trigger(direction::read, {.ignore_watermarks = true});
        --depth;
      },
      nullptr, nullptr);
  a->trigger(direction::read, {.ignore_watermarks = true});
  CHECK(max_depth == 5);  // documented: inline, the user's recursion is the user's
}

TEST_CASE("backpressure: a fast producer into a slow consumer stays bounded", "[core][rule5]") {
  asio::io_context io;
  auto ab_pair = bufev::make_pair(io.get_executor());
  [[maybe_unused]] auto& a = ab_pair.first;
  [[maybe_unused]] auto& b = ab_pair.second;
  constexpr std::size_t write_low = 16 * 1024, write_high = 64 * 1024, read_high = 32 * 1024;
  constexpr std::size_t chunk = 4096, total = 4 * 1024 * 1024;
  REQUIRE_FALSE(a->setwatermark(direction::write, write_low, write_high));
  REQUIRE_FALSE(b->setwatermark(direction::read, 0, read_high));
  std::size_t produced = 0, consumed = 0, peak = 0;
  const std::string block = pattern(chunk);
  auto produce = [&](pair_t& bev) {
    while (bev.writable() && produced < total) {
      bev.write(block);
      produced += chunk;
      peak = std::max(peak, bev.output().size() + b->input().size());
    }
  };
  a->set_writability_cb([&](pair_t& bev, bool w) {
    if (w) produce(bev);
  });
  b->enable(direction::read);
  // The consumer drains 1 KiB per turn of the loop, much slower than the producer.
  std::function<void()> slow_drain = [&] {
    const std::size_t n = std::min<std::size_t>(1024, b->input().size());
    b->input().drain(n);
    consumed += n;
    peak = std::max(peak, a->output().size() + b->input().size());
    if (consumed < total) asio::post(io, slow_drain);
  };
  produce(*a);
  asio::post(io, slow_drain);
  REQUIRE(run_until(io, [&] { return consumed == total; }, std::chrono::seconds(60)));
  CHECK(produced == total);
  CHECK(peak <= write_high + read_high + chunk);
}

TEST_CASE("handler objects: members found by concepts, called directly", "[core][handler]") {
  using bev_t = pair_bufferevent<handler<counting_handler>>;
  static_assert(bufferevent_handler<counting_handler, bev_t>);
  static_assert(sizeof(bev_t) < sizeof(pair_t));  // no std::function storage
  asio::io_context io;
  auto ab_pair = bufev::make_pair<bev_t>(io.get_executor());
  [[maybe_unused]] auto& a = ab_pair.first;
  [[maybe_unused]] auto& b = ab_pair.second;
  b->enable(direction::read);
  a->write("hi", 2);
  drain_ready(io);
  CHECK(b->handler().reads == 1);
  a.reset();
  drain_ready(io);
  CHECK(b->handler().evs == std::vector<events>{events::reading | events::eof});
}

TEST_CASE("runtime watermarks refuse high below low, limits refuse zero", "[core][errors]") {
  asio::io_context io;
  auto ab_pair = bufev::make_pair(io.get_executor());
  [[maybe_unused]] auto& a = ab_pair.first;
  [[maybe_unused]] auto& b = ab_pair.second;
  CHECK(a->setwatermark(direction::read, 10, 5) == errc::invalid_watermarks);
  CHECK(a->getwatermark(direction::read) == watermark{0, 0});
  CHECK(a->set_max_single_read(0) == errc::invalid_argument);
  CHECK(a->set_max_single_write(0) == errc::invalid_argument);
  CHECK_FALSE(a->set_max_single_read(100));
  CHECK(a->max_single_read() == 100);
}

TEST_CASE("max single read/write cap each transfer", "[core][rule14]") {
  asio::io_context io;
  auto ab_pair = bufev::make_pair(io.get_executor());
  [[maybe_unused]] auto& a = ab_pair.first;
  [[maybe_unused]] auto& b = ab_pair.second;
  REQUIRE_FALSE(b->set_max_single_read(7));
  std::vector<std::size_t> sizes;
  b->setcb([&](pair_t& bev) { sizes.push_back(take_all(bev).size()); }, nullptr, nullptr);
  b->enable(direction::read);
  a->write(pattern(20));
  drain_ready(io);
  CHECK(sizes == std::vector<std::size_t>{7, 7, 6});
}

TEST_CASE("fixed watermarks and other buffer types compose with the pair", "[core][policies]") {
  asio::io_context io;
  using fixed_t = pair_bufferevent<fixed_watermarks<2, 8>, buffers<flat_buffer>>;
  static_assert(std::is_same_v<fixed_t::input_buffer_type, flat_buffer>);
  auto ab_pair = bufev::make_pair<fixed_t>(io.get_executor());
  [[maybe_unused]] auto& a = ab_pair.first;
  [[maybe_unused]] auto& b = ab_pair.second;
  CHECK(b->getwatermark(direction::read) == watermark{2, 8});
  std::string got;
  b->setcb([&](fixed_t& bev) { got += take_all(bev); }, nullptr, nullptr);
  b->enable(direction::read);
  a->write(pattern(30));
  REQUIRE(run_until(io, [&] { return got.size() == 30; }));
  CHECK(got == pattern(30));

  using static_t = pair_bufferevent<buffers<static_buffer<64>>>;
  auto cd_pair = bufev::make_pair<static_t>(io.get_executor());
  [[maybe_unused]] auto& c = cd_pair.first;
  [[maybe_unused]] auto& d = cd_pair.second;
  d->enable(direction::read);
  CHECK_FALSE(c->write(pattern(64)));
  CHECK(c->write("x", 1) == errc::buffer_full);
  drain_ready(io);
  CHECK(d->input().size() == 64);
}

namespace {
struct empty_handler {
  void on_read(auto&) {}
};
}  // namespace

TEST_CASE("empty policies take no space", "[core][policies]") {
  using runtime_marks = pair_bufferevent<handler<empty_handler>>;
  using fixed_marks = pair_bufferevent<handler<empty_handler>, fixed_watermarks<0, 0>>;
  // Four size_t of runtime watermarks, nothing for fixed ones.
  STATIC_REQUIRE(sizeof(runtime_marks) - sizeof(fixed_marks) >= 4 * sizeof(std::size_t));
  // A handler object with no state adds nothing; run-time callbacks cost 16 bytes each.
  STATIC_REQUIRE(sizeof(detail::callback<void(pair_t&)>) == 2 * sizeof(void*));
  STATIC_REQUIRE(sizeof(pair_t) - sizeof(runtime_marks) >= 4 * sizeof(detail::callback<void(pair_t&)>) - 8);
  STATIC_REQUIRE(sizeof(pair_bufferevent<handler<empty_handler>, unlocked>) == sizeof(runtime_marks));
}

TEST_CASE("run-time callbacks: inline and heap callables, copies, empty values", "[core][handler]") {
  using cb = detail::callback<int(int)>;
  cb empty;
  CHECK_FALSE(empty);
  CHECK(empty == nullptr);
  // Pointer-sized trivially copyable callables are stored inline, others on the heap.
  int base = 10;
  cb small = [&base](int x) { return base + x; };
  auto text = std::make_shared<std::string>("abc");
  cb large = [text, pad = std::array<char, 40>{}](int x) { return static_cast<int>(text->size()) + x + pad[0]; };
  REQUIRE(small);
  REQUIRE(large);
  CHECK(small(1) == 11);
  CHECK(large(1) == 4);
  {
    cb copy = large;  // a deep copy: the capture's shared_ptr is shared, not moved
    CHECK(text.use_count() == 3);
    CHECK(copy(2) == 5);
    cb moved = std::move(copy);
    CHECK_FALSE(copy);
    CHECK(moved(0) == 3);
    CHECK(text.use_count() == 3);
    moved = small;
    CHECK(text.use_count() == 2);
    CHECK(moved(5) == 15);
  }
  CHECK(text.use_count() == 2);
  large = nullptr;
  CHECK(text.use_count() == 1);
  // Function pointers and std::function: a null one makes an empty callback.
  int (*fp)(int) = nullptr;
  CHECK_FALSE(cb(fp));
  fp = [](int x) { return -x; };
  CHECK(cb(fp)(3) == -3);
  CHECK_FALSE(cb(std::function<int(int)>()));
  CHECK(cb(std::function<int(int)>([](int x) { return 2 * x; }))(4) == 8);
  // Through setcb/getcb.
  asio::io_context io;
  auto ab_pair = bufev::make_pair(io.get_executor());
  auto& a = ab_pair.first;
  int reads = 0;
  a->setcb([&reads](pair_t&) { ++reads; }, nullptr, nullptr);
  CHECK(a->getcb().read);
  CHECK_FALSE(a->getcb().write);
  CHECK(a->getcb().event == nullptr);
  auto read_copy = a->getcb().read;
  read_copy(*a);
  CHECK(reads == 1);
}
