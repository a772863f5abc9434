// Translation of Paho MQTT's numeric outcomes into what Herald's callers can
// act on: absl::Status codes for publishes (the Provider contract:
// kUnavailable is worth a retry, kPermissionDenied is not) and readable text
// for connection failures (ConnectionStatus::last_error, WaitConnected).
// Kept apart from MqttProvider, with plain ints in its interface, so that the
// mapping is unit-tested without a broker and no Paho header leaks out.
//
//   absl::Status s = PublishFailureStatus(/*rc=*/0, /*reason_code=*/135, "devices/s1/x");
//   // kPermissionDenied: broker refused the publish to "devices/s1/x": not
//   // authorized (reason code 135)
//   std::string e = ConnectFailureText(/*rc=*/5, /*reason_code=*/255, 4, false, "");
//   // broker refused the connection: not authorized (CONNACK return code 5)
//
// Pure functions: thread-safe.
#ifndef HERALD_PROVIDERS_MQTT_PAHO_STATUS_H_
#define HERALD_PROVIDERS_MQTT_PAHO_STATUS_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace herald {

// The lower-case name of an MQTT 5 reason code ("not authorized",
// "no matching subscribers"), or "reason code N" for an unknown one.
std::string MqttReasonName(int reason_code);

// A Paho client return code (MQTTASYNC_*, negative) as a status whose
// message starts with `operation` (e.g. "publish to \"a/b\""):
// kUnavailable when the client is not connected or the operation was cut
// short by a lost connection; kResourceExhausted when Paho's buffers or
// packet identifiers ran out; kInvalidArgument for input Paho rejects
// (bad UTF-8, QoS, option); kInternal for Paho's own failures.
absl::Status PahoErrorStatus(int rc, std::string_view operation);

// The outcome of a failed publish token: `reason_code` is the MQTT 5 reason
// the broker sent in PUBACK/PUBREC (0x80 or more), or 255 (Paho's marker for
// MQTT 3.1.1) or 0 when the failure is local, in which case `rc` says why.
// kPermissionDenied for "not authorized"; kInvalidArgument for a topic,
// payload, QoS or retain flag the broker rejects; kResourceExhausted for
// quota and rate limits; kUnavailable for a broker that is busy or going
// away; kUnknown otherwise. The message names the topic and the reason.
absl::Status PublishFailureStatus(int rc, int reason_code, std::string_view topic);

// The outcome of a failed SUBSCRIBE: `reason_code` is the MQTT 5 SUBACK
// reason (0x80 or more) or 255 (MQTT 3.1.1), in which case `rc` is the
// SUBACK return code 0x80 or a Paho return code. kPermissionDenied for "not
// authorized" and for the MQTT 3.1.1 failure code (which brokers use for
// ACL refusals); kInvalidArgument for a filter the broker calls invalid;
// kFailedPrecondition for other refusals (e.g. shared subscriptions not
// supported); PahoErrorStatus for local failures.
absl::Status SubscribeFailureStatus(int rc, int reason_code, std::string_view filter);

// Why a connection attempt failed, for ConnectionStatus::last_error. `rc`
// and `reason_code` come from the failed connect token; `tls` says whether
// the URI used TLS and `tls_errors` carries what OpenSSL reported during the
// attempt (see SummarizeTlsErrors), possibly empty.
std::string ConnectFailureText(int rc, int reason_code, int mqtt_version, bool tls,
                               std::string_view tls_errors);

// The reasons in OpenSSL's error queue dump ("...:error:0A000086:SSL
// routines:tls_post_process_server_certificate:certificate verify failed:
// ../ssl/statem/statem_clnt.c:1889:"), e.g. "certificate verify failed",
// several joined with "; ". Text it cannot parse is returned trimmed.
std::string SummarizeTlsErrors(std::string_view openssl_errors);

}  // namespace herald

#endif  // HERALD_PROVIDERS_MQTT_PAHO_STATUS_H_
