// The filter transport and compile-time stacks: spec section 4 and rule 13,
// libevent's filter scenarios over pairs, and bufev's fixes (no stranded data,
// EOF reaches the filter as finished, write timeout only while output pending).
#include <bufev/bufev.hpp>

#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <asio/io_context.hpp>

#include "support/catch.hpp"
#include "support/lifetime.hpp"
#include "support/data.hpp"
#include "support/drive.hpp"

using namespace bufev;
using namespace std::chrono_literals;
using bufev::test::drain_ready;
using bufev::test::run_until;
using bufev::test::pattern;
using bufev::test::take_all;
using bufev::test::lifetime_probe;

namespace {

using pair_t = pair_bufferevent<>;



// libevent's test filters: the output writes 'x' before every byte, the input
// checks and strips it.
struct prefix_strip {
  int bad = 0;
  template <class Src, class Dst>
  filter_result filter_output(Src& src, Dst& dst, std::size_t limit, flush_mode) {
    std::size_t n = std::min(src.size(), limit / 2);
    std::string in(n, '\0');
    in.resize(src.remove(in.data(), n));
    std::string out;
    for (char c : in) {
      out += 'x';
      out += c;
    }
    (void)dst.add(out.data(), out.size());
    return filter_result::ok;
  }
  template <class Src, class Dst>
  filter_result filter_input(Src& src, Dst& dst, std::size_t limit, flush_mode) {
    const std::size_t n = std::min(src.size() / 2, limit);
    std::string in(2 * n, '\0');
    in.resize(src.remove(in.data(), 2 * n));
    std::string out;
    for (std::size_t i = 0; i + 1 < in.size(); i += 2) {
      if (in[i] != 'x') ++bad;
      out += in[i + 1];
    }
    (void)dst.add(out.data(), out.size());
    return filter_result::ok;
  }
};

// A filter whose input, at the end of the stream, appends a trailer.
struct trailer_on_finish {
  int finished_calls = 0;
  template <class Src, class Dst>
  filter_result filter_output(Src& src, Dst& dst, std::size_t limit, flush_mode) {
    bufev::detail::move_bytes(src, dst, std::min(src.size(), limit));
    return filter_result::ok;
  }
  template <class Src, class Dst>
  filter_result filter_input(Src& src, Dst& dst, std::size_t limit, flush_mode mode) {
    bufev::detail::move_bytes(src, dst, std::min(src.size(), limit));
    if (mode == flush_mode::finished && src.empty() && finished_calls++ == 0) (void)dst.add("<END>", 5);
    return filter_result::ok;
  }
};

// Holds its output until its input has seen a byte (a handshake in
// miniature), with no hooks: a graceful close learns that it must wait from
// `need_more` alone. In `finished` mode its output ends with "[fin]".
struct gate_filter {
  bool open = false;
  bool trailer_sent = false;
  template <class Src, class Dst>
  filter_result filter_input(Src& src, Dst& dst, std::size_t limit, flush_mode) {
    if (!src.empty()) open = true;
    bufev::detail::move_bytes(src, dst, std::min(src.size(), limit));
    return filter_result::ok;
  }
  template <class Src, class Dst>
  filter_result filter_output(Src& src, Dst& dst, std::size_t limit, flush_mode mode) {
    if (!open) return src.empty() && mode != flush_mode::finished ? filter_result::ok : filter_result::need_more;
    bufev::detail::move_bytes(src, dst, std::min(src.size(), limit));
    if (mode == flush_mode::finished && src.empty() && !trailer_sent) {
      trailer_sent = true;
      (void)dst.add("[fin]", 5);
    }
    return filter_result::ok;
  }
};

template <class Bev>
struct recorder {
  std::string data;
  std::vector<std::pair<events, std::error_code>> evs;
  std::string data_at_first_event;
  void attach(Bev& b) {
    b.setcb([this](Bev& bev) { data += take_all(bev); }, nullptr,
            [this](Bev& bev, events e, std::error_code ec) {
              data += take_all(bev);
              if (evs.empty()) data_at_first_event = data;
              evs.emplace_back(e, ec);
            });
  }
};

}  // namespace

TEST_CASE("filter: prefix/strip filters over a pair deliver 8333 bytes intact both ways",
          "[filter][libevent]") {
  asio::io_context io;
  auto ab_pair = bufev::make_pair(io.get_executor());
  auto& a = ab_pair.first;
  auto& b = ab_pair.second;
  auto fa = make_filter_bufferevent(std::move(a), prefix_strip{});
  auto fb = make_filter_bufferevent(std::move(b), prefix_strip{});
  const std::string data = pattern(8333);
  std::string got_b, got_a;
  int errors = 0, writes = 0;
  fa->setcb([&](auto& bev) { got_a += take_all(bev); }, [&](auto&) { ++writes; },
            [&](auto&, events, std::error_code) { ++errors; });
  fb->setcb([&](auto& bev) {
              got_b += take_all(bev);
            },
            nullptr, [&](auto&, events, std::error_code) { ++errors; });
  fa->enable(direction::read);
  fb->enable(direction::read);
  REQUIRE_FALSE(fa->write(data));
  REQUIRE_FALSE(fb->write("reply"));
  REQUIRE(run_until(io, [&] { return got_b.size() == data.size() && got_a.size() == 5; }));
  CHECK(got_b == data);
  CHECK(got_a == "reply");
  CHECK(writes > 0);
  CHECK(errors == 0);
  CHECK(fa->transport().filter().bad == 0);
  CHECK(fb->transport().filter().bad == 0);
  // What went over the wire really was transformed.
  CHECK(fa->underlying().partner() != nullptr);
}

TEST_CASE("filter: a filter writing to its own bufferevent from filter_output does not re-enter",
          "[filter][libevent]") {
  asio::io_context io;
  auto ab_pair = bufev::make_pair(io.get_executor());
  auto& a = ab_pair.first;
  auto& b = ab_pair.second;
  int depth = 0, max_depth = 0, calls = 0;
  std::function<void()> write_self;
  auto in = [](auto& src, auto& dst, std::size_t limit, flush_mode) {
    bufev::detail::move_bytes(src, dst, std::min(src.size(), limit));
    return filter_result::ok;
  };
  auto out = [&](auto& src, auto& dst, std::size_t limit, flush_mode) {
    max_depth = std::max(max_depth, ++depth);
    if (++calls == 1) write_self();  // appends to the source being filtered
    bufev::detail::move_bytes(src, dst, std::min(src.size(), limit));
    --depth;
    return filter_result::ok;
  };
  auto fa = make_filter_bufferevent(std::move(a), make_filter(in, out));
  write_self = [&] { REQUIRE_FALSE(fa->write("!self!")); };
  std::string got;
  b->setcb([&](pair_t& bev) { got += take_all(bev); }, nullptr, nullptr);
  b->enable(direction::read);
  REQUIRE_FALSE(fa->write("hello"));
  REQUIRE(run_until(io, [&] { return got.size() == 11; }));
  drain_ready(io);
  CHECK(got == "hello!self!");
  CHECK(max_depth == 1);
}

TEST_CASE("filter: data stuck at the lower write high mark is delivered (4096 + 20 bytes)",
          "[filter][libevent]") {
  asio::io_context io;
  auto ab_pair = bufev::make_pair(io.get_executor());
  auto& a = ab_pair.first;
  auto& b = ab_pair.second;
  REQUIRE_FALSE(a->setwatermark(direction::write, 0, 4096));
  REQUIRE_FALSE(b->setwatermark(direction::read, 0, 4096));
  bool header_sent = false;
  auto in = [](auto& src, auto& dst, std::size_t limit, flush_mode) {
    bufev::detail::move_bytes(src, dst, std::min(src.size(), limit));
    return filter_result::ok;
  };
  // Adds a 20-byte header in front of the stream.
  auto out = [&](auto& src, auto& dst, std::size_t limit, flush_mode) {
    if (!header_sent) {
      if (limit < 20) return filter_result::need_more;
      (void)dst.add("HEADER-0123456789ab:", 20);
      header_sent = true;
      limit -= 20;
    }
    bufev::detail::move_bytes(src, dst, std::min(src.size(), limit));
    return filter_result::ok;
  };
  auto fa = make_filter_bufferevent(std::move(a), make_filter(in, out));
  const std::string data = pattern(4096);
  std::string got;
  b->setcb([&](pair_t& bev) { got += take_all(bev); }, nullptr, nullptr);
  b->enable(direction::read);
  REQUIRE_FALSE(fa->write(data));
  REQUIRE(run_until(io, [&] { return got.size() == 4096 + 20; }));
  drain_ready(io);
  CHECK(got == "HEADER-0123456789ab:" + data);
  CHECK(fa->output().empty());
  CHECK(fa->underlying().output().empty());
}

TEST_CASE("filter: filters over filters over a pair (libevent's filter scenarios, nested)",
          "[filter][libevent][stack]") {
  asio::io_context io;
  auto ab_pair = bufev::make_pair(io.get_executor());
  auto& a = ab_pair.first;
  auto& b = ab_pair.second;
  auto fa = std::move(a) | prefix_strip{} | filters::length_prefix{100} | prefix_strip{};
  auto fb = std::move(b) | prefix_strip{} | filters::length_prefix{100} | prefix_strip{};
  const std::string data = pattern(8333);
  std::string got;
  fb->setcb([&](auto& bev) { got += take_all(bev); }, nullptr, nullptr);
  fb->enable(direction::read);
  REQUIRE_FALSE(fa->write(data));
  REQUIRE(run_until(io, [&] { return got.size() == data.size(); }));
  CHECK(got == data);
  // The bytes at the bottom are the transformed ones: the lowest layer of fb saw
  // "x"-prefixed, framed, "x"-prefixed data, and its own filter found no fault.
  CHECK(fb->transport().filter().bad == 0);
  CHECK(fb->next_layer().next_layer().transport().filter().bad == 0);
  CHECK(&fb->lowest_layer() == &fb->next_layer().next_layer().underlying());
}

TEST_CASE("filter: the stack is one concrete type, next_layer/lowest_layer reach down",
          "[filter][stack]") {
  asio::io_context io;
  auto ab_pair = bufev::make_pair(io.get_executor());
  auto& a = ab_pair.first;
  auto& b = ab_pair.second;
  auto top = make_stack(std::move(a), filters::identity{}, filters::length_prefix{}, filters::identity{});
  using mid1 = filter_bufferevent<pair_t, filters::identity, handler<filter_link>, unlocked>;
  using mid2 = filter_bufferevent<mid1, filters::length_prefix, handler<filter_link>, unlocked>;
  using top_t = filter_bufferevent<mid2, filters::identity>;
  static_assert(std::is_same_v<decltype(top), bufferevent_ptr<top_t>>);
  static_assert(std::is_same_v<decltype(top->next_layer()), mid2&>);
  static_assert(std::is_same_v<decltype(top->underlying()), mid2&>);
  static_assert(std::is_same_v<decltype(top->lowest_layer()), pair_t&>);
  static_assert(std::is_same_v<decltype(top->next_layer().next_layer()), mid1&>);
  // The link handler is one pointer and three function pointers: no std::function.
  static_assert(std::is_same_v<mid1::handler_type, filter_link>);

  auto piped = std::move(b) | filters::identity{} | layer<deferred_callbacks>(filters::length_prefix{});
  using p1 = filter_bufferevent<pair_t, filters::identity>;
  static_assert(std::is_same_v<decltype(piped),
                               bufferevent_ptr<filter_bufferevent<p1, filters::length_prefix, deferred_callbacks>>>);
  static_assert(decltype(piped)::element_type::deferred);

  CHECK(&top->lowest_layer() == top->next_layer().next_layer().underlying().partner()->partner());
  CHECK(top->lowest_layer().partner() == &piped->lowest_layer());
  // And it works end to end.
  std::string got;
  piped->setcb([&](auto& bev) { got += take_all(bev); }, nullptr, nullptr);
  piped->enable(direction::read);
  REQUIRE_FALSE(top->write("stacked"));
  REQUIRE(run_until(io, [&] { return got == "stacked"; }));
}

TEST_CASE("filter: no stranded data: draining, enabling reading, raising the watermark",
          "[filter][stranded]") {
  asio::io_context io;
  auto ab_pair = bufev::make_pair(io.get_executor());
  auto& a = ab_pair.first;
  auto& b = ab_pair.second;
  auto fb = make_filter_bufferevent(std::move(b), filters::identity{});
  REQUIRE_FALSE(fb->setwatermark(direction::read, 0, 16));
  int reads = 0;
  fb->setcb([&](auto&) { ++reads; }, nullptr, nullptr);  // never drains by itself
  fb->enable(direction::read);
  REQUIRE_FALSE(a->write(pattern(100)));
  drain_ready(io);
  REQUIRE(fb->input().size() == 16);
  const std::size_t below = fb->underlying().input().size() + a->output().size();
  CHECK(below == 84);

  SECTION("draining the filter's input re-runs pending lower data") {
    REQUIRE_FALSE(fb->input().drain(10));
    drain_ready(io);
    CHECK(fb->input().size() == 16);
    CHECK(fb->underlying().input().size() + a->output().size() == 74);
  }
  SECTION("enabling reading re-runs pending lower data") {
    fb->disable(direction::read);
    REQUIRE_FALSE(fb->input().drain(16));
    drain_ready(io);
    CHECK(fb->input().empty());
    fb->enable(direction::read);
    drain_ready(io);
    CHECK(fb->input().size() == 16);
    CHECK(fb->underlying().input().size() + a->output().size() == 68);
  }
  SECTION("raising the read high watermark re-runs pending lower data") {
    REQUIRE_FALSE(fb->setwatermark(direction::read, 0, 0));
    drain_ready(io);
    CHECK(fb->input().size() == 100);
    CHECK(fb->underlying().input().empty());
    CHECK(a->output().empty());
  }
}

TEST_CASE("filter: EOF reaches the input filter as finished, its trailer comes before EOF",
          "[filter][eof]") {
  asio::io_context io;
  auto ab_pair = bufev::make_pair(io.get_executor());
  auto& a = ab_pair.first;
  auto& b = ab_pair.second;
  auto fb = make_filter_bufferevent(std::move(b), trailer_on_finish{});
  recorder<std::remove_reference_t<decltype(*fb)>> rec;
  rec.attach(*fb);
  fb->enable(direction::read);
  REQUIRE_FALSE(a->write("payload"));
  CHECK(a->flush(direction::write, flush_mode::flush) == 1);  // moved before the close
  a.reset();  // the partner sees EOF
  REQUIRE(run_until(io, [&] { return !rec.evs.empty(); }));
  drain_ready(io);
  CHECK(rec.data_at_first_event == "payload<END>");
  REQUIRE(rec.evs.size() == 1);
  CHECK(rec.evs[0].first == (events::reading | events::eof));
  CHECK(fb->transport().filter().finished_calls >= 1);
  CHECK_FALSE(any(fb->enabled(), direction::read));  // rule 6
}

TEST_CASE("filter: EOF while the filter's input is at its high mark waits for the data",
          "[filter][eof][stranded]") {
  asio::io_context io;
  auto ab_pair = bufev::make_pair(io.get_executor());
  auto& a = ab_pair.first;
  auto& b = ab_pair.second;
  auto fb = make_filter_bufferevent(std::move(b), trailer_on_finish{});
  REQUIRE_FALSE(fb->setwatermark(direction::read, 0, 8));
  std::vector<events> evs;
  fb->setcb(nullptr, nullptr, [&](auto&, events e, std::error_code) { evs.push_back(e); });
  fb->enable(direction::read);
  REQUIRE_FALSE(a->write(pattern(40)));
  drain_ready(io);
  REQUIRE(a->flush(direction::write, flush_mode::finished) >= 0);
  a.reset();
  drain_ready(io);
  CHECK(fb->input().size() == 8);
  CHECK(evs.empty());  // EOF waits behind the data
  std::string got;
  for (int i = 0; i < 20 && evs.empty(); ++i) {
    got += take_all(*fb);
    drain_ready(io);
  }
  got += take_all(*fb);
  CHECK(got == pattern(40) + "<END>");
  CHECK(evs == std::vector<events>{events::reading | events::eof});
}

TEST_CASE("filter: an error result raises event(reading|error) with the filter's code",
          "[filter][error]") {
  asio::io_context io;
  auto ab_pair = bufev::make_pair(io.get_executor());
  auto& a = ab_pair.first;
  auto& b = ab_pair.second;
  auto bad_in = [](auto&, auto&, std::size_t, flush_mode) { return filter_result::error; };
  auto pass = [](auto& src, auto& dst, std::size_t limit, flush_mode) {
    bufev::detail::move_bytes(src, dst, std::min(src.size(), limit));
    return filter_result::ok;
  };
  auto fb = make_filter_bufferevent(std::move(b), make_filter(bad_in, pass));
  std::vector<std::pair<events, std::error_code>> evs;
  fb->setcb(nullptr, nullptr, [&](auto&, events e, std::error_code ec) { evs.emplace_back(e, ec); });
  fb->enable(direction::read);
  REQUIRE_FALSE(a->write("boom"));
  REQUIRE(run_until(io, [&] { return !evs.empty(); }));
  CHECK(evs[0].first == (events::reading | events::error));
  CHECK(evs[0].second == errc::filter_failed);

  // A filter with error(): its own code. A frame longer than the maximum.
  auto cd_pair = bufev::make_pair(io.get_executor());
  auto& c = cd_pair.first;
  auto& d = cd_pair.second;
  auto fd = make_filter_bufferevent(std::move(d), filters::length_prefix{16});
  std::vector<std::pair<events, std::error_code>> evs2;
  fd->setcb(nullptr, nullptr, [&](auto&, events e, std::error_code ec) { evs2.emplace_back(e, ec); });
  fd->enable(direction::read);
  const unsigned char huge[] = {0xff, 0xff, 0xff, 0xff, 'x'};
  REQUIRE_FALSE(c->write(huge, sizeof huge));
  REQUIRE(run_until(io, [&] { return !evs2.empty(); }));
  CHECK(evs2[0].first == (events::reading | events::error));
  CHECK(evs2[0].second == std::errc::message_size);
  CHECK(fd->input().empty());
}

TEST_CASE("filter: framing: a stream that ends inside a frame is an error, not a hang",
          "[filter][framing][eof]") {
  asio::io_context io;
  auto ab_pair = bufev::make_pair(io.get_executor());
  auto& a = ab_pair.first;
  auto& b = ab_pair.second;
  auto fb = make_filter_bufferevent(std::move(b), filters::length_prefix{});
  std::vector<std::pair<events, std::error_code>> evs;
  fb->setcb(nullptr, nullptr, [&](auto&, events e, std::error_code ec) { evs.emplace_back(e, ec); });
  fb->enable(direction::read);
  const unsigned char partial[] = {0, 0, 0, 10, 'a', 'b', 'c'};
  REQUIRE_FALSE(a->write(partial, sizeof partial));
  drain_ready(io);
  CHECK(fb->input().size() == 3);
  CHECK(evs.empty());
  a.reset();
  REQUIRE(run_until(io, [&] { return !evs.empty(); }));
  CHECK(evs[0].first == (events::reading | events::error));
  CHECK(evs[0].second == std::errc::bad_message);
}

TEST_CASE("rule 13: flush on a filter runs the filter in that mode, then flushes the lower one",
          "[filter][rule13]") {
  asio::io_context io;
  auto ab_pair = bufev::make_pair(io.get_executor());
  auto& a = ab_pair.first;
  auto& b = ab_pair.second;
  std::vector<flush_mode> modes;
  auto in = [](auto& src, auto& dst, std::size_t limit, flush_mode) {
    bufev::detail::move_bytes(src, dst, std::min(src.size(), limit));
    return filter_result::ok;
  };
  auto out = [&](auto& src, auto& dst, std::size_t limit, flush_mode m) {
    modes.push_back(m);
    bufev::detail::move_bytes(src, dst, std::min(src.size(), limit));
    if (m == flush_mode::finished) (void)dst.add("|fin", 4);
    return filter_result::ok;
  };
  auto fa = make_filter_bufferevent(std::move(a), make_filter(in, out));
  std::vector<events> evs;
  std::string got;
  b->setcb([&](pair_t& bev) { got += take_all(bev); }, nullptr,
           [&](pair_t& bev, events e, std::error_code) {
             got += take_all(bev);
             evs.push_back(e);
           });
  // Nothing pending, normal mode: nothing to do. flush mode with no data still runs the filter.
  CHECK(fa->flush(direction::write, flush_mode::normal) == 0);
  CHECK(fa->flush(direction::write, flush_mode::flush) == 0);
  CHECK(modes == std::vector<flush_mode>{flush_mode::flush});
  // Written but the partner is not reading: flush moves it anyway (pair rule 13).
  fa->disable(direction::write);
  REQUIRE_FALSE(fa->write("abc"));
  drain_ready(io);
  CHECK(fa->output().size() == 3);
  CHECK(fa->flush(direction::write, flush_mode::flush) == 1);
  CHECK(fa->output().empty());
  CHECK(b->input().size() == 3);
  // finished: trailer, then the pair delivers EOF to the partner.
  CHECK(fa->flush(direction::write, flush_mode::finished) == 1);
  b->enable(direction::read);
  REQUIRE(run_until(io, [&] { return !evs.empty(); }));
  CHECK(got == "abc|fin");
  CHECK(evs[0] == (events::reading | events::eof));
}

TEST_CASE("rule 8: filter write timeout runs only while output is pending below it",
          "[filter][rule8][timeout]") {
  using tpair = pair_bufferevent<manual_timers>;
  asio::io_context io;
  auto ab_pair = bufev::make_pair<tpair>(io.get_executor());
  auto& a = ab_pair.first;
  auto& b = ab_pair.second;
  auto fa = make_filter_bufferevent<manual_timers>(std::move(a), filters::identity{});
  std::vector<events> evs;
  fa->setcb(nullptr, nullptr, [&](auto&, events e, std::error_code ec) {
    evs.push_back(e);
    CHECK(ec == std::errc::timed_out);
  });
  auto advance = [&](auto d) {
    manual_clock::advance(d);
    drain_ready(io);
  };
  fa->set_timeouts(std::nullopt, 5s);
  advance(60s);
  CHECK(evs.empty());  // nothing pending: no write timeout (libevent fires here)

  // Bytes move into the lower bufferevent at once, but b does not read: they
  // are still pending, so the timeout runs and fires once.
  REQUIRE_FALSE(fa->write("stuck"));
  advance(10ms);
  CHECK(fa->output().empty());
  CHECK(fa->underlying().output().size() == 5);
  advance(4s);
  CHECK(evs.empty());
  advance(2s);
  CHECK(evs == std::vector<events>{events::timeout | events::writing});
  CHECK_FALSE(any(fa->enabled(), direction::write));
  advance(60s);
  CHECK(evs.size() == 1);

  // Delivered in time: no timeout.
  evs.clear();
  fa->enable(direction::write);
  b->enable(direction::read);
  advance(10ms);
  CHECK(b->input().size() == 5);
  REQUIRE_FALSE(fa->write("more"));
  advance(10ms);
  CHECK(b->input().size() == 9);
  advance(60s);
  CHECK(evs.empty());
}

TEST_CASE("rule 8: filter read timeout fires while reading is enabled and idle",
          "[filter][rule8][timeout]") {
  using tpair = pair_bufferevent<manual_timers>;
  asio::io_context io;
  auto ab_pair = bufev::make_pair<tpair>(io.get_executor());
  auto& a = ab_pair.first;
  auto& b = ab_pair.second;
  auto fb = make_filter_bufferevent<manual_timers>(std::move(b), filters::identity{});
  std::vector<events> evs;
  fb->setcb([](auto& bev) { (void)take_all(bev); }, nullptr,
            [&](auto&, events e, std::error_code) { evs.push_back(e); });
  fb->set_timeouts(5s, std::nullopt);
  auto advance = [&](auto d) {
    manual_clock::advance(d);
    drain_ready(io);
  };
  advance(60s);
  CHECK(evs.empty());  // reading disabled
  fb->enable(direction::read);
  advance(4s);
  REQUIRE_FALSE(a->write("x"));  // data through the filter restarts it
  advance(10ms);
  advance(4s);
  CHECK(evs.empty());
  advance(2s);
  CHECK(evs == std::vector<events>{events::timeout | events::reading});
}

TEST_CASE("filter: graceful close through a stack delivers every trailer before EOF",
          "[filter][stack][close]") {
  asio::io_context io;
  auto ab_pair = bufev::make_pair(io.get_executor());
  auto& a = ab_pair.first;
  auto& b = ab_pair.second;
  // Sender: trailer_on_finish has no output trailer, so use a filter that writes one.
  auto fin_out = [](auto& src, auto& dst, std::size_t limit, flush_mode m) {
    bufev::detail::move_bytes(src, dst, std::min(src.size(), limit));
    if (m == flush_mode::finished) (void)dst.add("[L1 end]", 8);
    return filter_result::ok;
  };
  auto pass = [](auto& src, auto& dst, std::size_t limit, flush_mode) {
    bufev::detail::move_bytes(src, dst, std::min(src.size(), limit));
    return filter_result::ok;
  };
  auto fin_out2 = [](auto& src, auto& dst, std::size_t limit, flush_mode m) {
    bufev::detail::move_bytes(src, dst, std::min(src.size(), limit));
    if (m == flush_mode::finished) (void)dst.add("[L2 end]", 8);
    return filter_result::ok;
  };
  auto top = make_stack(std::move(a), make_filter(pass, fin_out), make_filter(pass, fin_out2));
  std::string got;
  std::vector<events> evs;
  b->setcb([&](pair_t& bev) { got += take_all(bev); }, nullptr,
           [&](pair_t& bev, events e, std::error_code) {
             got += take_all(bev);
             evs.push_back(e);
           });
  b->enable(direction::read);
  top->disable(direction::write);  // queued, not yet sent
  REQUIRE_FALSE(top->write("data"));
  int top_events = 0;
  top->setcb(nullptr, nullptr, [&](auto&, events, std::error_code) { ++top_events; });
  top.reset_gracefully();
  REQUIRE(run_until(io, [&] { return !evs.empty(); }));
  drain_ready(io);
  // Layer 2's trailer went through layer 1, then layer 1's own trailer.
  CHECK(got == "data[L2 end][L1 end]");
  CHECK(evs == std::vector<events>{events::reading | events::eof});
  CHECK(top_events == 0);  // no callback after the call
}

TEST_CASE("filter: output stops at the lower write high mark and resumes as it drains",
          "[filter][watermark]") {
  asio::io_context io;
  auto ab_pair = bufev::make_pair(io.get_executor());
  auto& a = ab_pair.first;
  auto& b = ab_pair.second;
  REQUIRE_FALSE(a->setwatermark(direction::write, 0, 1000));
  auto fa = make_filter_bufferevent(std::move(a), filters::identity{});
  fa->output();
  REQUIRE_FALSE(fa->write(pattern(5000)));
  drain_ready(io);
  CHECK(fa->underlying().output().size() == 1000);  // b not reading: stopped at the mark
  CHECK(fa->output().size() == 4000);
  std::string got;
  b->setcb([&](pair_t& bev) { got += take_all(bev); }, nullptr, nullptr);
  b->enable(direction::read);
  REQUIRE(run_until(io, [&] { return got.size() == 5000; }));
  CHECK(got == pattern(5000));
}

namespace {
// A toy handshake filter using the optional hooks a TLS filter needs: it sends
// "HELLO\n" before anything else (output without input), reads the peer's
// hello even while the user has reading disabled, raises `connected` when it
// arrives, and holds user data back until then.
struct hello_filter {
  bool sent = false;
  bool got = false;
  bool announced = false;
  bool output_pending() const { return !sent; }
  bool needs_input() const { return !got; }
  std::pair<events, std::error_code> take_events() {
    if (got && !announced) {
      announced = true;
      return {events::connected, {}};
    }
    return {events::none, {}};
  }
  template <class Src, class Dst>
  filter_result filter_output(Src& src, Dst& dst, std::size_t limit, flush_mode) {
    if (!sent) {
      (void)dst.add("HELLO\n", 6);
      sent = true;
    }
    if (!got) return filter_result::need_more;  // app data waits for the handshake
    bufev::detail::move_bytes(src, dst, std::min(src.size(), limit));
    return filter_result::ok;
  }
  template <class Src, class Dst>
  filter_result filter_input(Src& src, Dst& dst, std::size_t limit, flush_mode) {
    if (!got) {
      char h[6];
      if (src.copyout(h, 6) < 6) return filter_result::need_more;
      if (std::memcmp(h, "HELLO\n", 6) != 0) return filter_result::error;
      (void)src.drain(6);
      got = true;
    }
    bufev::detail::move_bytes(src, dst, std::min(src.size(), limit));
    return filter_result::ok;
  }
};
}  // namespace

TEST_CASE("filter: hooks for stateful filters: output without input, connected event",
          "[filter][hooks]") {
  asio::io_context io;
  auto ab_pair = bufev::make_pair(io.get_executor());
  auto& a = ab_pair.first;
  auto& b = ab_pair.second;
  auto fa = make_filter_bufferevent(std::move(a), hello_filter{});
  auto fb = make_filter_bufferevent(std::move(b), hello_filter{});
  std::vector<events> ea, eb;
  std::string got;
  fa->setcb(nullptr, nullptr, [&](auto&, events e, std::error_code) { ea.push_back(e); });
  fb->setcb([&](auto& bev) { got += take_all(bev); }, nullptr,
            [&](auto&, events e, std::error_code) { eb.push_back(e); });
  REQUIRE_FALSE(fa->write("app data"));  // queued behind the handshake
  // Neither side has enabled reading, yet the handshake completes.
  REQUIRE(run_until(io, [&] { return ea.size() == 1 && eb.size() == 1; }));
  CHECK(ea[0] == events::connected);
  CHECK(eb[0] == events::connected);
  CHECK(got.empty());
  fb->enable(direction::read);
  REQUIRE(run_until(io, [&] { return got == "app data"; }));
}

TEST_CASE("filter: locked stacks share one lock with the bufferevent below",
          "[filter][lock]") {
  asio::io_context io;
  using lpair = pair_bufferevent<locked>;
  auto ab_pair = bufev::make_pair<lpair>(io.get_executor());
  auto& a = ab_pair.first;
  auto& b = ab_pair.second;
  auto top = make_stack<locked>(std::move(a), filters::identity{}, filters::identity{});
  auto& low = top->lowest_layer();
  // The mutex is shared: while this thread holds the top's lock, another thread
  // cannot take the lowest layer's.
  bool other_got_it = true;
  {
    std::lock_guard g(*top);
    std::thread t([&] {
      other_got_it = low.try_lock();
      if (other_got_it) low.unlock();
    });
    t.join();
  }
  CHECK_FALSE(other_got_it);
  std::string got;
  b->setcb([&](lpair& bev) { got += take_all(bev); }, nullptr, nullptr);
  b->enable(direction::read);
  REQUIRE_FALSE(top->write("locked stack"));
  REQUIRE(run_until(io, [&] { return got == "locked stack"; }));
}

// ---- graceful close that must wait (spec rule 10) ------------------------------------

TEST_CASE("filter: a graceful close waits for the input the filter needs, then sends every byte and the trailer",
          "[filter][close][graceful]") {
  asio::io_context io;
  auto ab_pair = bufev::make_pair(io.get_executor());
  auto& b = ab_pair.second;
  auto top = make_filter_bufferevent(std::move(ab_pair.first), gate_filter{});
  lifetime_probe probe;
  probe.attach(*top);
  recorder<pair_t> rb;
  rb.attach(*b);
  b->enable(direction::read);
  const std::string data = pattern(300000);
  REQUIRE_FALSE(top->write(data));
  top.reset_gracefully();  // the filter cannot send yet: the layer waits on its own
  drain_ready(io);
  CHECK(rb.data.empty());
  CHECK(rb.evs.empty());
  CHECK_FALSE(probe.freed());
  CHECK_FALSE(io.stopped());  // the waiting close is outstanding work
  REQUIRE_FALSE(b->write("g"));  // what the filter waits for
  REQUIRE(run_until(io, [&] { return !rb.evs.empty(); }));
  drain_ready(io);
  CHECK(rb.data.size() == data.size() + 5);
  CHECK(rb.data == data + "[fin]");
  CHECK(rb.data_at_first_event == rb.data);  // every byte before EOF
  REQUIRE(rb.evs.size() == 1);
  CHECK(rb.evs[0].first == (events::reading | events::eof));
  CHECK(*probe.calls == 0);
  CHECK(probe.freed());
  b.reset();
  drain_ready(io);
  CHECK(io.stopped());  // nothing left behind
}

TEST_CASE("filter: a graceful close waiting for input ends when the lower input ends: no hang, no leak",
          "[filter][close][graceful]") {
  asio::io_context io;
  auto ab_pair = bufev::make_pair(io.get_executor());
  auto& b = ab_pair.second;
  auto top = make_filter_bufferevent(std::move(ab_pair.first), gate_filter{});
  lifetime_probe probe;
  probe.attach(*top);
  REQUIRE_FALSE(top->write("never sent"));
  top.reset_gracefully();
  drain_ready(io);
  REQUIRE_FALSE(probe.freed());
  b.reset();  // the peer goes: the input the filter waits for will never come
  REQUIRE(run_until(io, [&] { return probe.freed(); }, 5s));
  drain_ready(io);
  CHECK(*probe.calls == 0);
  CHECK(io.stopped());
}

TEST_CASE("filter: close() or destruction after a waiting graceful close is safe and frees the layer",
          "[filter][close][graceful]") {
  SECTION("close() of the still-owned bufferevent") {
    asio::io_context io;
    auto ab_pair = bufev::make_pair(io.get_executor());
    auto& b = ab_pair.second;
    auto top = make_filter_bufferevent(std::move(ab_pair.first), gate_filter{});
    lifetime_probe probe;
    probe.attach(*top);
    recorder<pair_t> rb;
    rb.attach(*b);
    b->enable(direction::read);
    REQUIRE_FALSE(top->write("abc"));
    top->close_gracefully();  // keeps ownership
    drain_ready(io);
    CHECK_FALSE(probe.freed());
    top->close();  // ends the wait: pending output discarded, as a plain close does
    top->close();  // idempotent
    top.reset();
    REQUIRE(run_until(io, [&] { return probe.freed() && !rb.evs.empty(); }, 5s));
    CHECK(rb.data.empty());
    CHECK(rb.evs[0].first == (events::reading | events::eof));
    CHECK(*probe.calls == 0);
    b.reset();
    drain_ready(io);
    CHECK(io.stopped());
  }
  SECTION("the execution context destroyed while the close waits") {
    lifetime_probe probe;
    {
      asio::io_context io;
      auto ab_pair = bufev::make_pair(io.get_executor());
      auto top = make_filter_bufferevent(std::move(ab_pair.first), gate_filter{});
      probe.attach(*top);
      REQUIRE_FALSE(top->write("abc"));
      top.reset_gracefully();
      drain_ready(io);
      REQUIRE_FALSE(probe.freed());
    }  // the pending wait is destroyed with the io_context: it closes the layer
    CHECK(probe.freed());
    CHECK(*probe.calls == 0);
  }
}
