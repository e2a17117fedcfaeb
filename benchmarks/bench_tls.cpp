// TLS filter throughput, cipher suite fixed to TLS_AES_128_GCM_SHA256 (TLS 1.3):
//
//   tls_pair_aes128gcm  a TLS connection over a pair (both ends bufev, one
//       thread): 16 MiB of plaintext written in 256 KiB batches, encrypted by
//       one filter, decrypted by the other (MiB/s of plaintext). Peers:
//       - evp_aes128gcm_enc_dec: the same bytes AES-128-GCM encrypted and then
//         decrypted with EVP in 16 KiB records in one loop, in process (the
//         cipher work a TLS connection does, without TLS or bufev);
//       - openssl_speed: `openssl speed -evp aes-128-gcm`'s 16384-byte column,
//         run as a child process; encryption only, so half of it is the bound
//         for encrypt + decrypt on one core (printed as openssl_speed_half).
//   tls_stack_256MiB  framing | zlib(level 1) | TLS over a loopback TCP socket,
//       256 MiB (64 MiB with --quick) with checksums, small watermarks at every
//       layer; one run, no peer (the size the issue asks for; tests use less).
#include "bench_common.hpp"

#include <bufev/bufev.hpp>
#include <bufev/filters/tls.hpp>
#include <bufev/filters/zlib.hpp>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace {

constexpr double mib = 1024.0 * 1024.0;
constexpr std::size_t batch_bytes = 256 * 1024;
const char* const suite = "TLS_AES_128_GCM_SHA256";

using bench::fail;

// One handler. run_one() stops the io_context when the last handler leaves it
// without work, so a later call must restart it first. False: nothing to run.
bool step(asio::io_context& io) {
  if (io.stopped()) io.restart();
  return io.run_one() != 0;
}

struct key_and_cert {
  std::string key, cert;
};

std::string bio_string(BIO* b) {
  char* p = nullptr;
  const long n = BIO_get_mem_data(b, &p);
  return std::string(p, static_cast<std::size_t>(n));
}

key_and_cert make_cert() {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* x = X509_new();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x), 3600);
  X509_set_pubkey(x, key);
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
  X509_set_issuer_name(x, name);
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, x, x, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &v3, NID_subject_alt_name, "DNS:localhost");
  X509_add_ext(x, ext, -1);
  X509_EXTENSION_free(ext);
  X509_sign(x, key, EVP_sha256());
  key_and_cert r;
  BIO* b = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(b, key, nullptr, nullptr, 0, nullptr, nullptr);
  r.key = bio_string(b);
  BIO_free(b);
  b = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(b, x);
  r.cert = bio_string(b);
  BIO_free(b);
  X509_free(x);
  EVP_PKEY_free(key);
  return r;
}

struct contexts {
  bufev::tls_context client = bufev::tls_context::client();
  bufev::tls_context server = bufev::tls_context::server();
  explicit contexts(const key_and_cert& kc) {
    if (client.add_certificate_authority(kc.cert) || server.use_certificate_chain(kc.cert) ||
        server.use_private_key(kc.key) || client.set_ciphersuites(suite) || server.set_ciphersuites(suite) ||
        client.set_min_protocol_version(TLS1_3_VERSION))
      fail("tls context setup");
  }
};

// ---- TLS over a pair -----------------------------------------------------------

class tls_pair_stream {
 public:
  tls_pair_stream(const contexts& ctx, const std::string& data) : data_(data) {
    auto [a, b] = bufev::make_pair(io_.get_executor());
    client_ = std::move(a) | bufev::filters::tls::client(ctx.client, "localhost");
    server_ = std::move(b) | bufev::filters::tls::server(ctx.server);
    client_->setcb(nullptr, nullptr, [this](auto&, bufev::events e, std::error_code) { ev_ |= e; });
    server_->setcb([this](auto& bev) { received_ += bev.input().size(); (void)bev.input().drain(bev.input().size()); },
                   nullptr, [this](auto&, bufev::events e, std::error_code) { ev_ |= e; });
    server_->enable(bufev::direction::read);
    while (!bufev::any(ev_, bufev::events::connected | bufev::events::error))
      if (!step(io_)) fail("tls handshake stalled");
    if (bufev::any(ev_, bufev::events::error)) fail("tls handshake");
    if (client_->transport().filter().cipher() != suite) fail("cipher suite");
  }

  void run() {
    received_ = 0;
    sent_ = 0;
    client_->setcb(nullptr, [this](auto& bev) { refill(bev); },
                   [this](auto&, bufev::events e, std::error_code) { ev_ |= e; });
    refill(*client_);
    while (received_ < data_.size() && !bufev::any(ev_, bufev::events::error))
      if (!step(io_)) fail("tls pair stream stalled");
    if (received_ != data_.size()) fail("tls pair stream");
  }

 private:
  template <class Bev>
  void refill(Bev& bev) {
    while (sent_ < data_.size() && bev.output().size() < batch_bytes) {
      const std::size_t n = std::min<std::size_t>(64 * 1024, data_.size() - sent_);
      (void)bev.write(data_.data() + sent_, n);
      sent_ += n;
    }
  }

  asio::io_context io_{1};
  using top_t = decltype(std::declval<bufev::bufferevent_ptr<bufev::pair_bufferevent<>>>() |
                         std::declval<bufev::filters::tls>());
  top_t client_, server_;
  const std::string& data_;
  std::size_t sent_ = 0, received_ = 0;
  bufev::events ev_ = bufev::events::none;
};

// ---- the cipher alone ------------------------------------------------------------

std::size_t evp_enc_dec(const std::string& data) {
  static const unsigned char key[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  unsigned char iv[12] = {};
  std::vector<unsigned char> ct(16384 + 16), pt(16384);
  EVP_CIPHER_CTX* enc = EVP_CIPHER_CTX_new();
  EVP_CIPHER_CTX* dec = EVP_CIPHER_CTX_new();
  EVP_EncryptInit_ex(enc, EVP_aes_128_gcm(), nullptr, key, nullptr);
  EVP_DecryptInit_ex(dec, EVP_aes_128_gcm(), nullptr, key, nullptr);
  std::size_t total = 0;
  std::uint64_t seq = 0;
  for (std::size_t off = 0; off < data.size(); off += 16384) {
    const int n = static_cast<int>(std::min<std::size_t>(16384, data.size() - off));
    ++seq;
    std::memcpy(iv + 4, &seq, 8);  // a fresh nonce per record, as TLS does
    int len = 0, fin = 0;
    unsigned char tag[16];
    EVP_EncryptInit_ex(enc, nullptr, nullptr, nullptr, iv);
    EVP_EncryptUpdate(enc, ct.data(), &len, reinterpret_cast<const unsigned char*>(data.data() + off), n);
    EVP_EncryptFinal_ex(enc, ct.data() + len, &fin);
    EVP_CIPHER_CTX_ctrl(enc, EVP_CTRL_GCM_GET_TAG, 16, tag);
    EVP_DecryptInit_ex(dec, nullptr, nullptr, nullptr, iv);
    EVP_DecryptUpdate(dec, pt.data(), &len, ct.data(), n);
    EVP_CIPHER_CTX_ctrl(dec, EVP_CTRL_GCM_SET_TAG, 16, tag);
    if (EVP_DecryptFinal_ex(dec, pt.data() + len, &fin) != 1) fail("gcm tag");
    total += static_cast<std::size_t>(len);
  }
  EVP_CIPHER_CTX_free(enc);
  EVP_CIPHER_CTX_free(dec);
  return total;
}

// `openssl speed -evp aes-128-gcm`'s 16384-byte figure in MiB/s, or 0.
double openssl_speed(bool quick) {
  const std::string cmd = std::string("openssl speed -evp aes-128-gcm -bytes 16384 -seconds ") +
                          (quick ? "1" : "3") + " 2>/dev/null";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return 0;
  std::string out;
  char buf[512];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  ::pclose(p);
  // The last line: "AES-128-GCM   <k bytes/s>" (thousands of bytes per second).
  const auto pos = out.rfind("AES-128-GCM");
  if (pos == std::string::npos) return 0;
  const double kbps = std::strtod(out.c_str() + pos + 11, nullptr);
  return kbps * 1000.0 / mib;
}

// ---- framing | zlib | TLS over a socket ---------------------------------------------

double stack_run(const contexts& ctx, std::size_t total) {
  using tcp = asio::ip::tcp;
  using sock_t = bufev::tcp_bufferevent<>;
  asio::io_context io{1};
  tcp::acceptor acc(io, {asio::ip::address_v4::loopback(), 0});
  tcp::socket cs(io);
  cs.connect(acc.local_endpoint());
  tcp::socket ss = acc.accept();
  auto csock = bufev::make_socket_bufferevent<sock_t>(std::move(cs));
  auto ssock = bufev::make_socket_bufferevent<sock_t>(std::move(ss));
  csock->setwatermark(bufev::direction::write, 0, 64 * 1024);
  ssock->setwatermark(bufev::direction::read, 0, 64 * 1024);
  bufev::filters::zlib_options zo;
  zo.level = 1;
  auto client = bufev::make_stack(std::move(csock), bufev::filters::tls::client(ctx.client, "localhost"),
                                  bufev::filters::zlib{zo}, bufev::filters::length_prefix{16 * 1024});
  auto server = bufev::make_stack(std::move(ssock), bufev::filters::tls::server(ctx.server),
                                  bufev::filters::zlib{zo}, bufev::filters::length_prefix{16 * 1024});
  server->setwatermark(bufev::direction::read, 0, 64 * 1024);
  server->underlying().setwatermark(bufev::direction::read, 0, 64 * 1024);
  server->underlying().underlying().setwatermark(bufev::direction::read, 0, 64 * 1024);
  client->underlying().setwatermark(bufev::direction::write, 0, 64 * 1024);
  client->underlying().underlying().setwatermark(bufev::direction::write, 0, 64 * 1024);
  client->setwatermark(bufev::direction::write, 64 * 1024, 128 * 1024);

  std::uint64_t sent_sum = 0, got_sum = 0;
  std::size_t sent = 0, got = 0;
  std::uint32_t rng = 7;
  std::string chunk(16 * 1024, '\0');
  auto sum = [](std::uint64_t& s, const char* p, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) s = (s ^ static_cast<unsigned char>(p[i])) * 1099511628211ull;
  };
  auto refill = [&](auto& bev) {
    while (sent < total && bev.output().size() < 128 * 1024) {
      const std::size_t n = std::min(chunk.size(), total - sent);
      for (std::size_t i = 0; i < n; ++i) {
        rng = rng * 1664525u + 1013904223u;
        chunk[i] = (i & 64) ? static_cast<char>(rng >> 24) : static_cast<char>('a' + (sent + i) % 23);
      }
      sum(sent_sum, chunk.data(), n);
      (void)bev.write(chunk.data(), n);
      sent += n;
    }
  };
  bufev::events sev = bufev::events::none, cev = bufev::events::none;
  client->setcb(nullptr, refill, [&](auto&, bufev::events e, std::error_code) { cev |= e; });
  server->setcb(
      [&](auto& bev) {
        char buf[16384];
        while (std::size_t n = bev.read(buf, sizeof buf)) {
          sum(got_sum, buf, n);
          got += n;
        }
      },
      nullptr, [&](auto&, bufev::events e, std::error_code) { sev |= e; });
  server->enable(bufev::direction::read);
  const auto start = std::chrono::steady_clock::now();
  refill(*client);
  while (sent < total && !bufev::any(cev | sev, bufev::events::error))
    if (!step(io)) fail("tls stack stalled");
  client.reset_gracefully();
  while (!bufev::any(sev, bufev::events::eof | bufev::events::error))
    if (!step(io)) fail("tls stack close stalled");
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (got != total || got_sum != sent_sum || bufev::any(sev, bufev::events::error)) fail("tls stack stream");
  return static_cast<double>(total) / mib / secs;
}

}  // namespace

int main(int argc, char** argv) {
  bench::runner r(bench::config::from_args(argc, argv));
  const key_and_cert kc = make_cert();
  const contexts ctx(kc);
  const std::size_t bytes = r.cfg().quick ? (4u << 20) : (16u << 20);
  std::string data(bytes, '\0');
  for (std::size_t i = 0; i < bytes; ++i) data[i] = static_cast<char>(i * 2654435761u >> 24);

  const std::string name = "tls_pair_aes128gcm";
  if (r.wants(name)) {
    if (evp_enc_dec(data) != bytes) fail("evp");
    tls_pair_stream stream(ctx, data);
    r.run(name, "MiB/s", static_cast<double>(bytes) / mib,
          {{"bufev_tls_pair", [&] { stream.run(); }, false},
           {"evp_aes128gcm_enc_dec", [&] { bench::do_not_optimize(evp_enc_dec(data)); }}});
    // openssl speed as a fixed figure (it times itself).
    const double speed = openssl_speed(r.cfg().quick);
    if (speed > 0) {
      // Ours again for the ratio line (median of a few runs, same units).
      std::vector<double> runs;
      for (int i = 0; i < 7; ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        stream.run();
        runs.push_back(static_cast<double>(bytes) / mib /
                       std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      }
      std::sort(runs.begin(), runs.end());
      const double ours = runs[runs.size() / 2];
      std::printf("  %-22s %14.1f MiB/s (encryption only)\n", "openssl_speed", speed);
      std::printf("BENCH scenario=%s impl=openssl_speed value=%.3f unit=MiB/s\n", name.c_str(), speed);
      std::printf("BENCH scenario=%s impl=openssl_speed_half value=%.3f unit=MiB/s\n", name.c_str(), speed / 2);
      std::printf("RATIO scenario=%s vs=openssl_speed value=%.4f\n", name.c_str(), ours / speed);
      std::printf("RATIO scenario=%s vs=openssl_speed_half value=%.4f\n", name.c_str(), ours / (speed / 2));
    } else {
      std::printf("  openssl speed not available: no figure\n");
    }
  }
  const std::string sname = "tls_stack_256MiB";
  if (r.wants(sname)) {
    const std::size_t total = r.cfg().quick ? (64u << 20) : (256u << 20);
    const double v = stack_run(ctx, total);
    std::printf("%s (%zu MiB, checksums match)\n  %-22s %14.1f MiB/s\n", sname.c_str(), total >> 20,
                "bufev_stack", v);
    std::printf("BENCH scenario=%s impl=bufev_stack value=%.3f unit=MiB/s\n", sname.c_str(), v);
  }
  r.summary();
  return 0;
}
