// Filter transport costs, in the same process with interleaved repetitions:
//
//   zlib_deflate_L1 / _L6  16 MiB of text written in 256 KiB batches to a zlib
//       filter bufferevent over a pair (its partner drains the compressed
//       bytes), then flush(finished); against raw zlib deflating the same
//       batches in one loop with the same parameters (MiB/s of input)
//   identity_pair_4KiB / _64KiB  a pair stream (messages of that size, 256 KiB
//       batches refilled from the write callback) through an identity filter
//       on the sending side, against the same stream on a bare pair (MiB/s)
#include "bench_common.hpp"

#include <bufev/bufev.hpp>
#include <bufev/filters/zlib.hpp>

#include <zlib.h>

#include <asio/io_context.hpp>

#include <string>
#include <vector>

namespace {

constexpr double mib = 1024.0 * 1024.0;
constexpr std::size_t batch_bytes = 256 * 1024;

using bench::fail;

using pair_t = bufev::pair_bufferevent<>;

std::string text(std::size_t n) {
  static const char* words[] = {"alpha ", "beta ", "gamma ", "delta\n", "epsilon ", "zeta ",
                                "eta ", "theta ", "iota\r\n", "kappa "};
  std::string s;
  s.reserve(n + 16);
  std::uint32_t x = 12345;
  while (s.size() < n) {
    x = x * 1664525u + 1013904223u;
    s += words[(x >> 16) % 10];
    if ((x & 0xff) == 7) s += static_cast<char>(x >> 24);
  }
  s.resize(n);
  return s;
}

// ---- zlib through the filter -----------------------------------------------

std::size_t bufev_deflate(const std::string& data, int level) {
  asio::io_context io{1};
  auto ab_pair = bufev::make_pair(io.get_executor());
  auto& a = ab_pair.first;
  auto& b = ab_pair.second;
  bufev::filters::zlib_options o;
  o.level = level;
  auto fa = bufev::make_filter_bufferevent(std::move(a), bufev::filters::zlib{o});
  std::size_t sent = 0, wire = 0;
  auto refill = [&](auto& bev) {
    if (sent == data.size()) return;
    const std::size_t n = std::min(batch_bytes, data.size() - sent);
    (void)bev.write(data.data() + sent, n);
    sent += n;
    if (sent == data.size()) (void)bev.flush(bufev::direction::write, bufev::flush_mode::finished);
  };
  fa->setcb(nullptr, refill, nullptr);
  b->setcb(
      [&](pair_t& bev) {
        wire += bev.input().size();
        (void)bev.input().drain(bev.input().size());
      },
      nullptr, nullptr);
  b->enable(bufev::direction::read);
  refill(*fa);
  io.run();
  if (sent != data.size() || wire == 0) fail("bufev deflate");
  return wire;
}

std::size_t raw_deflate(const std::string& data, int level) {
  z_stream z{};
  if (deflateInit2(&z, level, Z_DEFLATED, 15, 8, Z_DEFAULT_STRATEGY) != Z_OK) fail("deflateInit2");
  std::vector<unsigned char> out(64 * 1024);
  std::size_t wire = 0;
  for (std::size_t off = 0; off <= data.size();) {
    const std::size_t n = std::min(batch_bytes, data.size() - off);
    const bool last = off + n == data.size();
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data() + off));
    z.avail_in = static_cast<uInt>(n);
    int rc;
    do {
      z.next_out = out.data();
      z.avail_out = static_cast<uInt>(out.size());
      rc = deflate(&z, last ? Z_FINISH : Z_NO_FLUSH);
      wire += out.size() - z.avail_out;
      bench::do_not_optimize(out[0]);
    } while (z.avail_out == 0 || (last && rc != Z_STREAM_END));
    off += n;
    if (last) break;
  }
  deflateEnd(&z);
  return wire;
}

// ---- identity filter over a pair vs a bare pair ------------------------------

template <bool Filtered>
struct stream {
  asio::io_context io{1};
  std::string msg;
  std::size_t total, sent = 0, received = 0;

  stream(std::size_t size, std::size_t total_bytes) : msg(size, 'm'), total(total_bytes) {}

  template <class Bev>
  void refill(Bev& a) {
    for (std::size_t k = 0; k < batch_bytes && sent < total; k += msg.size(), sent += msg.size())
      (void)a.write(msg.data(), msg.size());
  }

  void run() {
    sent = received = 0;
    auto ab_pair = bufev::make_pair(io.get_executor());
    auto& a = ab_pair.first;
    auto& b = ab_pair.second;
    b->setcb(
        [this](pair_t& bev) {
          const std::size_t n = bev.input().size();
          received += n;
          (void)bev.input().drain(n);
        },
        nullptr, nullptr);
    b->enable(bufev::direction::read);
    if constexpr (Filtered) {
      auto fa = bufev::make_filter_bufferevent(std::move(a), bufev::filters::identity{});
      fa->setcb(nullptr, [this](auto& bev) { this->refill(bev); }, nullptr);
      refill(*fa);
      io.restart();
      io.run();
    } else {
      a->setcb(nullptr, [this](pair_t& bev) { refill(bev); }, nullptr);
      refill(*a);
      io.restart();
      io.run();
    }
    if (received != total) fail("identity stream");
  }
};

}  // namespace

int main(int argc, char** argv) {
  bench::runner r(bench::config::from_args(argc, argv));
  const std::size_t zbytes = r.cfg().quick ? (4u << 20) : (16u << 20);
  const std::string data = text(zbytes);
  for (int level : {1, 6}) {
    const std::string name = "zlib_deflate_L" + std::to_string(level);
    if (!r.wants(name)) continue;
    if (bufev_deflate(data, level) != raw_deflate(data, level)) fail("compressed sizes differ");
    r.run(name, "MiB/s", static_cast<double>(zbytes) / mib,
          {{"bufev_zlib_filter", [&] { bufev_deflate(data, level); }, false},
           {"raw_zlib", [&] { raw_deflate(data, level); }}});
  }
  const std::size_t sbytes = r.cfg().quick ? (16u << 20) : (64u << 20);
  for (std::size_t size : {std::size_t{4096}, std::size_t{65536}}) {
    const std::string name = "identity_pair_" + std::to_string(size / 1024) + "KiB";
    if (!r.wants(name)) continue;
    stream<true> filtered(size, sbytes);
    stream<false> bare(size, sbytes);
    r.run(name, "MiB/s", static_cast<double>(sbytes) / mib,
          {{"bufev_identity_filter", [&] { filtered.run(); }, false},
           {"bare_pair", [&] { bare.run(); }}});
  }
  r.summary();
  return 0;
}
