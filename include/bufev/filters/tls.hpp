// TLS (OpenSSL 3) as a bufferevent filter, over any bufferevent: a pair side,
// a socket, another filter (spec section 7). Not part of the umbrella header:
// include <bufev/filters/tls.hpp> and link OpenSSL::SSL and OpenSSL::Crypto.
//
//   auto ctx = bufev::tls_context::client();            // system CA store
//   auto bev = std::move(sock) | bufev::filters::tls::client(ctx, "example.org");
//
// Events: the socket's `connected` is consumed by the filter; the TLS layer
// raises its own `connected` once the handshake is done. A close_notify from
// the peer is `reading|eof`; the connection ending without one is
// `reading|error` with `tls_errc::stream_truncated` (or `eof` when
// `allow_dirty_shutdown`). `close_gracefully()` sends close_notify.
#pragma once

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cstddef>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include <asio/buffer.hpp>
#include <asio/ip/address.hpp>

#include <bufev/buffers/concepts.hpp>
#include <bufev/buffers/evbuffer.hpp>
#include <bufev/core/detail/move_bytes.hpp>
#include <bufev/events.hpp>
#include <bufev/filters/detail/tls_bio.hpp>
#include <bufev/filters/detail/tls_error.hpp>

namespace bufev {

/// A shared, reference-counted OpenSSL SSL_CTX (copies share it): the
/// certificates, keys, trust store and protocol settings of TLS filters.
class tls_context {
 public:
  /// A client context: TLS 1.2 or later, peer verification on, trusting the
  /// system's CA store (SSL_CTX_set_default_verify_paths). Add a private CA
  /// with add_certificate_authority() or load_verify_file().
  static tls_context client() {
    tls_context c(SSL_CTX_new(TLS_client_method()));
    if (c.ctx_) {
      SSL_CTX_set_min_proto_version(c.ctx_, TLS1_2_VERSION);
      SSL_CTX_set_verify(c.ctx_, SSL_VERIFY_PEER, nullptr);
      (void)SSL_CTX_set_default_verify_paths(c.ctx_);  // no system store is not fatal
      ERR_clear_error();
    }
    return c;
  }
  /// A server context: TLS 1.2 or later, no client certificate requested. Give
  /// it a certificate chain and a private key.
  static tls_context server() {
    tls_context c(SSL_CTX_new(TLS_server_method()));
    if (c.ctx_) SSL_CTX_set_min_proto_version(c.ctx_, TLS1_2_VERSION);
    return c;
  }

  /// Adopts `ctx` (one reference).
  explicit tls_context(SSL_CTX* ctx) noexcept : ctx_(ctx) {}
  tls_context(const tls_context& o) noexcept : ctx_(o.ctx_) {
    if (ctx_) SSL_CTX_up_ref(ctx_);
  }
  tls_context(tls_context&& o) noexcept : ctx_(std::exchange(o.ctx_, nullptr)) {}
  tls_context& operator=(tls_context o) noexcept {
    std::swap(ctx_, o.ctx_);
    return *this;
  }
  ~tls_context() {
    if (ctx_) SSL_CTX_free(ctx_);
  }

  SSL_CTX* native_handle() const noexcept { return ctx_; }
  explicit operator bool() const noexcept { return ctx_ != nullptr; }

  /// Trusts the certificates of a PEM file / directory (SSL_CTX_load_verify_locations).
  std::error_code load_verify_file(const std::string& path) {
    return check(SSL_CTX_load_verify_locations(ctx_, path.c_str(), nullptr) == 1);
  }
  /// Trusts the system's CA store.
  std::error_code set_default_verify_paths() { return check(SSL_CTX_set_default_verify_paths(ctx_) == 1); }
  /// Trusts every certificate of `pem` (one or more PEM blocks) as a CA.
  std::error_code add_certificate_authority(std::string_view pem) {
    if (!ctx_) return make_error_code(tls_errc::no_context);
    bio_ptr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    X509_STORE* store = SSL_CTX_get_cert_store(ctx_);
    int added = 0;
    while (bio) {
      X509* x = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr);
      if (!x) break;
      const int ok = X509_STORE_add_cert(store, x);
      X509_free(x);
      if (ok != 1) return detail::take_openssl_error();
      ++added;
    }
    if (added == 0) return detail::take_openssl_error();
    ERR_clear_error();  // the read that ended the loop
    return {};
  }
  /// Uses `pem` as this side's certificate chain (leaf first).
  std::error_code use_certificate_chain(std::string_view pem) {
    if (!ctx_) return make_error_code(tls_errc::no_context);
    bio_ptr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    X509* leaf = bio ? PEM_read_bio_X509_AUX(bio.get(), nullptr, nullptr, nullptr) : nullptr;
    if (!leaf) return detail::take_openssl_error();
    const int ok = SSL_CTX_use_certificate(ctx_, leaf);
    X509_free(leaf);
    if (ok != 1) return detail::take_openssl_error();
    SSL_CTX_clear_chain_certs(ctx_);
    while (X509* ca = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
      if (SSL_CTX_add0_chain_cert(ctx_, ca) != 1) {  // takes ownership on success
        X509_free(ca);
        return detail::take_openssl_error();
      }
    }
    ERR_clear_error();
    return {};
  }
  /// Uses `pem` (an unencrypted PEM private key) as this side's key.
  std::error_code use_private_key(std::string_view pem) {
    if (!ctx_) return make_error_code(tls_errc::no_context);
    bio_ptr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    EVP_PKEY* key = bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr;
    if (!key) return detail::take_openssl_error();
    const int ok = SSL_CTX_use_PrivateKey(ctx_, key);
    EVP_PKEY_free(key);
    return check(ok == 1 && SSL_CTX_check_private_key(ctx_) == 1);
  }
  std::error_code use_certificate_chain_file(const std::string& path) {
    return check(SSL_CTX_use_certificate_chain_file(ctx_, path.c_str()) == 1);
  }
  std::error_code use_private_key_file(const std::string& path) {
    return check(SSL_CTX_use_PrivateKey_file(ctx_, path.c_str(), SSL_FILETYPE_PEM) == 1 &&
                 SSL_CTX_check_private_key(ctx_) == 1);
  }
  /// Client: verify the server (the default). Server: request and require a
  /// client certificate.
  void set_verify_peer(bool on) {
    if (!ctx_) return;
    int mode = SSL_VERIFY_NONE;
    // FAIL_IF_NO_PEER_CERT only means something to a server; clients ignore it.
    if (on) mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    SSL_CTX_set_verify(ctx_, mode, nullptr);
  }
  bool verify_peer() const noexcept { return ctx_ && (SSL_CTX_get_verify_mode(ctx_) & SSL_VERIFY_PEER) != 0; }
  /// TLS 1.3 cipher suites ("TLS_AES_128_GCM_SHA256:...").
  std::error_code set_ciphersuites(const std::string& s) { return check(SSL_CTX_set_ciphersuites(ctx_, s.c_str()) == 1); }
  /// TLS 1.2 cipher list (OpenSSL's cipher string syntax).
  std::error_code set_cipher_list(const std::string& s) { return check(SSL_CTX_set_cipher_list(ctx_, s.c_str()) == 1); }
  /// TLS1_2_VERSION, TLS1_3_VERSION, or 0 for no bound.
  std::error_code set_min_protocol_version(int v) { return check(SSL_CTX_set_min_proto_version(ctx_, v) == 1); }
  std::error_code set_max_protocol_version(int v) { return check(SSL_CTX_set_max_proto_version(ctx_, v) == 1); }

 private:
  struct bio_deleter {
    void operator()(BIO* b) const noexcept { BIO_free(b); }
  };
  using bio_ptr = std::unique_ptr<BIO, bio_deleter>;

  std::error_code check(bool ok) const {
    if (!ctx_) return make_error_code(tls_errc::no_context);
    if (ok) return {};
    return detail::take_openssl_error();
  }

  SSL_CTX* ctx_ = nullptr;
};

namespace filters {

/// Which end of the handshake a TLS filter plays.
enum class tls_role { client, server };

/// Options of the TLS filter.
struct tls_options {
  /// Client: the name sent as SNI and checked against the server's
  /// certificate (a DNS name or an IP address; an address is checked but not
  /// sent as SNI). Required when the context verifies the peer, unless
  /// `verify_hostname` is false.
  std::string server_name;
  /// Client: check `server_name` against the certificate (SSL_set1_host).
  bool verify_hostname = true;
  /// A connection that ends without close_notify is `eof` instead of
  /// `error(tls_errc::stream_truncated)` (for peers that never send one; it
  /// lets an attacker truncate the stream undetected).
  bool allow_dirty_shutdown = false;
};

/// TLS as a bufferevent filter: the output is encrypted into TLS records, the
/// input decrypted. OpenSSL reads records straight from the lower input and
/// writes them straight into the lower output through a BIO bound for the
/// length of each filter call; handshake messages produced while reading wait
/// in a small buffer of their own (`output_pending()`). It implements every
/// optional hook of the filter transport:
/// - the handshake runs as soon as the filter is attached (the client's hello
///   is queued on the lower output, which sends it once connected) and reads
///   even while the user has reading disabled (`needs_input()`);
/// - the lower layer's `connected` is consumed; the filter raises its own
///   `connected` when the handshake is done (`take_events()`); data written
///   before then waits;
/// - a failed handshake is `error` with a "tls" code: the verification result
///   (`tls_verify_result(ec)`) or OpenSSL's reason (e.g. an alert from the peer);
/// - records already decrypted inside OpenSSL (SSL_pending) are delivered
///   without waiting for more input (`input_pending()`; libevent issues 854, 690);
/// - close_notify from the peer is `reading|eof`; the end of the lower input
///   without one is `tls_errc::stream_truncated` unless dirty shutdown is allowed;
/// - `flush_mode::finished` on the output (a graceful close, or
///   `flush(write, finished)`) sends close_notify after the pending data;
///   with data queued before the handshake is done it returns `need_more` (a
///   graceful close then waits for the handshake, so no queued byte is lost).
class tls {
 public:
  tls(tls_context ctx, tls_role role, tls_options opts = {}) : s_(std::make_unique<state>()) {
    s_->ctx = std::move(ctx);
    s_->role = role;
    s_->opts = std::move(opts);
    init();
  }

  /// A client filter that verifies `server_name` (unless the context does not
  /// verify, or `opts.verify_hostname` is false) and sends it as SNI.
  static tls client(tls_context ctx, std::string server_name, tls_options opts = {}) {
    opts.server_name = std::move(server_name);
    return tls(std::move(ctx), tls_role::client, std::move(opts));
  }
  static tls server(tls_context ctx, tls_options opts = {}) {
    return tls(std::move(ctx), tls_role::server, std::move(opts));
  }

  tls(tls&&) noexcept = default;
  tls& operator=(tls&&) noexcept = default;

  // ---- state --------------------------------------------------------------

  /// The OpenSSL connection (session, peer certificate, ALPN, ...).
  SSL* native_handle() const noexcept { return s_ ? s_->ssl : nullptr; }
  tls_role role() const noexcept { return s_->role; }
  const tls_options& options() const noexcept { return s_->opts; }
  bool handshake_done() const noexcept { return s_ && s_->handshake_done; }
  /// The peer sent close_notify.
  bool peer_closed() const noexcept { return s_ && s_->peer_closed; }
  /// Why the last call returned error.
  std::error_code error() const noexcept { return s_ ? s_->error : make_error_code(tls_errc::no_context); }
  /// The SNI name: sent (client) or received (server); empty if none.
  std::string_view server_name() const noexcept {
    const char* n = native_handle() ? SSL_get_servername(s_->ssl, TLSEXT_NAMETYPE_host_name) : nullptr;
    return n ? n : "";
  }
  /// "TLSv1.3", ... once the handshake is done.
  std::string_view protocol() const noexcept { return native_handle() ? SSL_get_version(s_->ssl) : ""; }
  /// The negotiated cipher suite ("TLS_AES_128_GCM_SHA256", ...).
  std::string_view cipher() const noexcept {
    const char* c = native_handle() ? SSL_get_cipher_name(s_->ssl) : nullptr;
    return c ? c : "";
  }

  // ---- hooks of the filter transport -----------------------------------------

  bool output_pending() const noexcept {
    if (!s_) return false;
    if (!s_->ssl) return s_->init_unreported;  // report a setup failure at once
    return !s_->out.empty() || (s_->role == tls_role::client && !s_->hello_sent && !s_->failed);
  }
  bool input_pending() const noexcept {
    if (!s_ || !s_->ssl || s_->failed) return false;
    return SSL_pending(s_->ssl) > 0 || (s_->peer_closed && !s_->eof_reported);
  }
  bool needs_input() const noexcept { return s_ && s_->ssl && !s_->handshake_done && !s_->failed; }

  events on_lower_event(events what, std::error_code& ec) noexcept {
    if (!s_) return what;
    what &= ~events::connected;  // the TLS layer raises its own after the handshake
    if (any(what, events::eof)) {
      if (s_->peer_closed || s_->failed) {
        // close_notify was seen (the eof is ours to report) or the error was
        // already reported: nothing more from below.
        what &= ~(events::eof | events::reading);
      } else if (!s_->handshake_done) {
        s_->failed = true;
        s_->error = make_error_code(tls_errc::handshake_truncated);
        ec = s_->error;
        what = (what & ~events::eof) | events::reading | events::error;
      }
      // Otherwise the transport filters what is left and calls filter_input
      // in `finished` mode, which decides between eof and truncation.
    }
    return what;
  }

  std::pair<events, std::error_code> take_events() noexcept {
    if (!s_) return {events::none, {}};
    return {std::exchange(s_->raise, events::none), {}};
  }

  // ---- transforms --------------------------------------------------------------

  /// Lower input (records) -> this input (plaintext).
  template <byte_buffer Src, byte_buffer Dst>
  filter_result filter_input(Src& src, Dst& dst, std::size_t limit, flush_mode mode) {
    if (!s_ || !s_->ssl) return init_failed();
    state& s = *s_;
    if (s.failed) return filter_result::error;
    read_binding bind(s, src);
    ERR_clear_error();
    if (s.peer_closed) return after_close_notify(src, mode);
    if (!s.handshake_done) {
      if (!handshake()) return filter_result::error;
      if (!s.handshake_done) {
        if (mode == flush_mode::finished) return fail(make_error_code(tls_errc::handshake_truncated));
        return filter_result::ok;
      }
    }
    std::size_t produced = 0;
    while (produced < limit) {
      const std::size_t want = std::min<std::size_t>(limit - produced, max_read);
      std::size_t n = 0;
      int rc = 0;
      {
        const auto seq = dst.prepare(want);
        asio::mutable_buffer mb = *asio::buffer_sequence_begin(seq);
        rc = SSL_read_ex(s.ssl, mb.data(), std::min(mb.size(), want), &n);
        dst.commit(rc == 1 ? n : 0);
      }
      if (rc == 1) {
        produced += n;
        continue;
      }
      const int err = SSL_get_error(s.ssl, rc);
      if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) break;
      if (err == SSL_ERROR_ZERO_RETURN) {
        s.peer_closed = true;
        (void)src.drain(src.size());  // nothing after close_notify is data
        if (mode == flush_mode::finished) s.eof_reported = true;  // the transport reports it
        else if (produced == 0) report_eof();  // else next call: after this data is delivered
        return filter_result::ok;
      }
      return fail(ssl_error(err));
    }
    if (mode == flush_mode::finished && produced < limit && SSL_pending(s.ssl) == 0) {
      // The lower input ended without close_notify.
      if (s.opts.allow_dirty_shutdown) {
        s.eof_reported = true;
        return filter_result::ok;
      }
      return fail(make_error_code(tls_errc::stream_truncated));
    }
    return filter_result::ok;
  }

  /// This output (plaintext) -> lower output (records).
  template <byte_buffer Src, byte_buffer Dst>
  filter_result filter_output(Src& src, Dst& dst, std::size_t limit, flush_mode mode) {
    if (!s_ || !s_->ssl) return init_failed();
    state& s = *s_;
    // Handshake messages (or an alert) produced while reading go first.
    if (!s.out.empty() && bufev::detail::move_bytes(s.out, dst, s.out.size()) == 0)
      return fail(make_error_code(tls_errc::output_refused));
    if (s.failed) {
      // The failure was reported; closing after it only sends the alert: data
      // still queued can no longer be sent.
      if (mode == flush_mode::finished) (void)src.drain(src.size());
      return src.empty() ? filter_result::ok : filter_result::error;
    }
    write_binding bind(s, dst);
    ERR_clear_error();
    if (!s.handshake_done) {
      if (s.role == tls_role::client && !s.hello_sent) {
        s.hello_sent = true;
        if (!handshake()) return filter_result::error;
      }
      // Data waits for the handshake (a graceful close keeps reading and comes
      // back once it is done); with none, a close has nothing to wait for.
      if (!s.handshake_done) return src.empty() ? filter_result::ok : filter_result::need_more;
    }
    const std::size_t before = dst.size();
    // After close_notify SSL_write fails ("protocol is shutdown"): an error, never bytes stuck.
    while (!src.empty()) {
      const std::size_t grown = dst.size() - before;
      std::size_t room = max_write;
      if (mode == flush_mode::normal && limit != no_limit) {
        if (grown >= limit) break;
        room = limit - grown;
        // Not worth a record of its own: wait until the lower output drains.
        if (room < min_record && grown != 0) break;
      }
      const asio::const_buffer b = *asio::buffer_sequence_begin(src.data());
      const std::size_t n = std::min({b.size(), room, max_write});
      std::size_t written = 0;
      const int rc = SSL_write_ex(s.ssl, b.data(), n, &written);
      if (rc == 1) {
        (void)src.drain(written);
        continue;
      }
      const int err = SSL_get_error(s.ssl, rc);
      if (err == SSL_ERROR_WANT_READ) return filter_result::need_more;  // resumed after input
      if (err == SSL_ERROR_WANT_WRITE) return fail(make_error_code(tls_errc::output_refused));
      return fail(ssl_error(err));
    }
    if (mode == flush_mode::finished && !s.shutdown_sent && src.empty()) {
      s.shutdown_sent = true;
      const int rc = SSL_shutdown(s.ssl);  // writes close_notify; we do not wait for the peer's
      if (rc < 0) {
        const int err = SSL_get_error(s.ssl, rc);
        if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) return fail(ssl_error(err));
      }
      ERR_clear_error();
    }
    return filter_result::ok;
  }

 private:
  // Plaintext per SSL_read call and per SSL_write call (OpenSSL cuts records
  // of 16 KiB itself).
  static constexpr std::size_t max_read = 64 * 1024;
  static constexpr std::size_t max_write = 64 * 1024;
  static constexpr std::size_t min_record = 512;
  static constexpr std::size_t no_limit = std::numeric_limits<std::size_t>::max();  // bufev::unlimited

  struct ssl_deleter {
    void operator()(SSL* p) const noexcept { SSL_free(p); }
  };

  struct state {
    tls_context ctx{nullptr};
    tls_role role = tls_role::client;
    tls_options opts;
    SSL* ssl = nullptr;
    detail::tls_io io;
    evbuffer out;  // what OpenSSL wrote while no lower output was bound
    std::error_code error;
    events raise = events::none;
    bool hello_sent = false;
    bool handshake_done = false;
    bool peer_closed = false;
    bool eof_reported = false;
    bool shutdown_sent = false;
    bool failed = false;
    bool init_unreported = false;  // setup failed: the first call reports it
    ~state() {
      if (ssl) SSL_free(ssl);  // frees the BIO too
    }
  };

  // Binds the BIO's read side to `src` for one call.
  struct read_binding {
    state& s;
    template <class Src>
    read_binding(state& st, Src& src) noexcept : s(st) {
      s.io.src = &src;
      s.io.read = &detail::tls_read_from<Src>;
    }
    ~read_binding() {
      s.io.src = nullptr;
      s.io.read = nullptr;
    }
  };
  // Binds the BIO's write side to `dst` for one call; otherwise it writes to `out`.
  struct write_binding {
    state& s;
    template <class Dst>
    write_binding(state& st, Dst& dst) noexcept : s(st) {
      s.io.dst = &dst;
      s.io.write = &detail::tls_write_to<Dst>;
    }
    ~write_binding() { bind_out(s); }
  };
  static void bind_out(state& s) noexcept {
    s.io.dst = &s.out;
    s.io.write = &detail::tls_write_to<evbuffer>;
  }

  void init() {
    state& s = *s_;
    bind_out(s);
    if (!s.ctx) return fail_init(make_error_code(tls_errc::no_context));
    const bool client = s.role == tls_role::client;
    if (client && s.opts.server_name.empty() && s.opts.verify_hostname && s.ctx.verify_peer())
      return fail_init(make_error_code(tls_errc::missing_server_name));
    ERR_clear_error();
    SSL* ssl = SSL_new(s.ctx.native_handle());
    BIO* bio = ssl ? BIO_new(detail::tls_bio_method()) : nullptr;
    if (!bio) {
      if (ssl) SSL_free(ssl);
      return fail_init(bufev::detail::take_openssl_error());
    }
    BIO_set_data(bio, &s.io);
    SSL_set_bio(ssl, bio, bio);  // one reference, owned by ssl
    s.ssl = ssl;
    SSL_set_mode(ssl, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (client) {
      SSL_set_connect_state(ssl);
      const std::string& name = s.opts.server_name;
      if (!name.empty()) {
        std::error_code not_ip;
        (void)asio::ip::make_address(name, not_ip);
        const bool is_ip = !not_ip;
        if (!is_ip && SSL_set_tlsext_host_name(ssl, name.c_str()) != 1)
          return fail_init(bufev::detail::take_openssl_error());
        if (s.opts.verify_hostname) {
          X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
          const int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str())
                               : SSL_set1_host(ssl, name.c_str());
          if (ok != 1) return fail_init(bufev::detail::take_openssl_error());
        }
      }
    } else {
      SSL_set_accept_state(ssl);
    }
  }

  void fail_init(std::error_code ec) noexcept {
    s_->failed = true;
    s_->init_unreported = true;
    s_->error = ec;
  }

  filter_result init_failed() noexcept {
    if (!s_) return filter_result::error;
    s_->init_unreported = false;
    if (!s_->error) s_->error = make_error_code(tls_errc::no_context);
    return filter_result::error;
  }

  filter_result fail(std::error_code ec) noexcept {
    if (s_) {
      s_->failed = true;
      s_->error = ec;
    }
    return filter_result::error;
  }

  void report_eof() noexcept {
    s_->eof_reported = true;
    s_->raise |= events::reading | events::eof;
  }

  template <class Src>
  filter_result after_close_notify(Src& src, flush_mode mode) {
    (void)src.drain(src.size());
    if (!s_->eof_reported) {
      if (mode == flush_mode::finished) s_->eof_reported = true;  // the transport reports it
      else report_eof();
    }
    return filter_result::ok;
  }

  // One step of the handshake; false on failure (error set).
  bool handshake() {
    state& s = *s_;
    const int rc = SSL_do_handshake(s.ssl);
    if (rc == 1) {
      s.handshake_done = true;
      s.hello_sent = true;
      s.raise |= events::connected;
      return true;
    }
    const int err = SSL_get_error(s.ssl, rc);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return true;
    fail(ssl_error(err));
    return false;
  }

  // The code of a failed SSL call: the verification result when that is what
  // failed, else the first error of OpenSSL's queue.
  std::error_code ssl_error(int err) const {
    const unsigned long e = ERR_peek_error();
    std::error_code ec;
    if (ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == SSL_R_CERTIFICATE_VERIFY_FAILED &&
        SSL_get_verify_result(s_->ssl) != X509_V_OK)
      ec = make_tls_verify_error(SSL_get_verify_result(s_->ssl));
    else if (e != 0)
      ec = make_tls_error(e);
    else if (err == SSL_ERROR_SYSCALL)
      ec = make_error_code(tls_errc::output_refused);  // only our BIO can fail: a refused write
    else
      ec = make_error_code(tls_errc::protocol_error);
    ERR_clear_error();
    return ec;
  }

  std::unique_ptr<state> s_;
};

}  // namespace filters
}  // namespace bufev
