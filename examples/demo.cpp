// bufev demo: a line-protocol server embedded in an Asio acceptor loop, with one
// bufferevent per connection, and two clients, all in one process on 127.0.0.1.
//
//   - the server reads CRLF lines with readln (length capped), answers each in
//     upper case, says goodbye and closes gracefully on "QUIT", and refuses an
//     over-long line;
//   - client 1 resolves "localhost" with connect_hostname and talks a little;
//   - client 2 (completion transport) pushes 4 MiB of lines as fast as its
//     writability allows: watermarks and backpressure at work.
//
// `./scripts/dev demo` builds and runs it; the test suite runs it too, and it exits
// non-zero if anything is not as printed.
#include <bufev/bufev.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

using tcp = asio::ip::tcp;
using bufev::direction;
using bufev::events;
using namespace std::chrono_literals;

namespace {

int failures = 0;
void expect(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "FAILED: %s\n", what);
    ++failures;
  }
}

constexpr std::size_t max_line = 1024;

// ---- server ------------------------------------------------------------------

struct server;

// The per-connection handler: its members are found by concepts and called
// directly (no std::function).
struct connection {
  server* srv = nullptr;
  int id = 0;
  void on_read(auto& bev);
  void on_event(auto& bev, events what, std::error_code ec);
  void on_writability(auto& bev, bool writable) {
    if (writable) on_read(bev);  // the client caught up: answer what is waiting
  }
};
using server_bev = bufev::tcp_bufferevent<bufev::handler<connection>>;

struct server {
  tcp::acceptor acceptor;
  std::map<int, bufev::bufferevent_ptr<server_bev>> connections;
  int next_id = 0;
  std::size_t lines = 0, refused = 0, closed = 0;

  explicit server(asio::io_context& io) : acceptor(io, {asio::ip::address_v4::loopback(), 0}) {
    accept();
  }
  unsigned short port() const { return acceptor.local_endpoint().port(); }

  void accept() {
    acceptor.async_accept([this](std::error_code ec, tcp::socket s) {
      if (ec) return;
      const int id = ++next_id;
      auto bev = server_bev::create_with(connection{this, id}, s.get_executor(), std::move(s));
      bev->setwatermark(direction::read, 0, 64 * 1024);  // input never above 64 KiB
      bev->setwatermark(direction::write, 0, 256 * 1024);
      bev->set_timeouts(30s, 30s);
      bev->enable(direction::read);
      connections.emplace(id, std::move(bev));
      accept();
    });
  }
};

void connection::on_read(auto& bev) {
  // While the client reads slowly, stop answering: the unread requests stay in
  // the input, which reaches its high watermark and stops reading the socket.
  while (bev.writable()) {
    std::error_code ec;
    auto line = bev.input().readln(bufev::eol_style::crlf, max_line, ec);
    if (ec) {  // a peer cannot grow our memory with an endless line
      ++srv->refused;
      bev.write("ERR line too long\r\n");
      srv->connections.extract(id).mapped().reset_gracefully();
      return;
    }
    if (!line) return;
    ++srv->lines;
    if (*line == "QUIT") {
      bev.write("BYE\r\n");
      // Hands the connection over: the reply is still sent, then it closes.
      srv->connections.extract(id).mapped().reset_gracefully();
      return;
    }
    std::transform(line->begin(), line->end(), line->begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    *line += "\r\n";
    bev.write(*line);
  }
}

void connection::on_event(auto&, events what, std::error_code ec) {
  if (bufev::any(what, events::eof | events::error | events::timeout)) {
    if (bufev::any(what, events::error)) std::printf("server: connection %d: %s\n", id, ec.message().c_str());
    ++srv->closed;
    srv->connections.erase(id);  // frees the bufferevent from its own callback
  }
}

}  // namespace

int main() {
  asio::io_context io;
  server srv(io);
  std::printf("server listening on 127.0.0.1:%u\n", srv.port());

  // ---- client 1: connect_hostname, a short conversation ----------------------
  using client_bev = bufev::tcp_bufferevent<>;
  auto c1 = bufev::make_socket_bufferevent<client_bev>(io.get_executor());
  std::vector<std::string> replies;
  bool c1_eof = false;
  c1->setcb(
      [&](client_bev& bev) {
        std::error_code ec;
        while (auto line = bev.input().readln(bufev::eol_style::crlf, max_line, ec)) {
          std::printf("client 1 <- %s\n", line->c_str());
          replies.push_back(*line);
        }
      },
      nullptr,
      [&](client_bev&, events what, std::error_code ec) {
        if (what == events::connected) std::printf("client 1: connected\n");
        else if (bufev::any(what, events::eof)) c1_eof = true;
        else std::printf("client 1: event 0x%x %s\n", static_cast<unsigned>(what), ec.message().c_str());
      });
  c1->enable(direction::read);
  expect(!c1->connect_hostname("localhost", srv.port(), bufev::address_family::v4), "connect_hostname");
  for (const char* l : {"hello bufev", "watermarks and deferred callbacks", "QUIT"}) {
    std::printf("client 1 -> %s\n", l);
    c1->write(std::string(l) + "\r\n");  // queued before the connection exists
  }

  // ---- client 2: bulk requests with backpressure ------------------------------
  using bulk_bev = bufev::tcp_completion_bufferevent<>;
  tcp::socket raw(io);
  raw.connect({asio::ip::address_v4::loopback(), srv.port()});
  auto c2 = bufev::make_socket_bufferevent<bulk_bev>(std::move(raw));
  const std::string request = std::string(58, 'x') + "\r\n";  // 60 bytes a line
  const std::size_t total_lines = 4 * 1024 * 1024 / request.size();
  std::size_t sent = 0, answered = 0, pauses = 0, peak_output = 0;
  bool c2_done = false;
  c2->setwatermark(direction::write, 32 * 1024, 128 * 1024);
  auto produce = [&](bulk_bev& bev) {
    while (bev.writable() && sent < total_lines) {
      bev.write(request);
      ++sent;
      peak_output = std::max(peak_output, bev.output().size());
    }
  };
  c2->set_writability_cb([&](bulk_bev& bev, bool writable) {
    if (writable) produce(bev);
    else ++pauses;
  });
  c2->setcb(
      [&](bulk_bev& bev) {
        std::error_code ec;
        while (auto line = bev.input().readln(bufev::eol_style::crlf, max_line, ec)) {
          if (*line == "BYE") {
            c2_done = true;
          } else if (++answered == total_lines) {
            bev.write("QUIT\r\n");
          }
        }
      },
      nullptr, nullptr);
  c2->enable(direction::read);
  produce(*c2);

  // ---- run until both conversations are over ---------------------------------
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (!(c1_eof && c2_done && srv.connections.empty()) &&
         std::chrono::steady_clock::now() < deadline)
    io.run_one_for(10ms);

  std::printf("client 2: %zu lines answered, writer paused %zu times, output peaked at %zu bytes\n",
              answered, pauses, peak_output);
  std::printf("server: %zu lines, %zu refused, %zu connections closed by peers\n", srv.lines,
              srv.refused, srv.closed);

  expect(replies == std::vector<std::string>{"HELLO BUFEV", "WATERMARKS AND DEFERRED CALLBACKS", "BYE"},
         "client 1 replies");
  expect(c1_eof, "client 1 sees EOF after BYE");
  expect(answered == total_lines && c2_done, "client 2: every request answered, then BYE");
  expect(pauses > 0, "client 2: backpressure paused the writer");
  expect(peak_output <= 128 * 1024 + request.size(), "client 2: output bounded by its watermark");
  expect(srv.connections.empty(), "server: every connection closed");
  std::printf(failures ? "demo: FAILED\n" : "demo: ok\n");
  return failures ? 1 : 0;
}
