// An echo server inside an ordinary Asio program: an acceptor loop hands every
// accepted socket to a bufferevent (readiness transport), which echoes what it
// reads with bounded memory:
//
//   - a read high watermark keeps at most 64 KiB waiting in the input;
//   - backpressure: when more than 256 KiB wait to be sent the session stops
//     reading; the write callback (output drained to the 16 KiB write low
//     watermark) resumes it;
//   - when the client half-closes (EOF) the session sends what is left and
//     closes gracefully.
//
// The same program then runs a few clients against its own server on
// 127.0.0.1 (ephemeral port): each sends 1 MiB, refilling its output from the
// write callback (libevent's idiom), half-closes, and checks that exactly its bytes came back
// before the server's EOF. Exits 0 when every echo matched. docs/sockets.md
// walks through it.
#include <bufev/bufev.hpp>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

using tcp = asio::ip::tcp;
using bev_t = bufev::tcp_bufferevent<>;  // evbuffers, immediate callbacks, single-threaded

int failures = 0;
void expect(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "FAILED: %s\n", what);
    ++failures;
  }
}

// --- server -----------------------------------------------------------------------

// [server]
class echo_server {
 public:
  echo_server(asio::io_context& io, const tcp::endpoint& ep) : acceptor_(io, ep) { accept(); }

  tcp::endpoint local_endpoint() const { return acceptor_.local_endpoint(); }
  std::size_t sessions() const { return sessions_.size(); }
  std::size_t pauses() const { return pauses_; }
  void stop() { acceptor_.close(); }

 private:
  void accept() {
    acceptor_.async_accept([this](std::error_code ec, tcp::socket socket) {
      if (ec) return;  // acceptor closed
      start_session(std::move(socket));
      accept();
    });
  }

  static constexpr std::size_t max_output = 256 * 1024;

  void start_session(tcp::socket socket) {
    auto bev = bufev::make_socket_bufferevent<bev_t>(std::move(socket));
    bev->setwatermark(bufev::direction::read, 0, 64 * 1024);
    bev->setwatermark(bufev::direction::write, 16 * 1024, 0);  // write callback at <= 16 KiB
    bev->setcb([this](bev_t& b) { echo(b); },
               [this](bev_t& b) { resume(b); },
               [this](bev_t& b, bufev::events what, std::error_code) {
                 if (bufev::any(what, bufev::events::eof)) {
                   echo(b);      // whatever is still in the input
                   finish(b, true);
                 } else if (bufev::any(what, bufev::events::error)) {
                   finish(b, false);
                 }
               });
    bev->enable(bufev::direction::read);
    bev_t* key = bev.get();
    sessions_.emplace(key, std::move(bev));
  }

  // Moves the input to the output (segments are relinked, not copied). With
  // more than max_output queued, stop reading until the output has drained.
  void echo(bev_t& b) {
    b.write_buffer(b.input());
    if (b.output().size() > max_output && bufev::any(b.enabled(), bufev::direction::read)) {
      ++pauses_;
      b.disable(bufev::direction::read);
    }
  }

  // The write callback: the output drained to the write low watermark.
  void resume(bev_t& b) {
    if (bufev::any(b.enabled(), bufev::direction::read)) return;
    b.enable(bufev::direction::read);
    echo(b);  // what waited in the input meanwhile
  }

  void finish(bev_t& b, bool graceful) {
    auto it = sessions_.find(&b);
    if (it == sessions_.end()) return;
    bufev::bufferevent_ptr<bev_t> bev = std::move(it->second);
    sessions_.erase(it);
    if (graceful) bev.reset_gracefully();  // sends what is queued, then closes
    // otherwise `bev` going out of scope closes it at once
  }

  tcp::acceptor acceptor_;
  std::unordered_map<bev_t*, bufev::bufferevent_ptr<bev_t>> sessions_;
  std::size_t pauses_ = 0;
};
// [server]

// --- clients ----------------------------------------------------------------------

std::string pattern(std::size_t n, std::size_t seed) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 31 + seed * 7 + i / 97) % 26);
  return s;
}

// [client]
struct echo_client {
  bufev::bufferevent_ptr<bev_t> bev;
  std::string data;      // what this client sends
  std::size_t sent = 0;  // bytes of `data` handed to the bufferevent
  std::string echoed;    // what came back
  bool eof = false;
  std::error_code error;

  echo_client(asio::io_context& io, const tcp::endpoint& server, std::string payload)
      : bev(bufev::make_socket_bufferevent<bev_t>(io.get_executor())), data(std::move(payload)) {
    bev->setwatermark(bufev::direction::write, 32 * 1024, 0);  // write callback at <= 32 KiB
    bev->setcb(
        [this](bev_t& b) {
          const std::size_t old = echoed.size();
          echoed.resize(old + b.input().size());
          echoed.resize(old + b.read(echoed.data() + old, echoed.size() - old));
        },
        [this](bev_t&) { produce(); },
        [this](bev_t&, bufev::events what, std::error_code ec) {
          if (bufev::any(what, bufev::events::connected)) produce();
          if (bufev::any(what, bufev::events::eof)) eof = true;
          if (bufev::any(what, bufev::events::error)) error = ec;
        });
    bev->enable(bufev::direction::read);
    if (auto ec = bev->connect(server)) error = ec;
  }

  // Tops the output up to 128 KiB in 8 KiB pieces; the write callback calls
  // again once it has drained to 32 KiB.
  void produce() {
    if (sent == data.size()) return;
    while (sent < data.size() && bev->output().size() < 128 * 1024) {
      const std::size_t n = std::min<std::size_t>(8192, data.size() - sent);
      bev->write(data.data() + sent, n);
      sent += n;
    }
    if (sent == data.size()) bev->shutdown_write();  // half-close once all is sent
  }
  bool done() const { return eof || error; }
};
// [client]

}  // namespace

int main() {
  asio::io_context io;
  echo_server server(io, {asio::ip::address_v4::loopback(), 0});

  constexpr std::size_t clients = 4;
  constexpr std::size_t bytes_each = 1024 * 1024;
  std::vector<std::unique_ptr<echo_client>> cs;
  for (std::size_t i = 0; i < clients; ++i)
    cs.push_back(std::make_unique<echo_client>(io, server.local_endpoint(), pattern(bytes_each, i)));

  // Run until every client has its EOF, bounded so a broken build fails instead of hanging.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  auto all_done = [&] {
    for (auto& c : cs)
      if (!c->done()) return false;
    return true;
  };
  while (!all_done() && std::chrono::steady_clock::now() < deadline)
    io.run_one_for(std::chrono::milliseconds(100));
  server.stop();

  for (std::size_t i = 0; i < clients; ++i) {
    const echo_client& c = *cs[i];
    expect(!c.error, "client saw no error");
    expect(c.eof, "client saw the server's EOF");
    expect(c.echoed.size() == c.data.size(), "every byte came back");
    expect(c.echoed == c.data, "the echo matches what was sent");
    std::printf("client %zu: sent %zu bytes, %zu echoed%s\n", i, c.data.size(), c.echoed.size(),
                c.echoed == c.data ? ", identical" : "");
  }
  expect(server.sessions() == 0, "every session ended");
  std::printf("server paused reading %zu times for backpressure\n", server.pauses());

  if (failures == 0) std::printf("echo_server: ok\n");
  return failures == 0 ? 0 : 1;
}
