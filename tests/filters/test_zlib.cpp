// The zlib filter against the system's zlib and gzip, byte for byte, corrupt
// and hostile input, and a three-layer stack under backpressure.
#include <bufev/bufev.hpp>
#include <bufev/filters/zlib.hpp>

#include <zlib.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <unistd.h>

#include <asio/io_context.hpp>

#include "support/catch.hpp"
#include "support/data.hpp"
#include "support/drive.hpp"

using namespace bufev;
using bufev::filters::zlib_errc;
using bufev::filters::zlib_format;
using bufev::filters::zlib_options;
using bufev::test::drain_ready;
using bufev::test::run_until;
using bufev::test::take_all;

namespace {

using pair_t = pair_bufferevent<>;

// Compressible but not trivial: words from a small vocabulary, pseudo-random.
std::string text(std::size_t n, std::uint32_t seed = 1) {
  static const char* words[] = {"alpha ", "beta ", "gamma ", "delta\n", "epsilon ", "zeta ",
                                "eta ", "theta ", "iota\r\n", "kappa "};
  std::string s;
  s.reserve(n + 16);
  std::uint32_t x = seed;
  while (s.size() < n) {
    x = x * 1664525u + 1013904223u;
    s += words[(x >> 16) % 10];
    if ((x & 0xff) == 7) s += static_cast<char>(x >> 24);  // some binary noise
  }
  s.resize(n);
  return s;
}

int wbits(zlib_format f, int wb = 15) {
  return f == zlib_format::raw ? -wb : f == zlib_format::gzip ? wb + 16 : wb;
}

std::string sys_deflate(const std::string& data, zlib_format f, int level = 6) {
  z_stream z{};
  REQUIRE(deflateInit2(&z, level, Z_DEFLATED, wbits(f), 8, Z_DEFAULT_STRATEGY) == Z_OK);
  std::string out(deflateBound(&z, data.size()) + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  REQUIRE(deflate(&z, Z_FINISH) == Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

// Inflates every concatenated stream; fails the test on any error.
std::string sys_inflate(const std::string& comp, zlib_format f) {
  std::string out;
  z_stream z{};
  REQUIRE(inflateInit2(&z, wbits(f)) == Z_OK);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(comp.data()));
  z.avail_in = static_cast<uInt>(comp.size());
  char buf[16384];
  int rc = Z_OK;
  while (z.avail_in != 0 || rc != Z_STREAM_END) {
    z.next_out = reinterpret_cast<Bytef*>(buf);
    z.avail_out = sizeof buf;
    rc = inflate(&z, Z_NO_FLUSH);
    out.append(buf, sizeof buf - z.avail_out);
    if (rc == Z_STREAM_END) {
      if (z.avail_in == 0) break;
      inflateReset(&z);
      continue;
    }
    REQUIRE(rc == Z_OK);
  }
  CHECK(rc == Z_STREAM_END);
  inflateEnd(&z);
  return out;
}


// Compresses `data` through a zlib filter bufferevent over a pair, written in
// `piece`-sized writes, then flush(finished); returns what reached the partner.
std::string filter_compress(const std::string& data, zlib_options o, std::size_t piece) {
  asio::io_context io;
  auto ab_pair = bufev::make_pair(io.get_executor());
  auto& a = ab_pair.first;
  auto& b = ab_pair.second;
  auto fa = make_filter_bufferevent(std::move(a), filters::zlib{o});
  std::string wire;
  b->setcb([&](pair_t& bev) { wire += take_all(bev); }, nullptr, nullptr);
  b->enable(direction::read);
  for (std::size_t off = 0; off < data.size(); off += piece) {
    REQUIRE_FALSE(fa->write(data.substr(off, piece)));
    drain_ready(io);
  }
  CHECK(fa->flush(direction::write, flush_mode::finished) == 1);
  drain_ready(io);
  wire += take_all(*b);
  return wire;
}

struct inflate_run {
  std::string data;
  std::vector<std::pair<events, std::error_code>> evs;
};

// Sends `comp` raw through a pair, `max_transfer` bytes per transfer, into a
// zlib filter bufferevent; then closes the sender (EOF).
inflate_run filter_decompress(const std::string& comp, zlib_options o, std::size_t max_transfer = unlimited) {
  asio::io_context io;
  pair_faults faults;
  faults.max_transfer = max_transfer;
  auto ab_pair = bufev::make_pair(io.get_executor(), faults);
  auto& a = ab_pair.first;
  auto& b = ab_pair.second;
  auto fb = make_filter_bufferevent(std::move(b), filters::zlib{o});
  inflate_run r;
  fb->setcb([&](auto& bev) { r.data += take_all(bev); }, nullptr,
            [&](auto& bev, events e, std::error_code ec) {
              r.data += take_all(bev);
              r.evs.emplace_back(e, ec);
            });
  fb->enable(direction::read);
  REQUIRE_FALSE(a->write(comp));
  REQUIRE(run_until(io, [&] { return a->output().empty() || !r.evs.empty(); }, std::chrono::seconds(30)));
  a.reset();
  REQUIRE(run_until(io, [&] { return !r.evs.empty(); }));
  drain_ready(io);
  return r;
}

std::filesystem::path temp_path(const std::string& name) {
  return std::filesystem::temp_directory_path() /
         ("bufev_filters_" + std::to_string(::getpid()) + "_" + name);
}
void write_file(const std::filesystem::path& p, const std::string& s) {
  std::ofstream f(p, std::ios::binary);
  f.write(s.data(), static_cast<std::streamsize>(s.size()));
}
std::string read_file(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

}  // namespace

TEST_CASE("zlib: bufev-compressed data decompresses with the system zlib, byte for byte",
          "[zlib][interop]") {
  const std::string data = text(300000);
  for (auto fmt : {zlib_format::raw, zlib_format::zlib, zlib_format::gzip}) {
    for (int level : {0, 1, 6, 9}) {
      zlib_options o;
      o.format = fmt;
      o.level = level;
      INFO("format " << static_cast<int>(fmt) << " level " << level);
      const std::string comp = filter_compress(data, o, 7000);
      if (level != 0) CHECK(comp.size() < data.size() / 2);
      CHECK(sys_inflate(comp, fmt) == data);
    }
  }
  // Small window and memory, and zlib's own one-shot uncompress() on zlib framing.
  zlib_options o;
  o.window_bits = 9;
  o.mem_level = 1;
  const std::string comp = filter_compress(data, o, 100000);
  std::string out(data.size(), '\0');
  uLongf out_len = static_cast<uLongf>(out.size());
  REQUIRE(uncompress(reinterpret_cast<Bytef*>(out.data()), &out_len,
                     reinterpret_cast<const Bytef*>(comp.data()), static_cast<uLong>(comp.size())) == Z_OK);
  CHECK(out_len == data.size());
  CHECK(out == data);
}

TEST_CASE("zlib: system-compressed data decompresses through the filter, split at every byte",
          "[zlib][interop][split]") {
  const std::string data = text(600, 7);
  for (auto fmt : {zlib_format::raw, zlib_format::zlib, zlib_format::gzip}) {
    const std::string comp = sys_deflate(data, fmt);
    INFO("format " << static_cast<int>(fmt) << ", " << comp.size() << " compressed bytes");
    // Direct calls on the filter object, the stream split at every offset.
    for (std::size_t k = 0; k <= comp.size(); ++k) {
      zlib_options o;
      o.format = fmt;
      filters::zlib z(o);
      evbuffer src, dst;
      REQUIRE_FALSE(src.add(comp.data(), k));
      REQUIRE(z.filter_input(src, dst, unlimited, flush_mode::normal) == filter_result::ok);
      REQUIRE_FALSE(src.add(comp.data() + k, comp.size() - k));
      REQUIRE(z.filter_input(src, dst, unlimited, flush_mode::normal) == filter_result::ok);
      REQUIRE(z.filter_input(src, dst, unlimited, flush_mode::finished) == filter_result::ok);
      std::string out(dst.size(), '\0');
      dst.copyout(out.data(), out.size());
      if (out != data) FAIL("split at " << k);
    }
    // Through the transport, one byte per transfer.
    zlib_options o;
    o.format = fmt;
    const inflate_run r = filter_decompress(comp, o, 1);
    CHECK(r.data == data);
    REQUIRE(r.evs.size() == 1);
    CHECK(r.evs[0].first == (events::reading | events::eof));
  }
  // And the deflate side: bufev output split at every offset inflates with zlib.
  for (std::size_t k = 0; k <= data.size(); k += 1) {
    filters::zlib z;
    evbuffer src, dst;
    REQUIRE_FALSE(src.add(data.data(), k));
    REQUIRE(z.filter_output(src, dst, unlimited, flush_mode::normal) == filter_result::ok);
    REQUIRE_FALSE(src.add(data.data() + k, data.size() - k));
    REQUIRE(z.filter_output(src, dst, unlimited, flush_mode::normal) == filter_result::ok);
    REQUIRE(z.filter_output(src, dst, unlimited, flush_mode::finished) == filter_result::ok);
    std::string comp(dst.size(), '\0');
    dst.copyout(comp.data(), comp.size());
    if (sys_inflate(comp, zlib_format::zlib) != data) FAIL("deflate split at " << k);
  }
}

TEST_CASE("zlib: gzip framing interoperates with the gzip command", "[zlib][interop][gzip]") {
#if defined(_WIN32)
  WARN("no gzip command in the Windows build (cmd.exe, wine): skipped");
  return;
#endif
  REQUIRE(std::system("command -v gzip > /dev/null 2>&1") == 0);
  const std::string data = text(200000, 3);
  const auto gz = temp_path("out.gz");
  const auto plain = temp_path("plain");
  // bufev -> gzip -d
  zlib_options o;
  o.format = zlib_format::gzip;
  write_file(gz, filter_compress(data, o, 5000));
  REQUIRE(std::system(("gzip -dc " + gz.string() + " > " + plain.string()).c_str()) == 0);
  CHECK(read_file(plain) == data);
  // gzip -> bufev, with gzip framing and with automatic detection
  write_file(plain, data);
  REQUIRE(std::system(("gzip -9 -c " + plain.string() + " > " + gz.string()).c_str()) == 0);
  const std::string comp = read_file(gz);
  REQUIRE(comp.size() > 18);
  for (auto fmt : {zlib_format::gzip, zlib_format::automatic}) {
    zlib_options oi;
    oi.format = fmt;
    const inflate_run r = filter_decompress(comp, oi);
    CHECK(r.data == data);
    REQUIRE(r.evs.size() == 1);
    CHECK(r.evs[0].first == (events::reading | events::eof));
  }
  // Concatenated gzip members (what `cat a.gz b.gz` makes) read as one stream.
  zlib_options og;
  og.format = zlib_format::gzip;
  const inflate_run twice = filter_decompress(comp + comp, og);
  CHECK(twice.data == data + data);
  std::filesystem::remove(gz);
  std::filesystem::remove(plain);
}

TEST_CASE("zlib: corrupt input gives an error event, never a crash or a hang", "[zlib][error]") {
  const std::string data = text(50000, 5);
  std::string comp = sys_deflate(data, zlib_format::zlib);
  SECTION("a corrupt header") {
    comp[0] = 0x00;
    const inflate_run r = filter_decompress(comp, {});
    REQUIRE(!r.evs.empty());
    CHECK(r.evs[0].first == (events::reading | events::error));
    CHECK(r.evs[0].second == zlib_errc::data_error);
    CHECK(r.evs[0].second.category() == filters::zlib_category());
  }
  SECTION("flipped bytes in the middle") {
    for (std::size_t i = comp.size() / 3; i < comp.size() / 3 + 40; ++i) comp[i] = static_cast<char>(~comp[i]);
    const inflate_run r = filter_decompress(comp, {});
    REQUIRE(!r.evs.empty());
    CHECK(r.evs[0].first == (events::reading | events::error));
    CHECK(r.evs[0].second.category() == filters::zlib_category());
  }
  SECTION("a truncated stream, then EOF") {
    comp.resize(comp.size() / 2);
    const inflate_run r = filter_decompress(comp, {});
    REQUIRE(!r.evs.empty());
    CHECK(r.evs[0].first == (events::reading | events::error));
    CHECK(r.evs[0].second == zlib_errc::truncated_stream);
    CHECK(data.compare(0, r.data.size(), r.data) == 0);  // what was decoded is right
  }
  SECTION("random garbage") {
    std::string junk(5000, '\0');
    std::uint32_t x = 99;
    for (auto& c : junk) c = static_cast<char>((x = x * 1103515245u + 12345u) >> 24);
    for (auto fmt : {zlib_format::raw, zlib_format::zlib, zlib_format::gzip}) {
      zlib_options o;
      o.format = fmt;
      const inflate_run r = filter_decompress(junk, o);
      REQUIRE(!r.evs.empty());
      CHECK(any(r.evs[0].first, events::error));
    }
  }
}

TEST_CASE("zlib: the decompression ratio limit stops a zip bomb", "[zlib][error][bomb]") {
  const std::string zeros(64 * 1024 * 1024, '\0');
  const std::string bomb = sys_deflate(zeros, zlib_format::zlib, 9);
  REQUIRE(bomb.size() < 100 * 1024);  // ~1000:1
  zlib_options o;
  o.max_ratio = 100;
  const inflate_run r = filter_decompress(bomb, o);
  REQUIRE(!r.evs.empty());
  CHECK(r.evs[0].first == (events::reading | events::error));
  CHECK(r.evs[0].second == zlib_errc::ratio_exceeded);
  CHECK(r.data.size() < 8 * 1024 * 1024);  // stopped early, bounded memory
  // The same stream within the limit passes.
  o.max_ratio = 2000;
  const inflate_run ok = filter_decompress(bomb, o);
  CHECK(ok.data.size() == zeros.size());
}

TEST_CASE("zlib: flush(write, flush) makes everything written so far decodable",
          "[zlib][rule13]") {
  asio::io_context io;
  auto ab_pair = bufev::make_pair(io.get_executor());
  auto& a = ab_pair.first;
  auto& b = ab_pair.second;
  auto fa = make_filter_bufferevent(std::move(a), filters::zlib{});
  auto fb = make_filter_bufferevent(std::move(b), filters::zlib{});
  std::string got;
  fb->setcb([&](auto& bev) { got += take_all(bev); }, nullptr, nullptr);
  fb->enable(direction::read);
  REQUIRE_FALSE(fa->write("request 1\n"));
  drain_ready(io);
  CHECK(got.empty());  // deflate keeps small input until it is flushed
  CHECK(fa->flush(direction::write, flush_mode::flush) == 1);
  REQUIRE(run_until(io, [&] { return got == "request 1\n"; }));
  // sync_flush: every write decodable at once.
  auto cd_pair = bufev::make_pair(io.get_executor());
  auto& c = cd_pair.first;
  auto& d = cd_pair.second;
  zlib_options o;
  o.sync_flush = true;
  auto fc = make_filter_bufferevent(std::move(c), filters::zlib{o});
  auto fd = make_filter_bufferevent(std::move(d), filters::zlib{});
  std::string got2;
  fd->setcb([&](auto& bev) { got2 += take_all(bev); }, nullptr, nullptr);
  fd->enable(direction::read);
  REQUIRE_FALSE(fc->write("ping"));
  REQUIRE(run_until(io, [&] { return got2 == "ping"; }));
}

namespace {
using stack_top = decltype(make_stack(std::declval<bufferevent_ptr<pair_t>>(), filters::length_prefix{},
                                      filters::zlib{}, filters::identity{}));

// 256 MiB takes about 2 s in a Debug build; sanitizers are ~10x slower.
std::size_t stress_bytes() { return bufev::test::stress_bytes(256, 32, "BUFEV_FILTER_STRESS_MIB"); }
}  // namespace

TEST_CASE("filter stack: framing | zlib | identity over a pair moves data with checksums under backpressure",
          "[zlib][stack][stress]") {
  const std::size_t total = stress_bytes();
  const std::size_t mark = 4096;
  asio::io_context io;
  auto ab_pair = bufev::make_pair(io.get_executor());
  auto& a = ab_pair.first;
  auto& b = ab_pair.second;
  zlib_options zo;
  zo.level = 1;
  auto tx = make_stack(std::move(a), filters::length_prefix{1024}, filters::zlib{zo}, filters::identity{});
  auto rx = make_stack(std::move(b), filters::length_prefix{1024}, filters::zlib{zo}, filters::identity{});
  static_assert(std::is_same_v<decltype(tx), stack_top>);
  // Small marks at every layer, both directions of flow.
  for (auto* bev : {&rx->lowest_layer()}) REQUIRE_FALSE(bev->setwatermark(direction::read, 0, mark));
  REQUIRE_FALSE(rx->next_layer().next_layer().setwatermark(direction::read, 0, mark));
  REQUIRE_FALSE(rx->next_layer().setwatermark(direction::read, 0, mark));
  REQUIRE_FALSE(rx->setwatermark(direction::read, 0, mark));
  REQUIRE_FALSE(tx->lowest_layer().setwatermark(direction::write, 0, mark));
  REQUIRE_FALSE(tx->next_layer().next_layer().setwatermark(direction::write, 0, mark));
  REQUIRE_FALSE(tx->next_layer().setwatermark(direction::write, 0, mark));

  // One block of pseudo-random text, sent at rotating offsets so the stream
  // never repeats exactly; crc32 over everything sent and received.
  const std::string block = text(1 << 20, 11);
  std::size_t sent = 0, received = 0, max_rx_input = 0, max_mid_output = 0, max_wire = 0;
  uLong crc_tx = crc32(0, nullptr, 0), crc_rx = crc32(0, nullptr, 0);
  std::vector<events> rx_events;
  bool done_sending = false;
  auto produce = [&](auto& bev) {
    while (sent < total && bev.output().size() < 65536) {
      const std::size_t n = std::min<std::size_t>(total - sent, 16384);
      const std::size_t off = (sent * 7) % (block.size() - n);
      REQUIRE_FALSE(bev.write(block.data() + off, n));
      crc_tx = crc32(crc_tx, reinterpret_cast<const Bytef*>(block.data() + off), static_cast<uInt>(n));
      sent += n;
    }
    max_mid_output = std::max(max_mid_output, tx->next_layer().next_layer().output().size());
    max_wire = std::max(max_wire, tx->lowest_layer().output().size());
    if (sent == total && !done_sending) {
      done_sending = true;
      bev.close_gracefully();  // every trailer reaches the pair, then EOF
    }
  };
  tx->setcb(nullptr, produce, nullptr);
  rx->setcb(
      [&](auto& bev) {
        max_rx_input = std::max(max_rx_input, bev.input().size());
        char buf[8192];
        while (std::size_t n = bev.read(buf, sizeof buf)) {
          crc_rx = crc32(crc_rx, reinterpret_cast<const Bytef*>(buf), static_cast<uInt>(n));
          received += n;
        }
      },
      nullptr, [&](auto&, events e, std::error_code ec) {
        rx_events.push_back(e);
        if (ec) FAIL_CHECK("receiver error: " << ec.category().name() << ": " << ec.message());
      });
  rx->enable(direction::read);
  produce(*tx);
  REQUIRE(run_until(io, [&] { return !rx_events.empty(); }, std::chrono::seconds(120)));
  CHECK(rx_events == std::vector<events>{events::reading | events::eof});
  CHECK(received == total);
  CHECK(crc_rx == crc_tx);
  CHECK(max_rx_input <= mark);
  CHECK(max_mid_output <= 2 * mark);
  CHECK(max_wire <= mark);  // framing stops at the pair's write high mark
  CHECK(max_rx_input == mark);  // the reader's mark was reached: inflate was held back
}
