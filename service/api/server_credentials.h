// The credentials of Herald's gRPC port when it speaks TLS, optionally
// mutual TLS, built from the PEM text that the configuration read at start
// (--grpc_tls_cert_file, --grpc_tls_key_file, --grpc_tls_client_ca_file).
//
// Why a module of its own: gRPC takes PEM text without looking at it and
// only fails when the server binds its port, with a log line from its TLS
// layer and a server that does not start. Here the PEM is parsed first
// (OpenSSL, which gRPC uses too), so that a wrong file is an error at start
// that names its flag and says what is wrong: no certificate, an encrypted
// key, a key that belongs to another certificate.
//
//   absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
//       herald::api::TlsServerCredentials({.cert_chain = config.grpc_tls_cert_pem,
//                                          .private_key = config.grpc_tls_key_pem,
//                                          .client_ca = config.grpc_tls_client_ca_pem});
//   if (!credentials.ok()) { /* log credentials.status(), exit */ }
//   builder.AddListeningPort(config.grpc_address, *credentials, &port);
#ifndef HERALD_SERVICE_API_SERVER_CREDENTIALS_H_
#define HERALD_SERVICE_API_SERVER_CREDENTIALS_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/security/server_credentials.h"

namespace herald::api {

// TLS material of the gRPC port, as PEM text.
struct ServerTlsPem {
  // The server's certificate, then any intermediates (--grpc_tls_cert_file).
  std::string cert_chain;
  // The unencrypted private key of the first certificate (--grpc_tls_key_file).
  // A secret: never log it.
  std::string private_key;
  // CA certificate(s) that sign the clients' certificates
  // (--grpc_tls_client_ca_file). Empty: clients are not asked for a
  // certificate. Set: a client without a certificate that one of these
  // signed fails the handshake (mutual TLS).
  std::string client_ca;
};

// Server credentials that accept TLS connections only, presenting
// `pem.cert_chain`, and with `pem.client_ca` requiring and verifying client
// certificates.
//
// kInvalidArgument, naming the flag that supplied the faulty input and never
// quoting key material, when: the chain or the key is empty; the chain or the
// client CA holds no certificate or one that does not parse; the key does
// not parse or is encrypted; the key does not belong to the chain's first
// certificate. Validity dates are not checked (a client will refuse an
// expired certificate, and the replacement needs a restart anyway).
//
// Thread-safe; the credentials may be shared by several servers.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> TlsServerCredentials(
    const ServerTlsPem& pem);

}  // namespace herald::api

#endif  // HERALD_SERVICE_API_SERVER_CREDENTIALS_H_
