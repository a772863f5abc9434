#include "service/api/server_credentials.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace herald::api {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

// A key and a self-signed certificate for it, made in memory (no files, no
// openssl command). The validity dates do not matter: TlsServerCredentials
// does not check them.
struct KeyAndCertificate {
  std::string key;
  std::string certificate;
};

std::string ReadBio(BIO* bio) {
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(size));
}

KeyAndCertificate MakeSelfSigned(const std::string& common_name,
                                 const EVP_CIPHER* key_cipher = nullptr) {
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_EC_gen("P-256"), EVP_PKEY_free);
  std::unique_ptr<X509, decltype(&X509_free)> certificate(X509_new(), X509_free);
  EXPECT_TRUE(key != nullptr && certificate != nullptr);
  X509_set_version(certificate.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(certificate.get()), 1);
  X509_gmtime_adj(X509_getm_notBefore(certificate.get()), 0);
  X509_gmtime_adj(X509_getm_notAfter(certificate.get()), 3600);
  X509_set_pubkey(certificate.get(), key.get());
  X509_NAME* name = X509_get_subject_name(certificate.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1,
                             0);
  X509_set_issuer_name(certificate.get(), name);
  EXPECT_GT(X509_sign(certificate.get(), key.get(), EVP_sha256()), 0);

  KeyAndCertificate out;
  std::unique_ptr<BIO, decltype(&BIO_free)> key_bio(BIO_new(BIO_s_mem()), BIO_free);
  static char passphrase[] = "passphrase";
  EXPECT_EQ(PEM_write_bio_PKCS8PrivateKey(key_bio.get(), key.get(), key_cipher, passphrase,
                                          sizeof(passphrase) - 1, nullptr, nullptr),
            1);
  out.key = ReadBio(key_bio.get());
  std::unique_ptr<BIO, decltype(&BIO_free)> cert_bio(BIO_new(BIO_s_mem()), BIO_free);
  EXPECT_EQ(PEM_write_bio_X509(cert_bio.get(), certificate.get()), 1);
  out.certificate = ReadBio(cert_bio.get());
  return out;
}

// The base64 body of a PEM block's first line: key material a message must
// never show.
std::string FirstBodyLine(const std::string& pem) {
  const size_t start = pem.find('\n') + 1;
  return pem.substr(start, pem.find('\n', start) - start);
}

TEST(TlsServerCredentialsTest, CertificateAndKeyMakeTlsCredentials) {
  const KeyAndCertificate server = MakeSelfSigned("herald.test");
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
      TlsServerCredentials({.cert_chain = server.certificate, .private_key = server.key});
  ASSERT_TRUE(credentials.ok()) << credentials.status();
  EXPECT_NE(*credentials, nullptr);
}

TEST(TlsServerCredentialsTest, ClientCaMakesMutualTlsCredentials) {
  const KeyAndCertificate server = MakeSelfSigned("herald.test");
  const KeyAndCertificate client_ca = MakeSelfSigned("clients CA");
  const KeyAndCertificate other_ca = MakeSelfSigned("other CA");
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials = TlsServerCredentials(
      {.cert_chain = server.certificate,
       .private_key = server.key,
       .client_ca = client_ca.certificate + other_ca.certificate});  // a bundle
  ASSERT_TRUE(credentials.ok()) << credentials.status();
  EXPECT_NE(*credentials, nullptr);
}

TEST(TlsServerCredentialsTest, KeyAndCertificateInOneFileWork) {
  const KeyAndCertificate server = MakeSelfSigned("herald.test");
  const std::string combined = server.key + server.certificate;
  EXPECT_TRUE(TlsServerCredentials({.cert_chain = combined, .private_key = combined}).ok());
}

TEST(TlsServerCredentialsTest, EmptyInputsNameTheirFlags) {
  const KeyAndCertificate server = MakeSelfSigned("herald.test");
  absl::Status status = TlsServerCredentials({.private_key = server.key}).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("--grpc_tls_cert_file"));
  status = TlsServerCredentials({.cert_chain = server.certificate}).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("--grpc_tls_key_file"));
}

TEST(TlsServerCredentialsTest, ChainWithoutCertificateIsRefused) {
  const KeyAndCertificate server = MakeSelfSigned("herald.test");
  // A key where the certificate belongs: a swapped pair of flags.
  absl::Status status =
      TlsServerCredentials({.cert_chain = server.key, .private_key = server.key}).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), AllOf(HasSubstr("--grpc_tls_cert_file: holds no PEM certificate"),
                                      Not(HasSubstr(FirstBodyLine(server.key)))));
}

TEST(TlsServerCredentialsTest, CorruptCertificateIsRefused) {
  const KeyAndCertificate server = MakeSelfSigned("herald.test");
  const std::string corrupt =
      "-----BEGIN CERTIFICATE-----\nnot*base64*at*all\n-----END CERTIFICATE-----\n";
  absl::Status status = TlsServerCredentials({.cert_chain = server.certificate + corrupt,
                                              .private_key = server.key})
                            .status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(),
              HasSubstr("--grpc_tls_cert_file: certificate 2 does not parse"));
}

TEST(TlsServerCredentialsTest, KeyOfAnotherCertificateIsRefusedWithoutShowingIt) {
  const KeyAndCertificate server = MakeSelfSigned("herald.test");
  const KeyAndCertificate other = MakeSelfSigned("other.test");
  absl::Status status =
      TlsServerCredentials({.cert_chain = server.certificate, .private_key = other.key}).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(),
              AllOf(HasSubstr("--grpc_tls_key_file: the private key does not belong"),
                    HasSubstr("--grpc_tls_cert_file"), HasSubstr("CN=herald.test"),
                    Not(HasSubstr(FirstBodyLine(other.key)))));
}

TEST(TlsServerCredentialsTest, EncryptedKeyIsRefusedWithoutPrompting) {
  const KeyAndCertificate server = MakeSelfSigned("herald.test", EVP_aes_256_cbc());
  ASSERT_THAT(server.key, HasSubstr("ENCRYPTED PRIVATE KEY"));
  absl::Status status =
      TlsServerCredentials({.cert_chain = server.certificate, .private_key = server.key})
          .status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), AllOf(HasSubstr("--grpc_tls_key_file"), HasSubstr("encrypted")));
}

TEST(TlsServerCredentialsTest, GarbledKeyIsRefused) {
  const KeyAndCertificate server = MakeSelfSigned("herald.test");
  const std::string garbled =
      "-----BEGIN PRIVATE KEY-----\nAAAAsecretAAAA\n-----END PRIVATE KEY-----\n";
  absl::Status status =
      TlsServerCredentials({.cert_chain = server.certificate, .private_key = garbled}).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), AllOf(HasSubstr("--grpc_tls_key_file: holds no private key"),
                                      Not(HasSubstr("AAAAsecretAAAA"))));
}

TEST(TlsServerCredentialsTest, ClientCaWithoutCertificateIsRefused) {
  const KeyAndCertificate server = MakeSelfSigned("herald.test");
  absl::Status status = TlsServerCredentials({.cert_chain = server.certificate,
                                              .private_key = server.key,
                                              .client_ca = server.key})
                            .status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("--grpc_tls_client_ca_file: holds no PEM certificate"));
}

}  // namespace
}  // namespace herald::api
