// bufev::evbuffer against libevent 2.1's evbuffer, both with their defaults, in the
// same process with interleaved repetitions. bufev::flat_buffer is shown where the
// operation exists, for information (no RATIO line).
//
//   add_drain_64B / 4KiB / 64KiB  append pieces until 256 KiB (1 MiB for 64 KiB
//                                 pieces) are buffered, then drain piece by piece (MiB/s)
//   add_buffer                    move a 4-segment buffer back and forth (moves/s)
//   readln_crlf                   append CRLF text in 4 KiB reads, readln every line (lines/s)
//   search                        find "\r\n\r\n" at the end of 1 MiB of header lines (MiB/s)
#include "bench_common.hpp"

#include <bufev/buffers/evbuffer.hpp>
#include <bufev/buffers/flat_buffer.hpp>

#include <event2/buffer.h>
#include <event2/event.h>

#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>

namespace {

constexpr double mib = 1024.0 * 1024.0;

struct levbuf_deleter {
  void operator()(evbuffer* b) const noexcept { evbuffer_free(b); }
};
using levbuf = std::unique_ptr<evbuffer, levbuf_deleter>;
levbuf make_levbuf() {
  levbuf b(evbuffer_new());
  if (!b) throw std::runtime_error("evbuffer_new failed");
  return b;
}

using bench::fail;

// --- add + drain ------------------------------------------------------------

void add_drain(bench::runner& r, std::size_t piece, const char* name) {
  if (!r.wants(name)) return;
  const std::size_t total = piece >= 65536 ? 1024 * 1024 : 256 * 1024;
  const std::size_t count = total / piece;
  const std::string data(piece, 'd');

  auto ours = std::make_shared<bufev::evbuffer>();
  auto flat = std::make_shared<bufev::flat_buffer>();
  auto theirs = std::shared_ptr<evbuffer>(make_levbuf().release(), levbuf_deleter{});

  r.run(name, "MiB/s", static_cast<double>(total) / mib,
        {{"bufev",
          [=] {
            for (std::size_t i = 0; i < count; ++i)
              if (ours->add(data.data(), piece)) fail("evbuffer add");
            for (std::size_t i = 0; i < count; ++i)
              if (ours->drain(piece)) fail("evbuffer drain");
          }},
         {"libevent",
          [=] {
            for (std::size_t i = 0; i < count; ++i)
              if (evbuffer_add(theirs.get(), data.data(), piece) != 0) fail("libevent add");
            for (std::size_t i = 0; i < count; ++i)
              if (evbuffer_drain(theirs.get(), piece) != 0) fail("libevent drain");
          }},
         {"bufev_flat",
          [=] {
            for (std::size_t i = 0; i < count; ++i)
              if (flat->add(data.data(), piece)) fail("flat add");
            for (std::size_t i = 0; i < count; ++i)
              if (flat->drain(piece)) fail("flat drain");
          },
          false}});
}

// --- add_buffer moves -------------------------------------------------------

void add_buffer(bench::runner& r) {
  if (!r.wants("add_buffer")) return;
  constexpr int moves = 2000;  // per call, alternating direction
  const std::string piece(4096, 'm');

  auto a = std::make_shared<bufev::evbuffer>();
  auto b = std::make_shared<bufev::evbuffer>();
  auto la = std::shared_ptr<evbuffer>(make_levbuf().release(), levbuf_deleter{});
  auto lb = std::shared_ptr<evbuffer>(make_levbuf().release(), levbuf_deleter{});
  for (int i = 0; i < 4; ++i) {
    if (a->add(piece)) fail("evbuffer add");
    if (evbuffer_add(la.get(), piece.data(), piece.size()) != 0) fail("libevent add");
  }

  r.run("add_buffer", "moves/s", moves,
        {{"bufev",
          [=] {
            for (int i = 0; i < moves; i += 2) {
              if (b->add_buffer(*a)) fail("evbuffer add_buffer");
              if (a->add_buffer(*b)) fail("evbuffer add_buffer");
            }
            if (a->size() != 4 * 4096) fail("evbuffer add_buffer size");
          }},
         {"libevent", [=] {
            for (int i = 0; i < moves; i += 2) {
              if (evbuffer_add_buffer(lb.get(), la.get()) != 0) fail("libevent add_buffer");
              if (evbuffer_add_buffer(la.get(), lb.get()) != 0) fail("libevent add_buffer");
            }
            if (evbuffer_get_length(la.get()) != 4 * 4096) fail("libevent add_buffer size");
          }}});
}

// --- readln -----------------------------------------------------------------

std::string crlf_text(std::size_t bytes, std::size_t& lines) {
  std::string text;
  lines = 0;
  unsigned seed = 12345;
  while (text.size() < bytes) {
    seed = seed * 1103515245u + 12345u;
    const std::size_t len = 20 + (seed >> 16) % 100;  // 20..119 bytes of line
    text += "X-Header-" + std::to_string(lines) + ": ";
    text.append(len, static_cast<char>('a' + lines % 26));
    text += "\r\n";
    ++lines;
  }
  return text;
}

void readln(bench::runner& r) {
  if (!r.wants("readln_crlf")) return;
  std::size_t lines = 0;
  const std::string text = crlf_text(64 * 1024, lines);
  constexpr std::size_t read_size = 4096;  // what one socket read would deliver

  auto ours = std::make_shared<bufev::evbuffer>();
  auto flat = std::make_shared<bufev::flat_buffer>();
  auto theirs = std::shared_ptr<evbuffer>(make_levbuf().release(), levbuf_deleter{});

  r.run("readln_crlf", "lines/s", static_cast<double>(lines),
        {{"bufev",
          [=] {
            std::size_t n = 0;
            std::error_code ec;
            for (std::size_t off = 0; off < text.size(); off += read_size) {
              if (ours->add(text.data() + off, std::min(read_size, text.size() - off)))
                fail("evbuffer add");
              while (auto line = ours->readln(bufev::eol_style::crlf, bufev::evbuffer::npos, ec)) {
                bench::do_not_optimize(line->data());
                ++n;
              }
            }
            if (n != lines || !ours->empty()) fail("evbuffer readln count");
          }},
         {"libevent",
          [=] {
            std::size_t n = 0;
            for (std::size_t off = 0; off < text.size(); off += read_size) {
              if (evbuffer_add(theirs.get(), text.data() + off,
                               std::min(read_size, text.size() - off)) != 0)
                fail("libevent add");
              std::size_t len = 0;
              while (char* line = evbuffer_readln(theirs.get(), &len, EVBUFFER_EOL_CRLF)) {
                bench::do_not_optimize(line);
                std::free(line);
                ++n;
              }
            }
            if (n != lines || evbuffer_get_length(theirs.get()) != 0) fail("libevent readln count");
          }},
         {"bufev_flat",
          [=] {
            std::size_t n = 0;
            std::error_code ec;
            for (std::size_t off = 0; off < text.size(); off += read_size) {
              if (flat->add(text.data() + off, std::min(read_size, text.size() - off)))
                fail("flat add");
              while (auto line = flat->readln(bufev::eol_style::crlf, bufev::flat_buffer::npos, ec)) {
                bench::do_not_optimize(line->data());
                ++n;
              }
            }
            if (n != lines || !flat->empty()) fail("flat readln count");
          },
          false}});
}

// --- search -----------------------------------------------------------------

void search(bench::runner& r) {
  if (!r.wants("search")) return;
  std::size_t lines = 0;
  std::string text = crlf_text(1024 * 1024, lines);
  text += "\r\n";  // the end of the "headers": the only CRLFCRLF
  const std::size_t expect = text.size() - 4;
  constexpr std::size_t read_size = 4096;

  auto ours = std::make_shared<bufev::evbuffer>();
  auto flat = std::make_shared<bufev::flat_buffer>();
  auto theirs = std::shared_ptr<evbuffer>(make_levbuf().release(), levbuf_deleter{});
  for (std::size_t off = 0; off < text.size(); off += read_size) {
    const std::size_t n = std::min(read_size, text.size() - off);
    if (ours->add(text.data() + off, n) || flat->add(text.data() + off, n) ||
        evbuffer_add(theirs.get(), text.data() + off, n) != 0)
      fail("search setup");
  }

  r.run("search", "MiB/s", static_cast<double>(text.size()) / mib,
        {{"bufev",
          [=] {
            if (ours->search("\r\n\r\n", 4) != expect) fail("evbuffer search");
          }},
         {"libevent",
          [=] {
            const evbuffer_ptr p = evbuffer_search(theirs.get(), "\r\n\r\n", 4, nullptr);
            if (p.pos < 0 || static_cast<std::size_t>(p.pos) != expect) fail("libevent search");
          }},
         {"bufev_flat",
          [=] {
            if (flat->search("\r\n\r\n", 4) != expect) fail("flat search");
          },
          false}});
}

}  // namespace

int main(int argc, char** argv) {
  bench::runner r(bench::config::from_args(argc, argv));
  std::printf("bufev::evbuffer vs libevent %s evbuffer (both with defaults)%s\n",
              event_get_version(), r.cfg().quick ? " [quick]" : "");
  add_drain(r, 64, "add_drain_64B");
  add_drain(r, 4096, "add_drain_4KiB");
  add_drain(r, 65536, "add_drain_64KiB");
  add_buffer(r);
  readln(r);
  search(r);
  r.summary();
  return 0;
}
