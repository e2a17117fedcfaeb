// Loopback socket helpers shared by the socket suites.
#pragma once

#include <utility>

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

}  // namespace bufev::test
