// Plain loopback TCP connections for the socket benchmarks (POSIX).
#pragma once

#include <cstddef>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench_common.hpp"

namespace bench::net {

inline void raise_fd_limit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &rl);
  }
}

inline std::size_t fd_limit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 1024;
  return rl.rlim_cur == RLIM_INFINITY ? 1u << 20 : static_cast<std::size_t>(rl.rlim_cur);
}

struct fd_pair {
  int client = -1;
  int server = -1;
};

inline void set_nodelay(int fd) {
  int one = 1;
  (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

// n connected loopback TCP connections (client end, accepted end).
inline std::vector<fd_pair> make_connections(std::size_t n) {
  const int l = ::socket(AF_INET, SOCK_STREAM, 0);
  if (l < 0) fail("socket");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (::bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(l, 128) != 0 ||
      ::getsockname(l, reinterpret_cast<sockaddr*>(&a), &len) != 0)
    fail("listen");
  std::vector<fd_pair> v;
  v.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    fd_pair p;
    p.client = ::socket(AF_INET, SOCK_STREAM, 0);
    if (p.client < 0 || ::connect(p.client, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
      fail("connect (fd limit?)");
    p.server = ::accept(l, nullptr, nullptr);
    if (p.server < 0) fail("accept");
    set_nodelay(p.client);
    set_nodelay(p.server);
    v.push_back(p);
  }
  ::close(l);
  return v;
}

}  // namespace bench::net
