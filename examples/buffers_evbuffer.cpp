// bufev::evbuffer in a few lines: append, parse lines, move data between buffers
// without copying, scatter-append, zero-copy references and change callbacks.
// Exits non-zero if anything does not behave as shown (CI runs it).
#include <array>
#include <cstdio>
#include <string>

#include <bufev/buffers/dynamic_buffer.hpp>
#include <bufev/buffers/evbuffer.hpp>

#define CHECK(cond)                                                 \
  do {                                                              \
    if (!(cond)) {                                                  \
      std::fprintf(stderr, "%s:%d: failed: %s\n", __FILE__, __LINE__, #cond); \
      return 1;                                                     \
    }                                                               \
  } while (0)

int main() {
  std::error_code ec;

  // Append and read lines. readln returns nothing until a whole line is there, and
  // refuses lines longer than max_len so a peer cannot make it buffer without limit.
  bufev::evbuffer in;
  CHECK(!in.add("GET /index.html HTTP/1.1\r\nHost: exam"));
  auto line = in.readln(bufev::eol_style::crlf, 8192, ec);
  CHECK(line && *line == "GET /index.html HTTP/1.1");
  CHECK(!in.readln(bufev::eol_style::crlf, 8192, ec) && !ec);  // "Host: exam" is incomplete
  CHECK(!in.add("ple.org\r\n"));
  CHECK(in.readln(bufev::eol_style::crlf, 8192, ec) == "Host: example.org");

  // Search, peek at the segments, make bytes contiguous.
  CHECK(!in.add("key=value; other=1"));
  CHECK(in.search("other") == 11);
  std::array<asio::const_buffer, 4> extents;
  CHECK(in.peek(bufev::evbuffer::npos, extents) == in.segment_count());
  unsigned char* p = in.pullup(3, ec);
  CHECK(p && std::string(reinterpret_cast<char*>(p), 3) == "key");
  CHECK(!in.drain(in.size()));

  // Move data between buffers: whole segments are relinked, not copied.
  bufev::evbuffer a, b;
  CHECK(!a.add(std::string(100000, 'x')));
  CHECK(!b.add_buffer(a));                    // all of a, now empty
  CHECK(a.empty() && b.size() == 100000);
  CHECK(b.remove_buffer(a, 60000) == 60000);  // the first 60000 bytes back to a
  CHECK(a.size() == 60000 && b.size() == 40000);

  // Scatter-append: reserve space, write into it, commit what was written.
  bufev::evbuffer out;
  std::array<asio::mutable_buffer, 2> space;
  const std::size_t n = out.reserve(64, space, ec);
  CHECK(n >= 1 && !ec);
  const std::string hello = "hello";
  asio::buffer_copy(space[0], asio::buffer(hello));
  std::array<asio::mutable_buffer, 1> written{asio::mutable_buffer(space[0].data(), hello.size())};
  CHECK(!out.commit(written));

  // Zero-copy reference to memory we own: the cleanup runs when the bytes are gone.
  static const char banner[] = " world\n";
  bool released = false;
  CHECK(!out.add_reference(banner, sizeof banner - 1, [&](const void*, std::size_t) { released = true; }));

  // Change callbacks report what happened: {orig_size, n_added, n_deleted}.
  std::size_t drained = 0;
  out.add_cb([&](const bufev::buffer_change& c) { drained += c.n_deleted; });

  // data() is an Asio ConstBufferSequence over the segments (a gather list for
  // asio::async_write); here it is copied into a string instead of a socket.
  std::string sent(asio::buffer_size(out.data()), '\0');
  asio::buffer_copy(asio::buffer(sent), out.data());
  CHECK(sent == "hello world\n");
  out.consume(sent.size());  // what a writer does after writing
  CHECK(released && drained == sent.size());

  // bufev::dynamic_buffer adapts an evbuffer for Asio's read/read_until algorithms
  // (see tests/buffers/test_buffers_asio.cpp for a real socket).
  auto dyn = bufev::dynamic_buffer(in, 1 << 20);
  auto mb = dyn.prepare(5);
  asio::buffer_copy(mb, asio::buffer(std::string("12345")));
  dyn.commit(5);
  CHECK(in.size() == 5);

  std::puts("evbuffer example: ok");
  return 0;
}
