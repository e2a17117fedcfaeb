// What an outside project compiles against bufev: the public headers, standalone Asio and
// Asio coroutines (whose clang 14 defines must reach consumers through bufev's usage
// requirements or bufev.pc). Exits non-zero if anything is off.
#include <bufev/bufev.hpp>

#include <asio.hpp>

#include <cstdio>
#include <string>

#ifndef ASIO_STANDALONE
#error "bufev consumers must get ASIO_STANDALONE"
#endif

namespace {

asio::awaitable<int> answer() { co_return 42; }

}  // namespace

int main() {
  int failures = 0;
  auto check = [&](bool ok, const char* what) {
    if (!ok) {
      std::fprintf(stderr, "consumer check failed: %s\n", what);
      ++failures;
    }
  };

  std::error_code ec = bufev::errc::line_too_long;
  check(ec.category() == bufev::error_category(), "errc converts to std::error_code");
  check(std::string(ec.category().name()) == "bufev", "category name");
  check(bufev::any(bufev::events::reading | bufev::events::eof, bufev::events::eof),
        "event flags combine");

  bufev::evbuffer buf;
  check(!buf.add("hello\r\nrest"), "evbuffer add");
  auto line = buf.readln(bufev::eol_style::crlf, 64, ec);
  check(line && *line == "hello" && !ec && buf.size() == 4, "evbuffer readln");

  asio::io_context io;
  int got = 0;
  asio::co_spawn(io, answer(), [&](std::exception_ptr e, int v) {
    check(!e, "coroutine completed without exception");
    got = v;
  });
  io.run();
  check(got == 42, "Asio coroutine ran on the io_context");

  if (failures == 0) std::puts("bufev consumer: ok");
  return failures == 0 ? 0 : 1;
}
