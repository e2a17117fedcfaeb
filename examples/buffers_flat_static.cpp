// flat_buffer and static_buffer<N> in a few lines: append, read lines with a
// length limit, search, scatter-free reads through prepare/commit, and the errors
// a fixed-capacity buffer reports. Returns non-zero if anything is not as shown.
#include <bufev/buffers/flat_buffer.hpp>
#include <bufev/buffers/static_buffer.hpp>

#include <cstdio>
#include <cstring>
#include <string>

namespace {
int failures = 0;
void expect(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "FAILED: %s\n", what);
    ++failures;
  }
}
}  // namespace

int main() {
  // --- flat_buffer: one contiguous, growable array --------------------------
  bufev::flat_buffer in(64 * 1024);  // never holds more than 64 KiB
  in.add("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");

  // Headers end at the first empty line; data() is always one contiguous span,
  // so a parser can look at it in place.
  const std::size_t end = in.search("\r\n\r\n");
  expect(end == 34, "search finds the end of the headers");

  std::error_code ec;
  std::string status = in.readln(bufev::eol_style::crlf, 8192, ec).value_or("");
  expect(status == "HTTP/1.1 200 OK", "readln returns the status line");
  while (auto line = in.readln(bufev::eol_style::crlf, 8192, ec)) {
    if (line->empty()) break;  // end of headers
    std::printf("header: %s\n", line->c_str());
  }
  char body[5];
  expect(in.remove(body, sizeof body) == 5 && std::memcmp(body, "hello", 5) == 0,
         "remove takes the body");
  expect(in.empty(), "everything consumed");

  // Reading from a socket goes through prepare/commit (what asio::read_until does
  // via bufev::dynamic_buffer(in)).
  auto room = in.prepare(16);
  std::memcpy(room.data(), "partial", 7);
  in.commit(7);  // only 7 of the 16 prepared bytes arrived
  expect(in.size() == 7, "commit makes the received bytes readable");
  expect(!in.readln(bufev::eol_style::lf, 8192, ec) && !ec, "no full line yet: wait");
  in.add(" line\n");
  expect(in.readln(bufev::eol_style::lf, 8192, ec) == "partial line", "line completed");

  // A peer that never sends an end of line cannot make us buffer forever.
  in.add(std::string(100, 'x'));
  expect(!in.readln(bufev::eol_style::lf, 80, ec) && ec == bufev::errc::line_too_long,
         "over-long line reported");
  expect(in.size() == 100, "and left in the buffer");
  in.drain(in.size());

  // --- static_buffer<N>: fixed capacity, inline, never allocates ------------
  bufev::static_buffer<16> frame;
  frame.add("0123456789");
  expect(frame.add("too much!") == bufev::errc::buffer_full, "capacity enforced");
  expect(frame.size() == 10, "nothing added by the refused append");
  frame.drain(4);
  frame.prepend("[", 1);  // reuses the drained room in front
  frame.add("]", 1);
  expect(std::string(static_cast<const char*>(frame.data().data()), frame.size()) ==
             "[456789]",
         "prepend and add around the data");

  // Freezing an end refuses the operations that touch it.
  frame.freeze(bufev::buffer_end::front);
  expect(frame.drain(1) == bufev::errc::frozen, "frozen front refuses drain");
  frame.unfreeze(bufev::buffer_end::front);
  expect(!frame.drain(1), "unfrozen again");

  if (failures == 0) std::printf("buffers_flat_static: ok\n");
  return failures == 0 ? 0 : 1;
}
