// evbuffer parsing a CRLF line protocol that arrives in pieces.
// The test suite runs it and it exits non-zero if anything is not as printed.
#include <bufev/buffers/evbuffer.hpp>

#include <array>
#include <cstdio>
#include <string>
#include <string_view>
#include <system_error>

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
  using bufev::eol_style;
  bufev::evbuffer input;

  // A peer's bytes arrive in arbitrary pieces; CR and LF of one line end up apart.
  // add_reference links each piece as its own segment without copying it.
  const std::string_view pieces[] = {"HELO client.exam", "ple\r", "\nMAIL FROM:<a@b>\r\nDA",
                                     "TA\r\n"};
  for (std::string_view p : pieces)
    expect(!input.add_reference(p.data(), p.size()), "add_reference links the piece");
  std::printf("buffered %zu bytes in %zu segments\n", input.size(), input.segment_count());

  // peek: look at the bytes in place, one extent per segment, nothing copied.
  std::array<asio::const_buffer, 8> extents;
  const std::size_t n = input.peek(bufev::evbuffer::npos, extents);
  expect(n == 4, "one extent per piece");
  for (std::size_t i = 0; i < n && i < extents.size(); ++i)
    std::printf("  extent %zu: %zu bytes at the piece's own address: %s\n", i, extents[i].size(),
                extents[i].data() == pieces[i].data() ? "yes" : "NO");
  expect(extents[1].data() == pieces[1].data(), "peek returns the referenced memory itself");

  // add: copies bytes in (small appends fill the last segment's free space).
  const std::size_t before = input.size();
  expect(!input.add("QUIT\r\n") && input.size() == before + 6, "add appends");

  // readln: whole lines only, the CRLF may straddle segments, and a cap on the length.
  std::error_code ec;
  std::string lines[4];
  for (std::string& line : lines) {
    auto got = input.readln(eol_style::crlf_strict, 512, ec);
    expect(got.has_value() && !ec, "a complete line is read");
    if (got) line = *got;
    std::printf("line: \"%s\"\n", line.c_str());
  }
  expect(lines[0] == "HELO client.example", "CRLF split across segments");
  expect(lines[1] == "MAIL FROM:<a@b>", "second line");
  expect(lines[2] == "DATA", "third line");
  expect(lines[3] == "QUIT", "fourth line");
  expect(input.empty(), "every byte consumed");

  // An incomplete line stays buffered until its end arrives.
  expect(!input.add("NO"), "add");
  expect(!input.readln(eol_style::crlf_strict, 512, ec) && !ec, "partial line waits");
  expect(!input.add("OP\r\n"), "add");
  auto noop = input.readln(eol_style::crlf_strict, 512, ec);
  expect(noop && *noop == "NOOP", "line completes when its CRLF arrives");

  // A peer that never sends CRLF cannot make the reader buffer without limit.
  expect(!input.add(std::string(600, 'x')), "add");
  expect(!input.readln(eol_style::crlf_strict, 512, ec), "over-long line is not returned");
  std::printf("600 bytes without CRLF: %s\n", ec.message().c_str());
  expect(ec == bufev::errc::line_too_long, "over-long line reported as line_too_long");
  expect(input.size() == 600, "buffer left intact for the caller to decide");

  if (failures == 0)
    std::printf("demo: ok\n");
  else
    std::printf("demo: %d check(s) failed\n", failures);
  return failures == 0 ? 0 : 1;
}
