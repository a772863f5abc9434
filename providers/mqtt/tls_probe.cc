#include "providers/mqtt/tls_probe.h"

#include <arpa/inet.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "providers/mqtt/tcp_probe.h"

namespace herald {
namespace {

struct SslCtxFree {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
struct SslFree {
  void operator()(SSL* ssl) const { SSL_free(ssl); }
};
struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};

// The first certificate the verification refused, and why; filled in by
// RecordVerifyError during the handshake.
struct VerifyFailure {
  int error = X509_V_OK;
  int depth = 0;
  std::string subject;
  std::string issuer;
  std::string not_before;
  std::string not_after;
};

std::string NameText(const X509_NAME* name) {
  if (name == nullptr) return "(no name)";
  std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
  X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return size > 0 ? std::string(data, static_cast<size_t>(size)) : "(empty name)";
}

std::string TimeText(const ASN1_TIME* time) {
  std::tm parts{};
  if (time == nullptr || ASN1_TIME_to_tm(time, &parts) != 1) return "(unreadable)";
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%d %H:%M:%S UTC", &parts);
  return text;
}

int RecordVerifyError(int preverify_ok, X509_STORE_CTX* store) {
  if (preverify_ok == 1) return 1;
  auto* ssl =
      static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
  auto* failure = ssl == nullptr ? nullptr : static_cast<VerifyFailure*>(SSL_get_app_data(ssl));
  if (failure != nullptr && failure->error == X509_V_OK) {
    failure->error = X509_STORE_CTX_get_error(store);
    failure->depth = X509_STORE_CTX_get_error_depth(store);
    if (const X509* cert = X509_STORE_CTX_get_current_cert(store); cert != nullptr) {
      failure->subject = NameText(X509_get_subject_name(cert));
      failure->issuer = NameText(X509_get_issuer_name(cert));
      failure->not_before = TimeText(X509_get0_notBefore(cert));
      failure->not_after = TimeText(X509_get0_notAfter(cert));
    }
  }
  return 0;  // stop the handshake at the first problem, as Paho does
}

// OpenSSL's queued error reasons, deduplicated, e.g. "wrong version number".
std::string OpenSslReasons() {
  std::vector<std::string> reasons;
  while (const unsigned long error = ERR_get_error()) {
    const char* reason = ERR_reason_error_string(error);
    std::string text = reason != nullptr ? reason : absl::StrCat("error ", error);
    bool seen = false;
    for (const std::string& r : reasons) seen = seen || r == text;
    if (!seen) reasons.push_back(std::move(text));
  }
  return reasons.empty() ? "no reason given" : absl::StrJoin(reasons, "; ");
}

// Whether OpenSSL's queue holds an alert the broker sent (its reason codes
// are the alert number plus SSL_AD_REASON_OFFSET).
bool PeerSentAlert() {
  const unsigned long error = ERR_peek_last_error();
  return ERR_GET_LIB(error) == ERR_LIB_SSL && ERR_GET_REASON(error) >= SSL_AD_REASON_OFFSET;
}

std::string VerifyFailureText(const VerifyFailure& failure, const std::string& host,
                              const TlsProbeOptions& options) {
  const std::string which =
      failure.depth == 0
          ? absl::StrCat("the broker's certificate (", failure.subject, ")")
          : absl::StrCat("the certificate \"", failure.subject, "\" in the broker's chain");
  const char* reason = X509_verify_cert_error_string(failure.error);
  switch (failure.error) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
      return absl::StrCat(which, " has expired: it was valid until ", failure.not_after, " (from ",
                          failure.not_before, "); renew it");
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return absl::StrCat(which, " is not valid yet: it is valid from ", failure.not_before,
                          "; check the clocks of the broker's and Herald's hosts");
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
      return absl::StrCat(which, " is not issued for \"", host, "\" (", reason,
                          "): connect by a name the certificate lists");
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
      return absl::StrCat(which, ", issued by \"", failure.issuer, "\", does not chain to a CA in ",
                          options.ca_file.empty() ? "the system's trust store"
                                                  : absl::StrCat("\"", options.ca_file, "\""),
                          " (", reason, ")");
    default:
      return absl::StrCat(which, " was refused: ", reason);
  }
}

// Waits until `fd` is readable (or writable) or `deadline` passes.
bool WaitFor(int fd, bool write, absl::Time deadline) {
  while (true) {
    const int64_t remaining_ms = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (remaining_ms <= 0) return false;
    pollfd poll_fd{.fd = fd, .events = static_cast<short>(write ? POLLOUT : POLLIN), .revents = 0};
    const int ready = poll(&poll_fd, 1, static_cast<int>(remaining_ms));
    if (ready < 0 && errno == EINTR) continue;
    return ready > 0;
  }
}

bool IsIpAddress(const std::string& host) {
  unsigned char address[16];
  return inet_pton(AF_INET, host.c_str(), address) == 1 ||
         inet_pton(AF_INET6, host.c_str(), address) == 1;
}

// The client context: trust store and verification, client certificate.
absl::StatusOr<std::unique_ptr<SSL_CTX, SslCtxFree>> MakeContext(const TlsProbeOptions& options) {
  std::unique_ptr<SSL_CTX, SslCtxFree> ctx(SSL_CTX_new(TLS_client_method()));
  if (ctx == nullptr) {
    return absl::InternalError(absl::StrCat("cannot set up TLS: ", OpenSslReasons()));
  }
  if (options.verify) {
    const int loaded = options.ca_file.empty() ? SSL_CTX_set_default_verify_paths(ctx.get())
                                               : SSL_CTX_load_verify_locations(
                                                     ctx.get(), options.ca_file.c_str(), nullptr);
    if (loaded != 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot load the CA file \"", options.ca_file, "\": ", OpenSslReasons()));
    }
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, RecordVerifyError);
  } else {
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
  }
  if (!options.cert_file.empty()) {
    // The default password callback reads the password from the userdata.
    SSL_CTX_set_default_passwd_cb_userdata(ctx.get(),
                                           const_cast<char*>(options.key_password.c_str()));
    const std::string& key_file = options.key_file.empty() ? options.cert_file : options.key_file;
    if (SSL_CTX_use_certificate_chain_file(ctx.get(), options.cert_file.c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx.get(), key_file.c_str(), SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx.get()) != 1) {
      return absl::InvalidArgumentError(absl::StrCat("cannot use the client certificate \"",
                                                     options.cert_file, "\" with the key \"",
                                                     key_file, "\": ", OpenSslReasons()));
    }
    SSL_CTX_set_default_passwd_cb_userdata(ctx.get(), nullptr);
  }
  return ctx;
}

// The handshake on a connected socket.
absl::Status Handshake(int fd, const std::string& host, const TlsProbeOptions& options,
                       SSL_CTX* ctx, absl::Time deadline) {
  std::unique_ptr<SSL, SslFree> ssl(SSL_new(ctx));
  if (ssl == nullptr || SSL_set_fd(ssl.get(), fd) != 1) {
    return absl::InternalError(absl::StrCat("cannot set up TLS: ", OpenSslReasons()));
  }
  VerifyFailure failure;
  SSL_set_app_data(ssl.get(), &failure);
  const bool ip = IsIpAddress(host);
  if (!ip) SSL_set_tlsext_host_name(ssl.get(), host.c_str());
  if (options.verify) {
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl.get());
    if (ip) {
      X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str());
    } else {
      X509_VERIFY_PARAM_set1_host(param, host.c_str(), 0);
    }
  }
  const std::string where = absl::StrCat("TLS handshake with ", host);

  while (true) {
    const int rc = SSL_connect(ssl.get());
    if (rc == 1) break;
    const int error = SSL_get_error(ssl.get(), rc);
    if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) {
      if (!WaitFor(fd, error == SSL_ERROR_WANT_WRITE, deadline)) {
        return absl::UnavailableError(absl::StrCat(where, " timed out"));
      }
      continue;
    }
    if (failure.error != X509_V_OK) {
      ERR_clear_error();
      return absl::FailedPreconditionError(VerifyFailureText(failure, host, options));
    }
    if (error == SSL_ERROR_SSL && PeerSentAlert()) {
      return absl::PermissionDeniedError(
          absl::StrCat("the broker refused the TLS handshake: ", OpenSslReasons()));
    }
    if (error == SSL_ERROR_SSL) {
      return absl::UnavailableError(absl::StrCat(where, " failed: ", OpenSslReasons()));
    }
    ERR_clear_error();
    return absl::UnavailableError(
        absl::StrCat(where, ": the broker closed the connection during the handshake"));
  }

  // Under TLS 1.3 the broker checks the client's certificate after the
  // client's side of the handshake is done; a refusal arrives as an alert
  // right away. Session tickets may arrive first: keep reading a moment.
  const absl::Time settle = std::min(deadline, absl::Now() + absl::Milliseconds(300));
  char byte;
  while (WaitFor(fd, /*write=*/false, settle)) {
    const int rc = SSL_read(ssl.get(), &byte, 1);
    if (rc > 0) break;  // the broker talks first: it accepted the connection
    const int error = SSL_get_error(ssl.get(), rc);
    if (error == SSL_ERROR_WANT_READ) continue;
    if (error == SSL_ERROR_SSL && PeerSentAlert()) {
      return absl::PermissionDeniedError(absl::StrCat(
          "the broker refused the client right after the handshake: ", OpenSslReasons()));
    }
    ERR_clear_error();
    return absl::PermissionDeniedError(
        "the broker closed the connection right after the TLS handshake");
  }
  (void)SSL_shutdown(ssl.get());
  ERR_clear_error();
  return absl::OkStatus();
}

}  // namespace

absl::Status ProbeTlsHandshake(const std::string& host, int port, const TlsProbeOptions& options,
                               absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  ERR_clear_error();
  absl::StatusOr<std::unique_ptr<SSL_CTX, SslCtxFree>> ctx = MakeContext(options);
  if (!ctx.ok()) return ctx.status();
  absl::StatusOr<int> fd = OpenTcpConnection(host, port, deadline);
  if (!fd.ok()) return fd.status();
  const absl::Status handshake = Handshake(*fd, host, options, ctx->get(), deadline);
  close(*fd);
  return handshake;
}

}  // namespace herald
