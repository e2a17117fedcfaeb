// A line-oriented client that connects by host name: connect_hostname resolves
// "localhost" with Asio's asynchronous resolver and tries each address in turn
// (::1 may come first and be refused: the server below listens on 127.0.0.1
// only, so the client falls through to it). A read timeout ends the wait if the
// server goes silent.
//
// The server is a tiny plain-Asio echo acceptor in the same program, on an
// ephemeral port. Exits 0 when every reply matched. docs/sockets.md walks
// through it.
#include <bufev/bufev.hpp>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/write.hpp>

#include <array>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

namespace {

using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

// --- a minimal echo acceptor (plain Asio) -----------------------------------------

struct echo_session : std::enable_shared_from_this<echo_session> {
  tcp::socket socket;
  std::array<char, 4096> buf{};
  explicit echo_session(tcp::socket s) : socket(std::move(s)) {}
  void read() {
    socket.async_read_some(asio::buffer(buf), [self = shared_from_this()](std::error_code ec, std::size_t n) {
      if (ec) return;  // EOF or closed
      asio::async_write(self->socket, asio::buffer(self->buf, n),
                        [self](std::error_code e, std::size_t) {
                          if (!e) self->read();
                        });
    });
  }
};

void accept_loop(tcp::acceptor& acceptor) {
  acceptor.async_accept([&acceptor](std::error_code ec, tcp::socket s) {
    if (ec) return;
    std::make_shared<echo_session>(std::move(s))->read();
    accept_loop(acceptor);
  });
}

// --- the client ---------------------------------------------------------------------

// [client]
using bev_t = bufev::tcp_bufferevent<>;

struct line_client {
  bufev::bufferevent_ptr<bev_t> bev;
  std::vector<std::string> requests;
  std::vector<std::string> replies;
  bool connected = false;
  bool finished = false;
  std::error_code error;  // connect, DNS, I/O error or timeout

  line_client(const asio::any_io_executor& ex, std::vector<std::string> lines)
      : bev(bufev::make_socket_bufferevent<bev_t>(ex)), requests(std::move(lines)) {
    bev->setcb([this](bev_t& b) { on_lines(b); }, nullptr,
               [this](bev_t& b, bufev::events what, std::error_code ec) {
                 if (bufev::any(what, bufev::events::connected)) {
                   connected = true;
                   send_next(b);
                 } else {
                   // error (connect, DNS or I/O), timeout, or EOF before the last reply
                   error = ec ? ec : make_error_code(bufev::errc::closed);
                   finished = true;
                   b.close();
                 }
               });
    // A server that stops answering ends the conversation instead of hanging it.
    bev->set_timeouts(5s, 5s);
    bev->enable(bufev::direction::read);
  }

  std::error_code start(const std::string& host, unsigned short port) {
    return bev->connect_hostname(host, port);
  }

  // One request at a time: send a line, wait for its echo.
  void send_next(bev_t& b) {
    if (replies.size() == requests.size()) {
      finished = true;
      b.close();
      return;
    }
    b.write(requests[replies.size()] + "\n");
  }

  void on_lines(bev_t& b) {
    std::error_code ec;
    while (auto line = b.input().readln(bufev::eol_style::lf, 1024, ec)) {
      replies.push_back(std::move(*line));
      send_next(b);
      if (finished) return;
    }
    if (ec == bufev::errc::line_too_long) {
      error = ec;
      finished = true;
      b.close();
    }
  }
};
// [client]

}  // namespace

int main() {
  asio::io_context io;
  tcp::acceptor acceptor(io, {asio::ip::address_v4::loopback(), 0});
  accept_loop(acceptor);
  const unsigned short port = acceptor.local_endpoint().port();

  line_client client(io.get_executor(), {"hello", "bufferevents over Asio", "bye"});
  if (auto ec = client.start("localhost", port)) {
    std::fprintf(stderr, "FAILED: connect_hostname: %s\n", ec.message().c_str());
    return 1;
  }

  // Bounded: the bufferevent's own timeouts end a stuck conversation earlier.
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (!client.finished && std::chrono::steady_clock::now() < deadline) io.run_one_for(100ms);
  acceptor.close();

  int failures = 0;
  auto expect = [&](bool ok, const char* what) {
    if (!ok) {
      std::fprintf(stderr, "FAILED: %s\n", what);
      ++failures;
    }
  };
  expect(client.finished, "the conversation finished");
  expect(!client.error, "no error");
  if (client.error) std::fprintf(stderr, "  error: %s\n", client.error.message().c_str());
  expect(client.connected, "connected");
  expect(!client.bev->dns_error(), "the name resolved");
  expect(client.replies == client.requests, "every reply echoes its request");
  if (auto addr = client.bev->get_conn_address())
    std::printf("connected to %s\n", addr->address().to_string().c_str());
  for (const auto& r : client.replies) std::printf("reply: %s\n", r.c_str());
  if (failures == 0) std::printf("echo_client: ok\n");
  return failures == 0 ? 0 : 1;
}
