// Loopback socket helpers shared by the socket suites.
#pragma once

#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

namespace bufev::test {

/// A listening socket on 127.0.0.1 (or ::1) with an ephemeral port.
struct listener {
  asio::ip::tcp::acceptor acceptor;
  explicit listener(asio::io_context& io,
                    asio::ip::tcp::endpoint ep = {asio::ip::address_v4::loopback(), 0})
      : acceptor(io, ep) {}
  asio::ip::tcp::endpoint endpoint() const { return acceptor.local_endpoint(); }
  asio::ip::tcp::socket accept() { return acceptor.accept(); }
};

/// Two connected TCP sockets on loopback.
inline std::pair<asio::ip::tcp::socket, asio::ip::tcp::socket> socket_pair(asio::io_context& io) {
  listener l(io);
  asio::ip::tcp::socket client(io);
  client.connect(l.endpoint());
  return {std::move(client), l.accept()};
}

/// Reads a plain socket asynchronously until EOF or an error, collecting the bytes.
struct peer_reader {
  std::string got;
  std::error_code end;  // set when reading stopped (eof on a clean end)
  bool done() const { return bool(end); }
  void start(asio::ip::tcp::socket& s, std::size_t chunk = 65536) {
    buf_.resize(chunk);
    s.async_read_some(asio::buffer(buf_), [this, &s](std::error_code ec, std::size_t n) {
      got.append(buf_.data(), n);
      if (ec) end = ec;
      else start(s, buf_.size());
    });
  }

 private:
  std::vector<char> buf_;
};

}  // namespace bufev::test
