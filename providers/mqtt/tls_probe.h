// ProbeTlsHandshake: why does a TLS connection to the broker fail? Paho
// reports a failed TLS handshake only as "TCP/TLS connect failure": OpenSSL's
// reason goes to an error callback that Paho C++ 1.2 cannot deliver (see
// MqttProvider::Init), and even that says "certificate verify failed", not
// which check failed. After such a failure MqttProvider repeats the
// handshake once, with OpenSSL directly and the same trust settings, so that
// ConnectionStatus::last_error names the cause an operator has to fix: an
// expired or not yet valid certificate, a CA that is not trusted, a
// certificate for another host name, or a client certificate the broker
// refused.
//
//   absl::Status handshake = ProbeTlsHandshake(
//       "broker.local", 8883, {.ca_file = "/etc/herald/ca.pem"}, absl::Seconds(2));
//   // kFailedPrecondition: "the broker's certificate has expired: CN=broker.local
//   // was valid until 2026-11-21 00:00:00 UTC, ..."
//
// Blocks the calling thread for at most `timeout` plus name resolution:
// never call it on a Paho callback thread. Thread-safe.
#ifndef HERALD_PROVIDERS_MQTT_TLS_PROBE_H_
#define HERALD_PROVIDERS_MQTT_TLS_PROBE_H_

#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace herald {

// The client's side of the handshake, as MqttOptions configures Paho.
struct TlsProbeOptions {
  std::string ca_file;    // trusted CAs (PEM); empty: the system's trust store
  std::string cert_file;  // client certificate (PEM), optional
  std::string key_file;   // its key; empty: read from cert_file
  std::string key_password;
  bool verify = true;  // verify the broker's certificate chain and host name
};

// OK if a TLS handshake with `host`:`port` succeeds within `timeout`, and the
// broker does not close the connection at once afterwards (under TLS 1.3 a
// broker refuses a client certificate only after the handshake). With
// options.verify the broker's certificate must chain to a trusted CA, be
// valid now and name `host` (a DNS name or an IP address), as Paho checks.
// Otherwise, with a message fit for an operator:
//   kFailedPrecondition  the broker's certificate was refused: which check
//                        failed, the certificate's subject and issuer, and
//                        its validity period when that is the problem;
//   kPermissionDenied    the broker refused the handshake or dropped the
//                        connection after it (the TLS alert it sent, e.g.
//                        "certificate required");
//   kInvalidArgument     the local TLS files cannot be used (an unreadable
//                        CA file, a key that does not fit the certificate,
//                        a wrong key password);
//   kUnavailable         no TCP connection, a timeout, or another handshake
//                        failure (e.g. the port does not speak TLS).
absl::Status ProbeTlsHandshake(const std::string& host, int port, const TlsProbeOptions& options,
                               absl::Duration timeout);

}  // namespace herald

#endif  // HERALD_PROVIDERS_MQTT_TLS_PROBE_H_
