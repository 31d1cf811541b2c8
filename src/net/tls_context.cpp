#include "net/tls_context.h"

#include <openssl/ssl.h>

#include <stdexcept>
#include <string>

namespace chatd::net {

namespace ssl = boost::asio::ssl;

namespace {

constexpr auto base_options = ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                              ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1;

// Mozilla's "intermediate" list for TLS 1.2 (every TLS 1.3 suite is AEAD and
// forward-secret already, so OpenSSL's default 1.3 suites stay).
constexpr const char* tls12_ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

}  // namespace

ssl::context make_server_tls_context(const tls_options& opt) {
  if (opt.cert_file.empty() || opt.key_file.empty()) {
    throw std::runtime_error("TLS needs both a certificate file and a key file");
  }
  ssl::context ctx(ssl::context::tls_server);
  ctx.set_options(base_options | ssl::context::single_dh_use);
  SSL_CTX* native = ctx.native_handle();
  SSL_CTX_set_options(native, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  if (SSL_CTX_set_cipher_list(native, tls12_ciphers) != 1) {
    throw std::runtime_error("TLS: the cipher list is not supported by this OpenSSL");
  }
  boost::system::error_code ec;
  ctx.use_certificate_chain_file(opt.cert_file, ec);
  if (ec) throw std::runtime_error("TLS: cannot use certificate file " + opt.cert_file + ": " + ec.message());
  ctx.use_private_key_file(opt.key_file, ssl::context::pem, ec);
  if (ec) throw std::runtime_error("TLS: cannot use key file " + opt.key_file + ": " + ec.message());
  if (SSL_CTX_check_private_key(native) != 1) {
    throw std::runtime_error("TLS: key file " + opt.key_file + " does not match certificate " + opt.cert_file);
  }
  return ctx;
}

ssl::context& client_tls_context() {
  static ssl::context ctx = [] {
    ssl::context c(ssl::context::tls_client);
    c.set_options(base_options);
    c.set_default_verify_paths();
    c.set_verify_mode(ssl::verify_peer);
    return c;
  }();
  return ctx;
}

}  // namespace chatd::net
