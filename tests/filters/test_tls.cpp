// The TLS filter (spec section 7): over pairs (both ends bufev, fast and
// deterministic), against real `openssl s_server` / `s_client` processes on
// 127.0.0.1, and as the bottom of a framing | zlib | TLS stack over a socket.
// Certificates are generated at test time with OpenSSL's APIs.
#include <bufev/bufev.hpp>
#include <bufev/filters/tls.hpp>
#include <bufev/filters/zlib.hpp>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <array>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <asio/write.hpp>

#include "support/catch.hpp"
#include "support/lifetime.hpp"
#include "support/data.hpp"
#include "support/drive.hpp"

extern char** environ;

using namespace bufev;
using bufev::test::drain_ready;
using bufev::test::pattern;
using bufev::test::take_all;
using bufev::test::lifetime_probe;
using bufev::test::run_until;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

// ---- certificates ---------------------------------------------------------------

struct key_and_cert {
  std::string key_pem;
  std::string cert_pem;
};

std::string bio_string(BIO* b) {
  char* p = nullptr;
  const long n = BIO_get_mem_data(b, &p);
  return std::string(p, static_cast<std::size_t>(n));
}

// A P-256 key and a self-signed certificate for CN=`cn`, SAN DNS:`cn`, IP:127.0.0.1.
key_and_cert make_self_signed(const std::string& cn) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  REQUIRE(key);
  X509* x = X509_new();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x), 3600L * 24);
  X509_set_pubkey(x, key);
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(x, name);
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, x, x, nullptr, nullptr, 0);
  const std::string san = "DNS:" + cn + ",IP:127.0.0.1";
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &v3, NID_subject_alt_name, san.c_str());
  REQUIRE(ext);
  X509_add_ext(x, ext, -1);
  X509_EXTENSION_free(ext);
  REQUIRE(X509_sign(x, key, EVP_sha256()) > 0);
  key_and_cert r;
  BIO* kb = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(kb, key, nullptr, nullptr, 0, nullptr, nullptr);
  r.key_pem = bio_string(kb);
  BIO_free(kb);
  BIO* cb = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(cb, x);
  r.cert_pem = bio_string(cb);
  BIO_free(cb);
  X509_free(x);
  EVP_PKEY_free(key);
  return r;
}

const key_and_cert& localhost_cert() {
  static const key_and_cert c = make_self_signed("localhost");
  return c;
}

tls_context server_ctx() {
  auto c = tls_context::server();
  REQUIRE_FALSE(c.use_certificate_chain(localhost_cert().cert_pem));
  REQUIRE_FALSE(c.use_private_key(localhost_cert().key_pem));
  return c;
}

tls_context client_ctx(bool trust_test_ca = true) {
  auto c = tls_context::client();
  if (trust_test_ca) REQUIRE_FALSE(c.add_certificate_authority(localhost_cert().cert_pem));
  return c;
}

// ---- temp dir and child processes -----------------------------------------------

struct temp_dir {
  std::string path;
  std::vector<std::string> files;
  temp_dir() {
    char tmpl[] = "/tmp/bufev_tls_XXXXXX";
    const char* p = ::mkdtemp(tmpl);
    REQUIRE(p);
    path = p;
  }
  std::string write(const std::string& name, const std::string& content) {
    const std::string f = path + "/" + name;
    std::ofstream(f, std::ios::binary) << content;
    files.push_back(f);
    return f;
  }
  std::string file(const std::string& name) {
    files.push_back(path + "/" + name);
    return files.back();
  }
  ~temp_dir() {
    for (auto& f : files) ::unlink(f.c_str());
    ::rmdir(path.c_str());
  }
};

bool have_openssl_binary() { return std::system("command -v openssl >/dev/null 2>&1") == 0; }

/// A child process with its stdin and stdout on pipes (stdout read
/// asynchronously into `out`), stderr to a file. The destructor kills and
/// reaps it whatever happened.
class child_process {
 public:
  child_process(asio::io_context& io, const std::vector<std::string>& args, const std::string& stderr_path)
      : out_(io) {
    int in[2], out[2];
    REQUIRE(::pipe(in) == 0);
    REQUIRE(::pipe(out) == 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_addopen(&fa, 2, stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addclose(&fa, in[1]);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    const int rc = ::posix_spawnp(&pid_, argv[0], &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    ::close(in[0]);
    ::close(out[1]);
    stdin_fd_ = in[1];
    if (rc != 0) {
      pid_ = -1;
      ::close(out[0]);
      FAIL("posix_spawnp failed: " << rc);
    }
    ::fcntl(out[0], F_SETFD, FD_CLOEXEC);
    ::fcntl(stdin_fd_, F_SETFD, FD_CLOEXEC);
    out_.assign(out[0]);
    read_more();
  }
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;

  ~child_process() {
    close_stdin();
    std::error_code ec;
    out_.close(ec);
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      int st = 0;
      ::waitpid(pid_, &st, 0);
    }
  }

  const std::string& out() const noexcept { return output_; }
  bool out_closed() const noexcept { return out_eof_; }

  void write_stdin(const std::string& s) {
    REQUIRE(stdin_fd_ >= 0);
    REQUIRE(::write(stdin_fd_, s.data(), s.size()) == static_cast<ssize_t>(s.size()));
  }
  void close_stdin() {
    if (stdin_fd_ >= 0) ::close(stdin_fd_);
    stdin_fd_ = -1;
  }
  void kill(int sig) {
    if (pid_ > 0) ::kill(pid_, sig);
  }
  /// Non-blocking: the exit status once the child has exited.
  std::optional<int> try_wait() {
    if (pid_ <= 0) return status_;
    int st = 0;
    if (::waitpid(pid_, &st, WNOHANG) == pid_) {
      pid_ = -1;
      status_ = st;
    }
    return status_;
  }

 private:
  void read_more() {
    out_.async_read_some(asio::buffer(buf_), [this](std::error_code ec, std::size_t n) {
      output_.append(buf_.data(), n);
      if (ec) {
        out_eof_ = true;
        return;
      }
      read_more();
    });
  }

  pid_t pid_ = -1;
  int stdin_fd_ = -1;
  std::optional<int> status_;
  asio::posix::stream_descriptor out_;
  std::array<char, 4096> buf_{};
  std::string output_;
  bool out_eof_ = false;
};

std::string file_contents(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

/// `openssl s_server` on an ephemeral port (-accept 0), one connection.
struct s_server {
  temp_dir dir;
  std::string err_path = dir.file("s_server.err");
  std::unique_ptr<child_process> proc;
  unsigned short port = 0;

  explicit s_server(asio::io_context& io, std::vector<std::string> extra = {"-rev"}) {
    const auto cert = dir.write("cert.pem", localhost_cert().cert_pem);
    const auto key = dir.write("key.pem", localhost_cert().key_pem);
    std::vector<std::string> args{"openssl", "s_server", "-accept", "0", "-naccept", "1",
                                  "-cert",   cert,       "-key",    key};
    args.insert(args.end(), extra.begin(), extra.end());
    proc = std::make_unique<child_process>(io, args, err_path);
    // It prints "ACCEPT [::]:PORT" once listening.
    REQUIRE(run_until(io, [&] { return proc->out().find("ACCEPT") != std::string::npos &&
                                       proc->out().find('\n', proc->out().find("ACCEPT")) != std::string::npos; }));
    const std::string& o = proc->out();
    const auto line_end = o.find('\n', o.find("ACCEPT"));
    const auto colon = o.rfind(':', line_end);
    port = static_cast<unsigned short>(std::stoi(o.substr(colon + 1, line_end - colon - 1)));
    INFO(o);
    REQUIRE(port != 0);
  }
  tcp::endpoint endpoint() const { return {asio::ip::address_v4::loopback(), port}; }
};

using tcp_bev = tcp_bufferevent<>;

struct event_log {
  std::vector<std::pair<events, std::error_code>> list;
  bool has(events e) const {
    for (auto& [w, ec] : list)
      if (any(w, e)) return true;
    return false;
  }
  std::error_code error() const {
    for (auto& [w, ec] : list)
      if (any(w, events::error)) return ec;
    return {};
  }
  std::size_t count(events e) const {
    std::size_t n = 0;
    for (auto& [w, ec] : list)
      if (any(w, e)) ++n;
    return n;
  }
};

std::uint64_t fnv1a(const std::string& s) {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

template <class Bev>
void record(Bev& bev, std::string& got, event_log& log) {
  bev.setcb([&got](auto& b) { got += take_all(b); }, nullptr,
            [&log](auto&, events e, std::error_code ec) { log.list.emplace_back(e, ec); });
  bev.enable(direction::read);
}

}  // namespace

// ---- over a pair: both ends bufev -----------------------------------------------

TEST_CASE("tls over a pair: handshake, connected once, data both ways, SNI", "[tls][pair]") {
  asio::io_context io;
  auto [a, b] = bufev::make_pair(io.get_executor());
  auto client = std::move(a) | filters::tls::client(client_ctx(), "localhost");
  auto server = std::move(b) | filters::tls::server(server_ctx());
  std::string cgot, sgot;
  event_log cev, sev;
  record(*client, cgot, cev);
  record(*server, sgot, sev);
  const std::string up = pattern(300000), down = pattern(200000, 5);
  REQUIRE_FALSE(client->write(up));  // before the handshake: waits for it
  REQUIRE(run_until(io, [&] { return cev.has(events::connected) && sev.has(events::connected); }));
  REQUIRE_FALSE(server->write(down));
  REQUIRE(run_until(io, [&] { return sgot.size() == up.size() && cgot.size() == down.size(); }));
  CHECK(sgot == up);
  CHECK(cgot == down);
  drain_ready(io);
  CHECK(cev.list.size() == 1);
  CHECK(sev.list.size() == 1);
  auto& cf = client->transport().filter();
  auto& sf = server->transport().filter();
  CHECK(cf.handshake_done());
  CHECK(sf.server_name() == "localhost");
  CHECK(cf.protocol() == "TLSv1.3");
  CHECK(cf.cipher() == sf.cipher());
}

TEST_CASE("tls over a pair: graceful close sends close_notify: eof after every byte", "[tls][pair][close]") {
  asio::io_context io;
  auto [a, b] = bufev::make_pair(io.get_executor());
  auto client = std::move(a) | filters::tls::client(client_ctx(), "localhost");
  auto server = std::move(b) | filters::tls::server(server_ctx());
  std::string sgot, cgot;
  event_log sev, cev;
  record(*server, sgot, sev);
  record(*client, cgot, cev);
  const std::string data = pattern(100000);
  // After the handshake here; before it: "graceful close before the handshake" below.
  REQUIRE(run_until(io, [&] { return cev.has(events::connected); }));
  REQUIRE_FALSE(client->write(data));
  client.reset_gracefully();  // data, then close_notify, then the pair closes
  REQUIRE(run_until(io, [&] { return sev.has(events::eof) || sev.has(events::error); }));
  CHECK(sgot == data);
  CHECK_FALSE(sev.has(events::error));
  CHECK(server->transport().filter().peer_closed());
  CHECK(sev.count(events::eof) == 1);
  drain_ready(io);
  CHECK(sev.count(events::eof) == 1);
}

TEST_CASE("tls over a pair: close without close_notify is truncation, unless dirty shutdown is allowed",
          "[tls][pair][close]") {
  const bool allow = GENERATE(false, true);
  asio::io_context io;
  auto [a, b] = bufev::make_pair(io.get_executor());
  auto client = std::move(a) | filters::tls::client(client_ctx(), "localhost");
  filters::tls_options o;
  o.allow_dirty_shutdown = allow;
  auto server = std::move(b) | filters::tls::server(server_ctx(), o);
  std::string sgot, cgot;
  event_log sev, cev;
  record(*server, sgot, sev);
  record(*client, cgot, cev);
  REQUIRE_FALSE(client->write("last words"));
  REQUIRE(run_until(io, [&] { return sgot == "last words"; }));
  client.reset();  // plain close: no close_notify
  REQUIRE(run_until(io, [&] { return sev.has(events::eof) || sev.has(events::error); }));
  if (allow) {
    CHECK(sev.has(events::eof));
    CHECK_FALSE(sev.has(events::error));
  } else {
    CHECK_FALSE(sev.has(events::eof));
    CHECK(sev.error() == make_error_code(tls_errc::stream_truncated));
    CHECK(sev.error().category().name() == std::string("tls"));
  }
}

TEST_CASE("tls over a pair: wrong host name and untrusted certificate fail the handshake",
          "[tls][pair][verify]") {
  struct scenario {
    const char* name;
    bool trust;
    long expect;
  };
  const auto s = GENERATE(scenario{"example.com", true, X509_V_ERR_HOSTNAME_MISMATCH},
                          scenario{"localhost", false, X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT},
                          scenario{"127.0.0.2", true, X509_V_ERR_IP_ADDRESS_MISMATCH});
  asio::io_context io;
  auto [a, b] = bufev::make_pair(io.get_executor());
  auto client = std::move(a) | filters::tls::client(client_ctx(s.trust), s.name);
  auto server = std::move(b) | filters::tls::server(server_ctx());
  std::string sgot, cgot;
  event_log sev, cev;
  record(*server, sgot, sev);
  record(*client, cgot, cev);
  REQUIRE_FALSE(client->write("secret"));
  REQUIRE(run_until(io, [&] { return cev.has(events::error); }));
  const std::error_code ec = cev.error();
  INFO(ec.message());
  CHECK(ec.category() == tls_category());
  CHECK(tls_verify_result(ec) == s.expect);
  CHECK(ec.message().find("certificate verify failed") != std::string::npos);
  CHECK_FALSE(cev.has(events::connected));
  // The alert reaches the server when the client closes gracefully.
  client.reset_gracefully();
  REQUIRE(run_until(io, [&] { return sev.has(events::error); }));
  CHECK(sev.error().category() == tls_category());
  CHECK(tls_openssl_error(sev.error()) != 0);
  INFO(sev.error().message());
  CHECK(sgot.empty());
  CHECK_FALSE(sev.has(events::connected));
}

TEST_CASE("tls over a pair: a verifying client without a server name is an error, not a silent skip",
          "[tls][pair][verify]") {
  asio::io_context io;
  auto [a, b] = bufev::make_pair(io.get_executor());
  auto client = std::move(a) | filters::tls::client(client_ctx(), "");
  event_log cev;
  std::string cgot;
  record(*client, cgot, cev);
  REQUIRE(run_until(io, [&] { return cev.has(events::error); }));
  CHECK(cev.error() == make_error_code(tls_errc::missing_server_name));
}

TEST_CASE("tls over a pair: a record held inside OpenSSL is delivered without more input (issues 854, 690)",
          "[tls][pair][pending]") {
  asio::io_context io;
  auto [a, b] = bufev::make_pair(io.get_executor());
  auto client = std::move(a) | filters::tls::client(client_ctx(), "localhost");
  auto server = std::move(b) | filters::tls::server(server_ctx());
  std::string sgot, cgot;
  event_log sev, cev;
  record(*client, cgot, cev);
  server->setcb(nullptr, nullptr, [&](auto&, events e, std::error_code ec) { sev.list.emplace_back(e, ec); });
  server->setwatermark(direction::read, 0, 1000);
  server->enable(direction::read);
  REQUIRE(run_until(io, [&] { return cev.has(events::connected) && sev.has(events::connected); }));
  const std::string data = pattern(16000);  // one record: decrypted whole, delivered 1000 at a time
  REQUIRE_FALSE(client->write(data));
  // At most 1000 bytes reach the input at a time; the rest of the record must
  // follow although the lower input is empty once the record is decrypted.
  std::size_t callbacks = 0;
  server->setcb(
      [&](auto& bev) {
        ++callbacks;
        CHECK(bev.input().size() <= 1000);
        sgot += take_all(bev);
      },
      nullptr, nullptr);
  REQUIRE(run_until(io, [&] { return sgot.size() == data.size(); }, 5s));
  CHECK(sgot == data);
  CHECK(callbacks >= 16);
  CHECK(server->underlying().input().empty());
}

TEST_CASE("tls over a pair: flush(write, finished) sends close_notify, the peer reads eof", "[tls][pair][close]") {
  asio::io_context io;
  auto [a, b] = bufev::make_pair(io.get_executor());
  auto client = std::move(a) | filters::tls::client(client_ctx(), "localhost");
  auto server = std::move(b) | filters::tls::server(server_ctx());
  std::string sgot, cgot;
  event_log sev, cev;
  record(*server, sgot, sev);
  record(*client, cgot, cev);
  REQUIRE(run_until(io, [&] { return cev.has(events::connected); }));
  REQUIRE_FALSE(client->write("bye"));
  REQUIRE(client->flush(direction::write, flush_mode::finished) >= 0);
  REQUIRE(run_until(io, [&] { return sev.has(events::eof) || sev.has(events::error); }));
  CHECK(sgot == "bye");
  CHECK_FALSE(sev.has(events::error));
  // The server answers with its own close_notify.
  server.reset_gracefully();
  REQUIRE(run_until(io, [&] { return cev.has(events::eof) || cev.has(events::error); }));
  CHECK_FALSE(cev.has(events::error));
  // Writing after close_notify is an error, never bytes stuck in the output.
  REQUIRE_FALSE(client->write("too late"));
  REQUIRE(run_until(io, [&] { return cev.has(events::error); }));
  INFO(cev.error().message());
  CHECK(tls_openssl_error(cev.error()) != 0);
}

// ---- graceful close before the handshake (spec rule 10) ------------------------------

namespace {

// `closer` writes `data` and closes gracefully right away, long before its
// handshake can be done; `peer` must read every byte, then eof (close_notify),
// and the closer must be freed afterwards.
template <class Closer, class Peer>
void check_graceful_before_handshake(asio::io_context& io, bufferevent_ptr<Closer> closer, Peer& peer,
                                     const std::string& data) {
  lifetime_probe probe;
  probe.attach(*closer);
  std::string got;
  event_log ev;
  record(peer, got, ev);
  REQUIRE_FALSE(closer->write(data));
  CHECK_FALSE(closer->transport().filter().handshake_done());
  closer.reset_gracefully();
  REQUIRE(run_until(io, [&] { return ev.has(events::eof) || ev.has(events::error); }, 30s));
  INFO(ev.error().message());
  CHECK_FALSE(ev.has(events::error));
  CHECK(ev.has(events::connected));
  CHECK(got.size() == data.size());
  CHECK(fnv1a(got) == fnv1a(data));
  const bool same = got == data;  // (not printed: 1 MiB)
  CHECK(same);
  CHECK(ev.count(events::eof) == 1);
  CHECK(peer.transport().filter().peer_closed());
  REQUIRE(run_until(io, [&] { return probe.freed(); }, 5s));
  CHECK(*probe.calls == 0);
}

using tls_tcp = filter_bufferevent<tcp_bev, filters::tls>;

}  // namespace

TEST_CASE("tls: a graceful close before the handshake sends every byte, then close_notify (rule 10)",
          "[tls][close][graceful]") {
  asio::io_context io;
  const std::string data = pattern(std::size_t{1} << 20, 3);  // 1 MiB
  SECTION("client over a pair") {
    auto [a, b] = bufev::make_pair(io.get_executor());
    auto server = std::move(b) | filters::tls::server(server_ctx());
    check_graceful_before_handshake(io, std::move(a) | filters::tls::client(client_ctx(), "localhost"), *server,
                                    data);
  }
  SECTION("server over a pair") {
    auto [a, b] = bufev::make_pair(io.get_executor());
    auto client = std::move(a) | filters::tls::client(client_ctx(), "localhost");
    check_graceful_before_handshake(io, std::move(b) | filters::tls::server(server_ctx()), *client, data);
  }
  SECTION("client over TCP, closed while its connect is in progress") {
    tcp::acceptor acc(io, {asio::ip::address_v4::loopback(), 0});
    bufferevent_ptr<tls_tcp> server;
    // TLS 1.3 servers send session tickets once they have the client's
    // Finished, after this client has sent its last byte and shut down: the
    // socket's lingering close reads and discards them, so the kernel does
    // not reset the connection under the data still on its way.
    auto sctx = server_ctx();
    acc.async_accept([&](std::error_code ec, tcp::socket s) {
      REQUIRE_FALSE(ec);
      server = make_socket_bufferevent<tcp_bev>(std::move(s)) | filters::tls::server(sctx);
    });
    auto csock = make_socket_bufferevent<tcp_bev>(io.get_executor());
    REQUIRE_FALSE(csock->connect(acc.local_endpoint()));
    auto client = std::move(csock) | filters::tls::client(client_ctx(), "localhost");
    lifetime_probe probe;
    probe.attach(*client);
    REQUIRE_FALSE(client->write(data));
    client.reset_gracefully();
    REQUIRE(run_until(io, [&] { return server != nullptr; }));
    std::string got;
    event_log ev;
    record(*server, got, ev);
    REQUIRE(run_until(io, [&] { return ev.has(events::eof) || ev.has(events::error); }, 30s));
    INFO(ev.error().message());
    CHECK_FALSE(ev.has(events::error));
    CHECK(fnv1a(got) == fnv1a(data));
    const bool same = got == data;
    CHECK(same);
    CHECK(server->transport().filter().peer_closed());
    REQUIRE(run_until(io, [&] { return probe.freed(); }, 5s));
    CHECK(*probe.calls == 0);
  }
  SECTION("server over TCP, closed as soon as it is accepted") {
    tcp::acceptor acc(io, {asio::ip::address_v4::loopback(), 0});
    bool accepted = false;
    acc.async_accept([&](std::error_code ec, tcp::socket s) {
      REQUIRE_FALSE(ec);
      auto server = make_socket_bufferevent<tcp_bev>(std::move(s)) | filters::tls::server(server_ctx());
      REQUIRE_FALSE(server->write(data));
      server.reset_gracefully();
      accepted = true;
    });
    auto csock = make_socket_bufferevent<tcp_bev>(io.get_executor());
    REQUIRE_FALSE(csock->connect(acc.local_endpoint()));
    auto client = std::move(csock) | filters::tls::client(client_ctx(), "localhost");
    std::string got;
    event_log ev;
    record(*client, got, ev);
    REQUIRE(run_until(io, [&] { return ev.has(events::eof) || ev.has(events::error); }, 30s));
    INFO(ev.error().message());
    CHECK(accepted);
    CHECK_FALSE(ev.has(events::error));
    CHECK(ev.has(events::connected));
    CHECK(fnv1a(got) == fnv1a(data));
    const bool same = got == data;
    CHECK(same);
    CHECK(client->transport().filter().peer_closed());
  }
}

TEST_CASE("tls: a graceful close of a framing | zlib | TLS stack before the handshake delivers every layer's tail",
          "[tls][close][graceful][stack]") {
  asio::io_context io;
  auto [a, b] = bufev::make_pair(io.get_executor());
  auto client = make_stack(std::move(a), filters::tls::client(client_ctx(), "localhost"), filters::zlib{},
                           filters::length_prefix{4096});
  auto server = make_stack(std::move(b), filters::tls::server(server_ctx()), filters::zlib{},
                           filters::length_prefix{4096});
  lifetime_probe probe;
  probe.attach(*client);
  std::string got;
  event_log ev;
  record(*server, got, ev);
  const std::string data = pattern(200000, 11);
  REQUIRE_FALSE(client->write(data));
  // Framing and zlib finish at once (their tails go into the TLS layer's
  // output); the TLS layer waits for its handshake on its own.
  client.reset_gracefully();
  REQUIRE(run_until(io, [&] { return ev.has(events::eof) || ev.has(events::error); }, 30s));
  INFO(ev.error().message());
  CHECK_FALSE(ev.has(events::error));
  CHECK(got.size() == data.size());
  const bool same = got == data;
  CHECK(same);
  REQUIRE(run_until(io, [&] { return probe.freed(); }, 5s));
  CHECK(*probe.calls == 0);
  server.reset();
  drain_ready(io);
  CHECK(io.stopped());
}

TEST_CASE("tls: a graceful close with nothing queued before the handshake does not wait for it",
          "[tls][close][graceful]") {
  // Nothing can be lost, so a stalled handshake (a silent peer, a server
  // shutting down) never keeps the layer alive.
  asio::io_context io;
  auto [a, b] = bufev::make_pair(io.get_executor());
  auto client = std::move(a) | filters::tls::client(client_ctx(), "localhost");
  lifetime_probe probe;
  probe.attach(*client);
  std::string hello;
  event_log bev;
  b->setcb([&](auto& side) { hello += take_all(side); }, nullptr,
           [&](auto&, events e, std::error_code ec) { bev.list.emplace_back(e, ec); });
  drain_ready(io);  // the ClientHello waits in the pair: the peer does not read
  CHECK(hello.empty());
  client.reset_gracefully();
  drain_ready(io);
  CHECK(probe.freed());  // closed without waiting for the peer
  CHECK(*probe.calls == 0);
  // The peer gets the ClientHello, then EOF (a TLS server: handshake_truncated).
  b->enable(direction::read);
  REQUIRE(run_until(io, [&] { return bev.has(events::eof) || bev.has(events::error); }));
  CHECK_FALSE(bev.has(events::error));
  CHECK_FALSE(hello.empty());
  b.reset();
  drain_ready(io);
  CHECK(io.stopped());
}

TEST_CASE("tls: a graceful close before a handshake that then fails ends: the alert goes, no hang, no leak",
          "[tls][close][graceful][verify]") {
  struct scenario {
    const char* name;
    bool trust;
  };
  const auto s = GENERATE(scenario{"example.com", true}, scenario{"localhost", false});
  asio::io_context io;
  auto [a, b] = bufev::make_pair(io.get_executor());
  auto client = std::move(a) | filters::tls::client(client_ctx(s.trust), s.name);
  auto server = std::move(b) | filters::tls::server(server_ctx());
  lifetime_probe probe;
  probe.attach(*client);
  std::string sgot;
  event_log sev;
  record(*server, sgot, sev);
  REQUIRE_FALSE(client->write(pattern(50000)));
  client.reset_gracefully();
  REQUIRE(run_until(io, [&] { return sev.has(events::error) || sev.has(events::eof); }));
  INFO(sev.error().message());
  // The client's alert (bad certificate) reached the server: an OpenSSL error,
  // not a bare truncation.
  CHECK(sev.error().category() == tls_category());
  CHECK(tls_openssl_error(sev.error()) != 0);
  CHECK_FALSE(sev.has(events::connected));
  CHECK(sgot.empty());
  REQUIRE(run_until(io, [&] { return probe.freed(); }, 5s));
  CHECK(*probe.calls == 0);
  server.reset();
  drain_ready(io);
  CHECK(io.stopped());  // nothing left waiting
}

TEST_CASE("tls: a graceful close waiting for a silent peer ends with the lower layer or the io_context",
          "[tls][close][graceful]") {
  SECTION("the peer goes away: the handshake is truncated, the close ends") {
    asio::io_context io;
    auto [a, b] = bufev::make_pair(io.get_executor());
    auto client = std::move(a) | filters::tls::client(client_ctx(), "localhost");
    lifetime_probe probe;
    probe.attach(*client);
    REQUIRE_FALSE(client->write("hello"));
    client.reset_gracefully();
    drain_ready(io);
    REQUIRE_FALSE(probe.freed());  // waiting for a handshake the peer never answers
    b.reset();
    REQUIRE(run_until(io, [&] { return probe.freed(); }, 5s));
    CHECK(*probe.calls == 0);
    drain_ready(io);
    CHECK(io.stopped());
  }
  SECTION("the io_context is destroyed first") {
    lifetime_probe probe;
    {
      asio::io_context io;
      tcp::acceptor acc(io, {asio::ip::address_v4::loopback(), 0});
      tcp::socket silent(io);
      auto csock = make_socket_bufferevent<tcp_bev>(io.get_executor());
      REQUIRE_FALSE(csock->connect(acc.local_endpoint()));
      acc.accept(silent);  // accepted, never read from or written to
      auto client = std::move(csock) | filters::tls::client(client_ctx(), "localhost");
      probe.attach(*client);
      REQUIRE_FALSE(client->write("hello"));
      client.reset_gracefully();
      REQUIRE(run_until(io, [&] { return silent.available() > 0; }));  // the ClientHello went out
      drain_ready(io);
      REQUIRE_FALSE(probe.freed());
    }
    CHECK(probe.freed());
    CHECK(*probe.calls == 0);
  }
}

// ---- against the openssl command -------------------------------------------------

TEST_CASE("tls: bufev client against openssl s_server", "[tls][openssl][s_server]") {
  if (!have_openssl_binary()) {
    WARN("openssl binary not found: skipped");
    return;
  }
  asio::io_context io;
  s_server srv(io);
  auto sock = make_socket_bufferevent<tcp_bev>(io.get_executor());
  REQUIRE_FALSE(sock->connect(srv.endpoint()));
  auto client = std::move(sock) | filters::tls::client(client_ctx(), "localhost");
  std::string got;
  event_log ev;
  record(*client, got, ev);
  REQUIRE_FALSE(client->write("hello tls\n"));
  REQUIRE(run_until(io, [&] { return got == "slt olleh\n" || ev.has(events::error); }));
  INFO(file_contents(srv.err_path));
  CHECK(got == "slt olleh\n");
  CHECK(ev.count(events::connected) == 1);  // the socket's own connected was consumed
  // A second exchange, bigger than one read of s_server.
  const std::string line = pattern(3000) + "\n";
  got.clear();
  REQUIRE_FALSE(client->write(line));
  REQUIRE(run_until(io, [&] { return got.size() == line.size() || ev.has(events::error); }));
  CHECK(got == std::string(line.rbegin() + 1, line.rend()) + "\n");
  // close_notify: s_server reports the close and exits (-naccept 1).
  client.reset_gracefully();
  REQUIRE(run_until(io, [&] { return srv.proc->try_wait().has_value(); }));
  CHECK(WIFEXITED(*srv.proc->try_wait()));
  CHECK(WEXITSTATUS(*srv.proc->try_wait()) == 0);
  CHECK(file_contents(srv.err_path).find("CONNECTION ESTABLISHED") != std::string::npos);
}

TEST_CASE("tls: handshake failures against openssl s_server give a readable tls error", "[tls][openssl][verify]") {
  if (!have_openssl_binary()) {
    WARN("openssl binary not found: skipped");
    return;
  }
  struct scenario {
    const char* name;
    bool trust;
    long expect;
  };
  const auto s = GENERATE(scenario{"localhost", false, X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT},
                          scenario{"wrong.example", true, X509_V_ERR_HOSTNAME_MISMATCH});
  asio::io_context io;
  s_server srv(io);
  auto sock = make_socket_bufferevent<tcp_bev>(io.get_executor());
  REQUIRE_FALSE(sock->connect(srv.endpoint()));
  auto client = std::move(sock) | filters::tls::client(client_ctx(s.trust), s.name);
  std::string got;
  event_log ev;
  record(*client, got, ev);
  REQUIRE_FALSE(client->write("never sent\n"));
  REQUIRE(run_until(io, [&] { return ev.has(events::error); }));
  const auto ec = ev.error();
  INFO(ec.message());
  CHECK(tls_verify_result(ec) == s.expect);
  CHECK_FALSE(ev.has(events::connected));
  CHECK(got.empty());
  // The alert goes out with the graceful close; s_server sees the failure.
  client.reset_gracefully();
  REQUIRE(run_until(io, [&] { return srv.proc->try_wait().has_value(); }));
  const std::string err = file_contents(srv.err_path);
  INFO(err);
  CHECK((err.find("alert") != std::string::npos || err.find("error") != std::string::npos));
}

namespace {
// A bufev TLS server on 127.0.0.1 that accepts one connection and answers
// each chunk in upper case.
struct bufev_server {
  using top_t = decltype(std::declval<bufferevent_ptr<tcp_bev>>() | std::declval<filters::tls>());
  tcp::acceptor acceptor;
  top_t bev;
  std::string got;
  event_log ev;
  filters::tls_options opts;

  bufev_server(asio::io_context& io, filters::tls_options o = {})
      : acceptor(io, {asio::ip::address_v4::loopback(), 0}), opts(o) {
    acceptor.async_accept([this](std::error_code ec, tcp::socket s) {
      if (ec) return;
      bev = make_socket_bufferevent<tcp_bev>(std::move(s)) | filters::tls::server(server_ctx(), opts);
      bev->setcb(
          [this](auto& b) {
            std::string s = take_all(b);
            got += s;
            for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
            (void)b.write(s);
          },
          nullptr, [this](auto&, events e, std::error_code ec2) { ev.list.emplace_back(e, ec2); });
      bev->enable(direction::read);
    });
  }
  std::string port() const { return std::to_string(acceptor.local_endpoint().port()); }
};
}  // namespace

TEST_CASE("tls: openssl s_client against a bufev server", "[tls][openssl][s_client]") {
  if (!have_openssl_binary()) {
    WARN("openssl binary not found: skipped");
    return;
  }
  asio::io_context io;
  bufev_server server(io);
  temp_dir dir;
  const auto ca = dir.write("ca.pem", localhost_cert().cert_pem);
  const auto err = dir.file("s_client.err");
  child_process cli(io,
                    {"openssl", "s_client", "-connect", "127.0.0.1:" + server.port(), "-servername", "localhost",
                     "-CAfile", ca, "-verify_return_error", "-verify_hostname", "localhost", "-quiet"},
                    err);
  REQUIRE(run_until(io, [&] { return server.ev.has(events::connected) || server.ev.has(events::error); }));
  INFO(file_contents(err));
  REQUIRE(server.ev.has(events::connected));
  CHECK(server.bev->transport().filter().server_name() == "localhost");
  cli.write_stdin("ping from s_client\n");
  REQUIRE(run_until(io, [&] { return cli.out() == "PING FROM S_CLIENT\n"; }));
  CHECK(server.got == "ping from s_client\n");
  // The server closes gracefully: s_client reads close_notify and exits by itself.
  server.bev.reset_gracefully();
  REQUIRE(run_until(io, [&] { return cli.try_wait().has_value(); }));
  CHECK(WIFEXITED(*cli.try_wait()));
  CHECK(WEXITSTATUS(*cli.try_wait()) == 0);
  CHECK(file_contents(err).find("verify return:1") != std::string::npos);
}

TEST_CASE("tls: s_client killed mid-stream is a truncation (or eof with dirty shutdown allowed)",
          "[tls][openssl][truncation]") {
  if (!have_openssl_binary()) {
    WARN("openssl binary not found: skipped");
    return;
  }
  const bool allow = GENERATE(false, true);
  asio::io_context io;
  filters::tls_options o;
  o.allow_dirty_shutdown = allow;
  bufev_server server(io, o);
  temp_dir dir;
  const auto ca = dir.write("ca.pem", localhost_cert().cert_pem);
  const auto err = dir.file("s_client.err");
  child_process cli(io,
                    {"openssl", "s_client", "-connect", "127.0.0.1:" + server.port(), "-servername", "localhost",
                     "-CAfile", ca, "-verify_return_error", "-quiet"},
                    err);
  cli.write_stdin("abc\n");
  REQUIRE(run_until(io, [&] { return cli.out() == "ABC\n"; }));
  cli.kill(SIGKILL);  // the kernel closes the TCP connection: no close_notify
  REQUIRE(run_until(io, [&] { return server.ev.has(events::eof) || server.ev.has(events::error); }));
  if (allow) {
    CHECK(server.ev.has(events::eof));
    CHECK_FALSE(server.ev.has(events::error));
  } else {
    CHECK(server.ev.error() == make_error_code(tls_errc::stream_truncated));
    INFO(server.ev.error().message());
    CHECK_FALSE(server.ev.has(events::eof));
  }
}

// ---- a three-layer stack over a socket ---------------------------------------------

TEST_CASE("tls: framing | zlib | TLS over a socket moves a large stream intact under small watermarks",
          "[tls][stack]") {
  asio::io_context io;
  tcp::acceptor acc(io, {asio::ip::address_v4::loopback(), 0});
  tcp::socket cs(io);
  cs.connect(acc.local_endpoint());
  tcp::socket ss = acc.accept();
  auto csock = make_socket_bufferevent<tcp_bev>(std::move(cs));
  auto ssock = make_socket_bufferevent<tcp_bev>(std::move(ss));
  csock->setwatermark(direction::write, 0, 16 * 1024);
  ssock->setwatermark(direction::read, 0, 16 * 1024);
  // Bottom-up: TLS over the socket, zlib over TLS, framing on top.
  auto client = make_stack(std::move(csock), filters::tls::client(client_ctx(), "localhost"), filters::zlib{},
                           filters::length_prefix{4096});
  auto server = make_stack(std::move(ssock), filters::tls::server(server_ctx()), filters::zlib{},
                           filters::length_prefix{4096});
  // Small marks at every layer of the receiver.
  server->setwatermark(direction::read, 0, 8 * 1024);
  server->underlying().setwatermark(direction::read, 0, 8 * 1024);
  server->underlying().underlying().setwatermark(direction::read, 0, 8 * 1024);
  client->setwatermark(direction::write, 0, 32 * 1024);
  client->underlying().setwatermark(direction::write, 0, 16 * 1024);
  client->underlying().underlying().setwatermark(direction::write, 0, 16 * 1024);

  // 256 MiB (about 12 s in a Debug build), 4 MiB under sanitizers;
  // BUFEV_TLS_STACK_MIB overrides.
  const std::size_t total = bufev::test::stress_bytes(256, 4, "BUFEV_TLS_STACK_MIB");
  std::uint64_t sent_sum = 0, got_sum = 0;
  std::size_t sent = 0, got = 0;
  std::uint32_t rng = 12345;
  auto checksum = [](std::uint64_t& sum, const char* p, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) sum = sum * 1099511628211ull + static_cast<unsigned char>(p[i]);
  };
  // Half compressible text, half noise, so zlib neither vanishes nor expands much.
  auto refill = [&](auto& bev) {
    while (sent < total && bev.output().size() < 32 * 1024) {
      std::string chunk(std::min<std::size_t>(7919, total - sent), '\0');
      for (std::size_t i = 0; i < chunk.size(); ++i) {
        rng = rng * 1664525u + 1013904223u;
        chunk[i] = (i & 64) ? static_cast<char>(rng >> 24) : static_cast<char>('a' + (sent + i) % 23);
      }
      checksum(sent_sum, chunk.data(), chunk.size());
      sent += chunk.size();
      REQUIRE_FALSE(bev.write(chunk));
    }
  };
  event_log cev, sev;
  client->setcb(nullptr, refill, [&](auto&, events e, std::error_code ec) { cev.list.emplace_back(e, ec); });
  client->setwatermark(direction::write, 16 * 1024, 32 * 1024);
  server->setcb(
      [&](auto& bev) {
        char buf[3000];
        while (std::size_t n = bev.read(buf, sizeof buf)) {
          checksum(got_sum, buf, n);
          got += n;
        }
      },
      nullptr, [&](auto&, events e, std::error_code ec) { sev.list.emplace_back(e, ec); });
  server->enable(direction::read);
  refill(*client);
  // zlib keeps the tail of the stream until it is finished: the graceful
  // close (framing, zlib trailer, close_notify, then the socket) delivers it.
  REQUIRE(run_until(io, [&] { return sent == total || cev.has(events::error) || sev.has(events::error); }, 120s));
  client.reset_gracefully();
  const bool ended = run_until(io, [&] { return sev.has(events::eof) || sev.has(events::error); }, 120s);
  INFO(sev.error().message() << " / " << cev.error().message());
  INFO("sent " << sent << " got " << got << "; server in " << server->input().size() << "/"
               << server->underlying().input().size() << "/" << server->underlying().underlying().input().size()
               << "/" << server->lowest_layer().input().size());
  REQUIRE(ended);
  CHECK(sev.has(events::eof));
  CHECK(got == total);
  CHECK(got_sum == sent_sum);
  CHECK_FALSE(sev.has(events::error));
  CHECK_FALSE(cev.has(events::error));
}
