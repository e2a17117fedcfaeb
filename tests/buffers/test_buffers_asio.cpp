// Asio interop of bufev buffers over a real loopback TCP connection: read_until /
// async_read_until / read / async_read into bufev::dynamic_buffer(evbuffer), and
// write / async_write from evbuffer::data() (a gather list over the segments).
#include <chrono>
#include <cstdio>
#include <string>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <asio/read_until.hpp>
#include <asio/write.hpp>

#include "bufev/buffers/dynamic_buffer.hpp"
#include "support/catch.hpp"
#include "support/files.hpp"

using bufev::eol_style;
using bufev::evbuffer;
using asio::ip::tcp;

namespace {

/// A connected pair of TCP sockets on 127.0.0.1 (ephemeral port).
struct loopback {
  asio::io_context io;
  tcp::socket client{io};
  tcp::socket server{io};
  loopback() {
    tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    client.connect(acceptor.local_endpoint());
    acceptor.accept(server);
  }
  /// Runs the handlers that are ready, bounded in time (no sleeps).
  void run() {
    io.restart();
    io.run_for(std::chrono::seconds(10));
  }
};

std::string contents(const evbuffer& b) {
  std::string s(b.size(), '\0');
  REQUIRE(b.copyout(s.data(), s.size()) == s.size());
  return s;
}

std::string pattern(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('!' + (i * 7 + i / 251) % 90);
  return s;
}

}  // namespace

SCENARIO("asio::async_read_until fills an evbuffer over TCP", "[evbuffer][asio]") {
  loopback net;
  evbuffer in;
  const std::string text = "hello\r\nworld, this is line two\r\npartial";
  REQUIRE(asio::write(net.server, asio::buffer(text)) == text.size());

  std::error_code ec1;
  std::size_t n1 = 0;
  bool done = false;
  asio::async_read_until(net.client, bufev::dynamic_buffer(in), "\r\n", [&](std::error_code ec, std::size_t n) {
    ec1 = ec;
    n1 = n;
    done = true;
  });
  net.run();
  REQUIRE(done);
  REQUIRE_FALSE(ec1);
  THEN("the first line and its delimiter are in the buffer") {
    REQUIRE(n1 == 7);
    REQUIRE(in.size() >= 7);
    std::error_code ec;
    REQUIRE(in.readln(eol_style::crlf_strict, 100, ec) == "hello");
  }
  THEN("a second read_until finds the next line, the partial line stays") {
    REQUIRE_FALSE(in.drain(n1));
    done = false;
    asio::async_read_until(net.client, bufev::dynamic_buffer(in), "\r\n", [&](std::error_code ec, std::size_t n) {
      REQUIRE_FALSE(ec);
      REQUIRE(n == 25);
      done = true;
    });
    net.run();
    REQUIRE(done);
    std::error_code ec;
    REQUIRE(in.readln(eol_style::crlf_strict, 100, ec) == "world, this is line two");
    asio::read(net.client, bufev::dynamic_buffer(in), asio::transfer_exactly(7 - in.size()));
    REQUIRE(contents(in) == "partial");
  }
  THEN("the synchronous read_until with a char delimiter works too") {
    REQUIRE_FALSE(in.drain(n1));
    const std::size_t n = asio::read_until(net.client, bufev::dynamic_buffer(in), '\n');
    REQUIRE(n == 25);
  }
}

SCENARIO("read_until honours the adaptor's max_size", "[evbuffer][asio]") {
  loopback net;
  evbuffer in;
  REQUIRE(asio::write(net.server, asio::buffer(std::string(64, 'x'))) == 64);
  std::error_code result;
  bool done = false;
  asio::async_read_until(net.client, bufev::dynamic_buffer(in, 16), "\r\n", [&](std::error_code ec, std::size_t) {
    result = ec;
    done = true;
  });
  net.run();
  REQUIRE(done);
  REQUIRE(result == asio::error::not_found);
  REQUIRE(in.size() == 16);
}

SCENARIO("a segmented evbuffer is written with one gather list and read exactly", "[evbuffer][asio]") {
  loopback net;
  GIVEN("1 MiB in many segments, with reference and file segments inside") {
    const std::string payload = pattern(1 << 20);
    evbuffer out;
    std::size_t at = 0;
    for (std::size_t piece = 1; at < payload.size() / 2; piece = piece * 3 % 9001 + 1) {
      const std::size_t k = std::min(piece, payload.size() / 2 - at);
      REQUIRE_FALSE(out.add(payload.data() + at, k));
      at += k;
    }
    REQUIRE_FALSE(out.add_reference(payload.data() + at, 100000));
    at += 100000;
    std::string path;
    const int fd = bufev::test::make_temp_file(path, /*anonymous=*/true);
    REQUIRE(fd >= 0);
    REQUIRE(bufev::test::write_all(fd, payload.data() + at, 200000));
    REQUIRE_FALSE(out.add_file(fd, 0, 200000));
    at += 200000;
    REQUIRE_FALSE(out.add(payload.data() + at, payload.size() - at));
    REQUIRE(out.size() == payload.size());
    REQUIRE(out.segment_count() > 10);

    WHEN("async_write sends data() and async_read takes exactly that many bytes") {
      evbuffer in;
      std::size_t written = 0, read = 0;
      std::error_code wec, rec;
      asio::async_write(net.server, out.data(), [&](std::error_code ec, std::size_t n) {
        wec = ec;
        written = n;
        out.consume(n);
      });
      asio::async_read(net.client, bufev::dynamic_buffer(in), asio::transfer_exactly(payload.size()),
                       [&](std::error_code ec, std::size_t n) {
                         rec = ec;
                         read = n;
                       });
      net.run();
      THEN("every byte arrives in order") {
        REQUIRE_FALSE(wec);
        REQUIRE_FALSE(rec);
        REQUIRE(written == payload.size());
        REQUIRE(read == payload.size());
        REQUIRE(out.empty());
        REQUIRE(in.size() == payload.size());
        REQUIRE(contents(in) == payload);
      }
    }
  }
}

SCENARIO("async_write and read with the dynamic_buffer adaptor on both sides", "[evbuffer][asio]") {
  loopback net;
  const std::string payload = pattern(300000);
  evbuffer out, in;
  REQUIRE_FALSE(out.add(payload));
  std::size_t written = 0;
  bool wdone = false, rdone = false;
  asio::async_write(net.server, bufev::dynamic_buffer(out), [&](std::error_code ec, std::size_t n) {
    REQUIRE_FALSE(ec);
    written = n;
    wdone = true;
  });
  asio::async_read(net.client, bufev::dynamic_buffer(in), asio::transfer_exactly(payload.size()),
                   [&](std::error_code ec, std::size_t n) {
                     REQUIRE_FALSE(ec);
                     REQUIRE(n == payload.size());
                     rdone = true;
                   });
  net.run();
  REQUIRE(wdone);
  REQUIRE(rdone);
  THEN("the adaptor consumed what was written and appended what was read") {
    REQUIRE(written == payload.size());
    REQUIRE(out.empty());
    REQUIRE(contents(in) == payload);
  }
  THEN("a synchronous write/read round trip works as well") {
    evbuffer back;
    REQUIRE_FALSE(back.add("ping\n"));
    REQUIRE(asio::write(net.client, back.data()) == 5);
    evbuffer got;
    REQUIRE(asio::read(net.server, bufev::dynamic_buffer(got), asio::transfer_exactly(5)) == 5);
    REQUIRE(contents(got) == "ping\n");
  }
}

TEST_CASE("dynamic_buffer adaptor is an Asio DynamicBuffer_v1", "[evbuffer][asio]") {
  evbuffer b;
  auto d = bufev::dynamic_buffer(b, 100);
  STATIC_REQUIRE(asio::is_dynamic_buffer_v1<decltype(d)>::value);
  STATIC_REQUIRE_FALSE(asio::is_dynamic_buffer_v2<decltype(d)>::value);
  // evbuffer itself must not look like a DynamicBuffer (Asio would copy it).
  STATIC_REQUIRE_FALSE(asio::is_dynamic_buffer_v1<evbuffer>::value);
  REQUIRE(d.max_size() == 100);
  REQUIRE(d.size() == 0);
  auto copy = d;
  REQUIRE(&copy.buffer() == &b);
  REQUIRE_THROWS_AS(d.prepare(101), std::length_error);
  auto mb = d.prepare(60);
  REQUIRE(asio::buffer_size(mb) == 60);
  REQUIRE(d.capacity() >= 60);
  asio::buffer_copy(mb, asio::buffer(std::string(60, 'c')));
  d.commit(50);
  REQUIRE(b.size() == 50);
  REQUIRE_THROWS_AS(d.prepare(51), std::length_error);
  d.consume(20);
  REQUIRE(b.size() == 30);
  d.consume(1000);
  REQUIRE(b.empty());
}
