#include "providers/mqtt/paho_status.h"

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace herald {
namespace {

TEST(MqttPublishFailureStatusTest, MapsBrokerReasonCodes) {
  const absl::Status denied = PublishFailureStatus(0, 135, "devices/s1/x");
  EXPECT_EQ(denied.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(absl::StrContains(denied.message(), "\"devices/s1/x\"")) << denied;
  EXPECT_TRUE(absl::StrContains(denied.message(), "not authorized (reason code 135)")) << denied;

  EXPECT_EQ(PublishFailureStatus(0, 144, "t").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(PublishFailureStatus(0, 149, "t").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(PublishFailureStatus(0, 151, "t").code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(PublishFailureStatus(0, 137, "t").code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(PublishFailureStatus(0, 128, "t").code(), absl::StatusCode::kUnknown);
  EXPECT_EQ(PublishFailureStatus(0, 131, "t").code(), absl::StatusCode::kUnknown);
}

TEST(MqttPublishFailureStatusTest, LocalFailuresUseThePahoReturnCode) {
  // 255 marks MQTT 3.1.1 in Paho C++; the return code says what happened.
  EXPECT_EQ(PublishFailureStatus(-3, 255, "t").code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(PublishFailureStatus(-11, 0, "t").code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(PublishFailureStatus(-12, 0, "t").code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(PublishFailureStatus(-5, 0, "t").code(), absl::StatusCode::kInvalidArgument);
  // No return code and no reason must still be an error.
  EXPECT_FALSE(PublishFailureStatus(0, 0, "t").ok());
}

TEST(MqttSubscribeFailureStatusTest, MapsSubackRefusals) {
  const absl::Status denied = SubscribeFailureStatus(0, 135, "devices/#");
  EXPECT_EQ(denied.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(denied.message(),
            "broker refused the subscribe to \"devices/#\": not authorized (reason code 135)");
  EXPECT_EQ(SubscribeFailureStatus(0, 143, "f").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SubscribeFailureStatus(0, 158, "f").code(), absl::StatusCode::kFailedPrecondition);
  // MQTT 3.1.1: SUBACK 0x80 arrives as the return code.
  EXPECT_EQ(SubscribeFailureStatus(0x80, 255, "f").code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(SubscribeFailureStatus(-3, 255, "f").code(), absl::StatusCode::kUnavailable);
}

TEST(MqttPahoErrorStatusTest, NamesTheOperation) {
  const absl::Status status = PahoErrorStatus(-3, "publish to \"a\"");
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(status.message(),
            "publish to \"a\": not connected to the broker (Paho return code -3)");
  EXPECT_EQ(PahoErrorStatus(-2, "x").code(), absl::StatusCode::kInternal);
  EXPECT_EQ(PahoErrorStatus(-9999, "x").code(), absl::StatusCode::kInternal);
}

TEST(MqttConnectFailureTextTest, Mqtt5RefusalComesAsReturnCode) {
  EXPECT_EQ(ConnectFailureText(135, 0, 5, false, ""),
            "broker refused the connection: not authorized (reason code 135)");
  EXPECT_EQ(ConnectFailureText(134, 0, 5, false, ""),
            "broker refused the connection: bad user name or password (reason code 134)");
}

TEST(MqttConnectFailureTextTest, Mqtt311ConnackCodes) {
  EXPECT_EQ(ConnectFailureText(5, 255, 4, false, ""),
            "broker refused the connection: not authorized (CONNACK return code 5)");
  EXPECT_EQ(ConnectFailureText(4, 255, 4, false, ""),
            "broker refused the connection: bad user name or password (CONNACK return code 4)");
}

TEST(MqttConnectFailureTextTest, TransportFailures) {
  EXPECT_TRUE(absl::StrContains(ConnectFailureText(-1, 0, 5, false, ""), "TCP connect failed"));
  EXPECT_TRUE(absl::StrContains(ConnectFailureText(-1, 0, 5, true, ""), "TLS handshake"));
  EXPECT_EQ(ConnectFailureText(-1, 0, 5, true, "certificate verify failed"),
            "TLS handshake failed: certificate verify failed");
}

TEST(MqttSummarizeTlsErrorsTest, ExtractsOpenSslReasons) {
  EXPECT_EQ(SummarizeTlsErrors(
                "C0E69FBE587F0000:error:0A000086:SSL routines:tls_post_process_server_certificate:"
                "certificate verify failed:../ssl/statem/statem_clnt.c:1889:\n"),
            "certificate verify failed");
  EXPECT_EQ(SummarizeTlsErrors("1:error:1:lib:f:reason a:file:1:\n2:error:2:lib:g:reason b:file:2:\n"
                               "3:error:1:lib:f:reason a:file:1:\n"),
            "reason a; reason b");
  EXPECT_EQ(SummarizeTlsErrors("  something else  \n"), "something else");
}

TEST(MqttReasonNameTest, LowerCaseNames) {
  EXPECT_EQ(MqttReasonName(16), "no matching subscribers");
  EXPECT_EQ(MqttReasonName(135), "not authorized");
}

}  // namespace
}  // namespace herald
