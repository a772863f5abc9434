#include "providers/mqtt/paho_status.h"

#include <string>
#include <string_view>
#include <vector>

#include "MQTTAsync.h"
#include "MQTTReasonCodes.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace herald {
namespace {

// Debian's Abseil has its own string_view, distinct from std::string_view.
absl::string_view Av(std::string_view text) { return absl::string_view(text.data(), text.size()); }

// Paho C++ marks failures of MQTT 3.1.1 operations with this reason code
// (mqtt::ReasonCode::MQTTPP_V3_CODE); it is not a protocol value.
constexpr int kPahoV3ReasonMarker = 255;

bool IsBrokerFailureReason(int reason_code) {
  return reason_code >= MQTTREASONCODE_UNSPECIFIED_ERROR && reason_code != kPahoV3ReasonMarker;
}

// MQTT 3.1.1 CONNACK return codes 1 to 5.
std::string_view ConnackV3Name(int rc) {
  switch (rc) {
    case 1: return "unacceptable protocol version";
    case 2: return "client identifier rejected";
    case 3: return "server unavailable";
    case 4: return "bad user name or password";
    case 5: return "not authorized";
  }
  return {};
}

std::string PahoErrorText(int rc) {
  switch (rc) {
    case MQTTASYNC_FAILURE: return "operation failed";
    case MQTTASYNC_PERSISTENCE_ERROR: return "persistence error";
    case MQTTASYNC_DISCONNECTED: return "not connected to the broker";
    case MQTTASYNC_MAX_MESSAGES_INFLIGHT: return "too many messages in flight";
    case MQTTASYNC_BAD_UTF8_STRING: return "invalid UTF-8 string";
    case MQTTASYNC_NULL_PARAMETER: return "missing parameter";
    case MQTTASYNC_TOPICNAME_TRUNCATED: return "topic name contains a NUL character";
    case MQTTASYNC_BAD_STRUCTURE: return "bad structure";
    case MQTTASYNC_BAD_QOS: return "QoS must be 0, 1 or 2";
    case MQTTASYNC_NO_MORE_MSGIDS: return "no free packet identifier";
    case MQTTASYNC_OPERATION_INCOMPLETE: return "interrupted by a lost connection";
    case MQTTASYNC_MAX_BUFFERED_MESSAGES: return "client buffer full";
    case MQTTASYNC_SSL_NOT_SUPPORTED: return "TLS is not supported by this Paho build";
    case MQTTASYNC_BAD_PROTOCOL: return "unsupported URI scheme";
    case MQTTASYNC_BAD_MQTT_OPTION: return "option not valid for this MQTT version";
    case MQTTASYNC_WRONG_MQTT_VERSION: return "wrong MQTT version";
    case MQTTASYNC_0_LEN_WILL_TOPIC: return "empty will topic";
    case MQTTASYNC_COMMAND_IGNORED: return "command ignored (client disconnecting)";
    case MQTTASYNC_MAX_BUFFERED: return "client buffer full";
  }
  return absl::StrCat("Paho error ", rc);
}

}  // namespace

std::string MqttReasonName(int reason_code) {
  const char* name = MQTTReasonCode_toString(static_cast<enum MQTTReasonCodes>(reason_code));
  if (name == nullptr || *name == '\0') return absl::StrCat("reason code ", reason_code);
  return absl::AsciiStrToLower(name);
}

absl::Status PahoErrorStatus(int rc, std::string_view operation) {
  const std::string message =
      absl::StrCat(Av(operation), ": ", PahoErrorText(rc), " (Paho return code ", rc, ")");
  switch (rc) {
    case MQTTASYNC_FAILURE:
    case MQTTASYNC_DISCONNECTED:
    case MQTTASYNC_OPERATION_INCOMPLETE:
    case MQTTASYNC_COMMAND_IGNORED:
      return absl::UnavailableError(message);
    case MQTTASYNC_MAX_MESSAGES_INFLIGHT:
    case MQTTASYNC_NO_MORE_MSGIDS:
    case MQTTASYNC_MAX_BUFFERED_MESSAGES:
    case MQTTASYNC_MAX_BUFFERED:
      return absl::ResourceExhaustedError(message);
    case MQTTASYNC_BAD_UTF8_STRING:
    case MQTTASYNC_NULL_PARAMETER:
    case MQTTASYNC_TOPICNAME_TRUNCATED:
    case MQTTASYNC_BAD_QOS:
    case MQTTASYNC_BAD_PROTOCOL:
    case MQTTASYNC_BAD_MQTT_OPTION:
    case MQTTASYNC_WRONG_MQTT_VERSION:
    case MQTTASYNC_0_LEN_WILL_TOPIC:
      return absl::InvalidArgumentError(message);
    default:
      return absl::InternalError(message);
  }
}

absl::Status PublishFailureStatus(int rc, int reason_code, std::string_view topic) {
  const std::string operation = absl::StrCat("publish to \"", Av(topic), "\"");
  if (!IsBrokerFailureReason(reason_code)) {
    // A local failure; rc 0 with no reason should not happen, but must not
    // read as success.
    return PahoErrorStatus(rc == MQTTASYNC_SUCCESS ? MQTTASYNC_FAILURE : rc, operation);
  }
  const std::string message =
      absl::StrCat("broker refused the ", operation, ": ", MqttReasonName(reason_code),
                   " (reason code ", reason_code, ")");
  switch (reason_code) {
    case MQTTREASONCODE_NOT_AUTHORIZED:
      return absl::PermissionDeniedError(message);
    case MQTTREASONCODE_TOPIC_NAME_INVALID:
    case MQTTREASONCODE_PACKET_TOO_LARGE:
    case MQTTREASONCODE_PAYLOAD_FORMAT_INVALID:
    case MQTTREASONCODE_RETAIN_NOT_SUPPORTED:
    case MQTTREASONCODE_QOS_NOT_SUPPORTED:
    case MQTTREASONCODE_TOPIC_ALIAS_INVALID:
      return absl::InvalidArgumentError(message);
    case MQTTREASONCODE_QUOTA_EXCEEDED:
    case MQTTREASONCODE_MESSAGE_RATE_TOO_HIGH:
    case MQTTREASONCODE_RECEIVE_MAXIMUM_EXCEEDED:
      return absl::ResourceExhaustedError(message);
    case MQTTREASONCODE_PACKET_IDENTIFIER_IN_USE:
    case MQTTREASONCODE_SERVER_UNAVAILABLE:
    case MQTTREASONCODE_SERVER_BUSY:
    case MQTTREASONCODE_SERVER_SHUTTING_DOWN:
      return absl::UnavailableError(message);
    default:
      return absl::UnknownError(message);
  }
}

absl::Status SubscribeFailureStatus(int rc, int reason_code, std::string_view filter) {
  const std::string operation = absl::StrCat("subscribe to \"", Av(filter), "\"");
  if (IsBrokerFailureReason(reason_code)) {
    const std::string message =
        absl::StrCat("broker refused the ", operation, ": ", MqttReasonName(reason_code),
                     " (reason code ", reason_code, ")");
    switch (reason_code) {
      case MQTTREASONCODE_NOT_AUTHORIZED:
        return absl::PermissionDeniedError(message);
      case MQTTREASONCODE_TOPIC_FILTER_INVALID:
        return absl::InvalidArgumentError(message);
      default:
        return absl::FailedPreconditionError(message);
    }
  }
  if (rc == MQTT_BAD_SUBSCRIBE) {
    return absl::PermissionDeniedError(
        absl::StrCat("broker refused the ", operation, " (SUBACK return code 0x80)"));
  }
  return PahoErrorStatus(rc == MQTTASYNC_SUCCESS ? MQTTASYNC_FAILURE : rc, operation);
}

std::string ConnectFailureText(int rc, int reason_code, int mqtt_version, bool tls,
                               std::string_view tls_errors) {
  // MQTT 5: Paho reports a refusing CONNACK's reason code as the return code.
  if (rc >= MQTTREASONCODE_UNSPECIFIED_ERROR) {
    return absl::StrCat("broker refused the connection: ", MqttReasonName(rc), " (reason code ",
                        rc, ")");
  }
  if (IsBrokerFailureReason(reason_code)) {
    return absl::StrCat("broker refused the connection: ", MqttReasonName(reason_code),
                        " (reason code ", reason_code, ")");
  }
  if (const std::string_view name = ConnackV3Name(rc); mqtt_version == 4 && !name.empty()) {
    return absl::StrCat("broker refused the connection: ", Av(name), " (CONNACK return code ",
                        rc, ")");
  }
  if (rc == MQTTASYNC_FAILURE || rc == MQTTASYNC_SUCCESS) {
    if (!tls_errors.empty()) return absl::StrCat("TLS handshake failed: ", Av(tls_errors));
    if (tls) {
      return "TCP connect or TLS handshake failed or timed out (broker unreachable or refusing "
             "connections, or its certificate does not match the host name)";
    }
    return "TCP connect failed or timed out (broker unreachable or refusing connections)";
  }
  return std::string(PahoErrorStatus(rc, "connect").message());
}

std::string SummarizeTlsErrors(std::string_view openssl_errors) {
  std::vector<std::string> reasons;
  for (absl::string_view line :
       absl::StrSplit(Av(openssl_errors), '\n', absl::SkipWhitespace())) {
    // THREAD:error:CODE:LIBRARY:FUNCTION:REASON:FILE:LINE:DATA
    std::vector<absl::string_view> fields = absl::StrSplit(line, ':');
    if (fields.size() >= 6 && fields[1] == "error" && !fields[5].empty()) {
      std::string reason(absl::StripAsciiWhitespace(fields[5]));
      bool seen = false;
      for (const std::string& r : reasons) seen = seen || r == reason;
      if (!seen) reasons.push_back(std::move(reason));
    }
  }
  if (!reasons.empty()) return absl::StrJoin(reasons, "; ");
  constexpr size_t kMaxShown = 300;
  const absl::string_view trimmed = absl::StripAsciiWhitespace(Av(openssl_errors));
  return std::string(trimmed.substr(0, kMaxShown));
}

}  // namespace herald
