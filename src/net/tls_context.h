// The TLS policy of chatd's listeners and clients, in one place. Private to
// src/net (includes Asio's SSL headers).
#pragma once

#include <boost/asio/ssl/context.hpp>

#include "net/server.h"

namespace chatd::net {

// A listener's context: TLS 1.2 and 1.3 only, forward-secret AEAD ciphers
// (ECDHE with AES-GCM or ChaCha20-Poly1305), no compression, no
// renegotiation; the certificate chain and key from the PEM files. Throws
// std::runtime_error naming the file that cannot be used, or when the key
// does not belong to the certificate.
boost::asio::ssl::context make_server_tls_context(const tls_options& opt);

// Every outgoing https/wss connection: TLS 1.2 or newer, the system's trust
// store (SSL_CERT_FILE and SSL_CERT_DIR override it, as for any OpenSSL
// client). Built once: loading the trust store costs milliseconds.
boost::asio::ssl::context& client_tls_context();

}  // namespace chatd::net
