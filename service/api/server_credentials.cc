#include "service/api/server_credentials.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace herald::api {
namespace {

constexpr char kCertFlag[] = "--grpc_tls_cert_file";
constexpr char kKeyFlag[] = "--grpc_tls_key_file";
constexpr char kClientCaFlag[] = "--grpc_tls_client_ca_file";

struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct X509Free {
  void operator()(X509* x509) const { X509_free(x509); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
using Bio = std::unique_ptr<BIO, BioFree>;
using Certificate = std::unique_ptr<X509, X509Free>;
using PrivateKey = std::unique_ptr<EVP_PKEY, PkeyFree>;

// OpenSSL keeps errors in a per-thread queue; leave it empty for the TLS
// code that runs on this thread later (gRPC reads the queue after a failed
// handshake).
class ClearOpenSslErrors {
 public:
  ClearOpenSslErrors() { ERR_clear_error(); }
  ~ClearOpenSslErrors() { ERR_clear_error(); }
};

Bio MemoryBio(const std::string& pem) {
  return Bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

// The reason of OpenSSL's latest error ("bad base64 decode"), never data.
std::string OpenSslReason() {
  const unsigned long error = ERR_peek_last_error();
  const char* reason = error != 0 ? ERR_reason_error_string(error) : nullptr;
  return reason != nullptr ? reason : "unknown error";
}

// Refuses to prompt for a passphrase: an encrypted key fails to load.
int NoPassphrase(char*, int, int, void*) { return 0; }

// Every certificate in `pem` (other PEM blocks are skipped), in order.
absl::StatusOr<std::vector<Certificate>> ParseCertificates(const std::string& pem,
                                                           const char* flag) {
  Bio bio = MemoryBio(pem);
  if (bio == nullptr) return absl::ResourceExhaustedError("cannot allocate an OpenSSL BIO");
  std::vector<Certificate> certificates;
  while (true) {
    Certificate certificate(PEM_read_bio_X509(bio.get(), nullptr, NoPassphrase, nullptr));
    if (certificate == nullptr) break;
    certificates.push_back(std::move(certificate));
  }
  // The loop ends at the end of the text (PEM "no start line") or at a block
  // that does not parse.
  const unsigned long error = ERR_peek_last_error();
  const bool at_end = ERR_GET_LIB(error) == ERR_LIB_PEM &&
                      ERR_GET_REASON(error) == PEM_R_NO_START_LINE;
  if (error != 0 && !at_end) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": certificate ",
                                                   certificates.size() + 1,
                                                   " does not parse: ", OpenSslReason()));
  }
  if (certificates.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": holds no PEM certificate (\"-----BEGIN CERTIFICATE-----\")"));
  }
  ERR_clear_error();
  return certificates;
}

absl::StatusOr<PrivateKey> ParsePrivateKey(const std::string& pem) {
  Bio bio = MemoryBio(pem);
  if (bio == nullptr) return absl::ResourceExhaustedError("cannot allocate an OpenSSL BIO");
  PrivateKey key(PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassphrase, nullptr));
  if (key != nullptr) return key;
  // Traditional ("Proc-Type: 4,ENCRYPTED") and PKCS#8 ("ENCRYPTED PRIVATE KEY").
  if (absl::StrContains(pem, "ENCRYPTED")) {
    return absl::InvalidArgumentError(absl::StrCat(
        kKeyFlag, ": the private key is encrypted, which Herald does not support; store it "
                  "decrypted in a file only Herald can read (openssl pkey -in KEY -out PLAIN)"));
  }
  return absl::InvalidArgumentError(
      absl::StrCat(kKeyFlag, ": holds no private key that parses (an unencrypted PEM key): ",
                   OpenSslReason()));
}

// The subject of `certificate` in one line, e.g. "CN=herald.example.com".
std::string Subject(X509* certificate) {
  char buffer[256];
  X509_NAME_oneline(X509_get_subject_name(certificate), buffer, sizeof(buffer));
  return buffer;
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> TlsServerCredentials(
    const ServerTlsPem& pem) {
  ClearOpenSslErrors clear;
  if (pem.cert_chain.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(kCertFlag, ": TLS needs a certificate"));
  }
  if (pem.private_key.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(kKeyFlag, ": TLS needs a private key"));
  }
  absl::StatusOr<std::vector<Certificate>> chain = ParseCertificates(pem.cert_chain, kCertFlag);
  if (!chain.ok()) return chain.status();
  absl::StatusOr<PrivateKey> key = ParsePrivateKey(pem.private_key);
  if (!key.ok()) return key.status();
  X509* leaf = chain->front().get();
  if (X509_check_private_key(leaf, key->get()) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(kKeyFlag, ": the private key does not belong to the first certificate of ",
                     kCertFlag, " (", Subject(leaf), ")"));
  }

  grpc::SslServerCredentialsOptions options(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  if (!pem.client_ca.empty()) {
    absl::StatusOr<std::vector<Certificate>> client_ca =
        ParseCertificates(pem.client_ca, kClientCaFlag);
    if (!client_ca.ok()) return client_ca.status();
    options.client_certificate_request =
        GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
    options.pem_root_certs = pem.client_ca;
  }
  options.pem_key_cert_pairs.push_back(
      {.private_key = pem.private_key, .cert_chain = pem.cert_chain});
  std::shared_ptr<grpc::ServerCredentials> credentials = grpc::SslServerCredentials(options);
  if (credentials == nullptr) {
    return absl::InternalError("gRPC could not create the TLS server credentials");
  }
  return credentials;
}

}  // namespace herald::api
