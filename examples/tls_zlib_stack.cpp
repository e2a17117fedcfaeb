// TLS + compression over TCP on 127.0.0.1: a server and a client in one
// program, each a stack  length_prefix | zlib | TLS | socket  (bottom-up:
// TLS over the socket, zlib over TLS, framing on top). The certificate is
// generated in memory with OpenSSL's APIs; no files are written.
// Build: link OpenSSL::SSL, OpenSSL::Crypto and ZLIB::ZLIB.
#include <bufev/bufev.hpp>
#include <bufev/filters/tls.hpp>
#include <bufev/filters/zlib.hpp>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <string>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

namespace {

std::string pem_of(int (*write)(BIO*, const void*), const void* obj) {
  BIO* b = BIO_new(BIO_s_mem());
  write(b, obj);
  char* p = nullptr;
  const long n = BIO_get_mem_data(b, &p);
  std::string s(p, static_cast<std::size_t>(n));
  BIO_free(b);
  return s;
}

// A P-256 key and a self-signed certificate for "localhost", as PEM.
std::pair<std::string, std::string> self_signed_localhost() {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* x = X509_new();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), -60);
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
  std::string key_pem = pem_of(
      [](BIO* b, const void* k) {
        return PEM_write_bio_PrivateKey(b, static_cast<EVP_PKEY*>(const_cast<void*>(k)), nullptr, nullptr, 0,
                                        nullptr, nullptr);
      },
      key);
  std::string cert_pem =
      pem_of([](BIO* b, const void* c) { return PEM_write_bio_X509(b, static_cast<X509*>(const_cast<void*>(c))); }, x);
  X509_free(x);
  EVP_PKEY_free(key);
  return {key_pem, cert_pem};
}

}  // namespace

int main() {
  using tcp = asio::ip::tcp;
  using socket_bev = bufev::tcp_bufferevent<>;
  namespace filters = bufev::filters;
  asio::io_context io;

  const auto [key_pem, cert_pem] = self_signed_localhost();
  // An interactive protocol: every write is decodable at once (Z_SYNC_FLUSH),
  // otherwise zlib keeps a short message inside until more data comes.
  bufev::filters::zlib_options interactive;
  interactive.sync_flush = true;
  auto server_ctx = bufev::tls_context::server();
  auto client_ctx = bufev::tls_context::client();  // verifies the server (system store + our CA)
  if (server_ctx.use_certificate_chain(cert_pem) || server_ctx.use_private_key(key_pem) ||
      client_ctx.add_certificate_authority(cert_pem)) {
    std::fprintf(stderr, "TLS setup failed\n");
    return 1;
  }

  // The server: accepts one connection and answers every message.
  tcp::acceptor acceptor(io, {asio::ip::address_v4::loopback(), 0});
  using server_stack = decltype(bufev::make_stack(std::declval<bufev::bufferevent_ptr<socket_bev>>(),
                                                  std::declval<filters::tls>(), filters::zlib{},
                                                  filters::length_prefix{}));
  auto make_server = [&](tcp::socket s) {
    return bufev::make_stack(bufev::make_socket_bufferevent<socket_bev>(std::move(s)),
                             filters::tls::server(server_ctx), filters::zlib{interactive},
                             filters::length_prefix{});
  };
  server_stack server;
  std::string server_got;
  acceptor.async_accept([&](std::error_code ec, tcp::socket s) {
    if (ec) return;
    server = make_server(std::move(s));
    server->setcb(
        [&](auto& bev) {
          std::string msg(bev.input().size(), '\0');
          msg.resize(bev.read(msg.data(), msg.size()));
          server_got += msg;
          (void)bev.write("server got " + std::to_string(msg.size()) + " bytes\n");
        },
        nullptr,
        [&](auto&, bufev::events e, std::error_code ec2) {
          if (bufev::any(e, bufev::events::eof)) std::printf("server: client closed with close_notify\n");
          if (bufev::any(e, bufev::events::error)) std::printf("server error: %s\n", ec2.message().c_str());
          if (bufev::any(e, bufev::events::eof | bufev::events::error)) server.reset();
        });
    server->enable(bufev::direction::read);
  });

  // The client: TLS handshake, then compressed, framed messages.
  auto sock = bufev::make_socket_bufferevent<socket_bev>(io.get_executor());
  if (sock->connect(acceptor.local_endpoint())) return 1;
  auto client = bufev::make_stack(std::move(sock), filters::tls::client(client_ctx, "localhost"),
                                  filters::zlib{interactive}, filters::length_prefix{});
  std::string reply;
  bool connected = false, failed = false;
  client->setcb(
      [&](auto& bev) {
        std::string s(bev.input().size(), '\0');
        s.resize(bev.read(s.data(), s.size()));
        reply += s;
      },
      nullptr,
      [&](auto&, bufev::events e, std::error_code ec) {
        // The TLS layer's connected: the handshake is done (the socket's own
        // connected is consumed by the filter).
        if (bufev::any(e, bufev::events::connected)) connected = true;
        if (bufev::any(e, bufev::events::error)) {
          std::printf("client error: %s\n", ec.message().c_str());
          failed = true;
        }
      });
  client->enable(bufev::direction::read);
  const std::string text(100000, 'z');  // compresses well
  (void)client->write(text);            // queued until the handshake is done
  while (!connected && !failed) io.run_one();
  if (failed) return 1;
  while (reply.find('\n') == std::string::npos && !failed) io.run_one();
  std::printf("client: %s", reply.c_str());
  auto& tls_filter = client->underlying().underlying().transport().filter();
  std::printf("client: %.*s, %.*s, SNI %.*s\n", static_cast<int>(tls_filter.protocol().size()),
              tls_filter.protocol().data(), static_cast<int>(tls_filter.cipher().size()), tls_filter.cipher().data(),
              static_cast<int>(tls_filter.server_name().size()), tls_filter.server_name().data());
  // Graceful close: framing, zlib trailer, close_notify, then the socket closes.
  client.reset_gracefully();
  while (server) io.run_one();

  // Fire and forget: write, then let go before the handshake has even started.
  // The TLS layer waits for the handshake, sends the message, the zlib trailer
  // and close_notify; the socket then lingers until the server has closed too,
  // so the server's session tickets cannot reset the connection under the data.
  server_stack late;
  std::string late_got;
  bool late_done = false;
  acceptor.async_accept([&](std::error_code ec, tcp::socket s) {
    if (ec) return;
    late = make_server(std::move(s));
    late->setcb(
        [&](auto& bev) {
          std::string msg(bev.input().size(), '\0');
          msg.resize(bev.read(msg.data(), msg.size()));
          late_got += msg;
        },
        nullptr,
        [&](auto&, bufev::events e, std::error_code) {
          if (bufev::any(e, bufev::events::eof | bufev::events::error)) {
            late_done = true;
            late.reset();
          }
        });
    late->enable(bufev::direction::read);
  });
  auto sock2 = bufev::make_socket_bufferevent<socket_bev>(io.get_executor());
  if (sock2->connect(acceptor.local_endpoint())) return 1;
  auto fire = bufev::make_stack(std::move(sock2), filters::tls::client(client_ctx, "localhost"),
                                filters::zlib{interactive}, filters::length_prefix{});
  (void)fire->write("fire and forget\n");
  fire.reset_gracefully();
  while (!late_done) io.run_one();
  std::printf("server, from a client that closed before its handshake: %s", late_got.c_str());
  return server_got == text && late_got == "fire and forget\n" ? 0 : 1;
}
