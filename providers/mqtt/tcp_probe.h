// ProbeTcpConnect: can a TCP connection to HOST:PORT be opened? When Paho
// reports a failed connection attempt it says only "TCP/TLS connect
// failure"; MqttProvider probes the broker's port once after such a failure
// so that ConnectionStatus::last_error can tell an operator "connection
// refused" from "TLS handshake failed" (wrong CA, host name mismatch), the
// two causes that need different fixes.
//
//   absl::Status reachable = ProbeTcpConnect("broker.local", 8883, absl::Seconds(2));
//   // kUnavailable: "TCP connect to broker.local:8883: Connection refused"
//
// Blocks the calling thread for at most `timeout` plus name resolution:
// never call it on a Paho callback thread. Thread-safe.
#ifndef HERALD_PROVIDERS_MQTT_TCP_PROBE_H_
#define HERALD_PROVIDERS_MQTT_TCP_PROBE_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace herald {

// OK if a TCP connection to `host`:`port` (any of its addresses) was
// established within `timeout` (it is closed at once, without sending
// anything). Otherwise kUnavailable naming the address and the system's
// reason (e.g. "Connection refused", "timed out", a resolver error).
absl::Status ProbeTcpConnect(const std::string& host, int port, absl::Duration timeout);

// Like ProbeTcpConnect, but keeps the connection: a connected non-blocking
// socket (the caller closes it), for a probe that goes on to talk (see
// tls_probe.h). Errors as ProbeTcpConnect's.
absl::StatusOr<int> OpenTcpConnection(const std::string& host, int port, absl::Time deadline);

}  // namespace herald

#endif  // HERALD_PROVIDERS_MQTT_TCP_PROBE_H_
