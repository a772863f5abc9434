#include "providers/mqtt/mqtt_uri.h"

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace herald {
namespace {

TEST(ParseMqttUriTest, SplitsTheParts) {
  absl::StatusOr<MqttUri> uri = ParseMqttUri("wss://broker.example.com:443/mqtt");
  ASSERT_TRUE(uri.ok()) << uri.status();
  EXPECT_EQ(uri->scheme, "wss");
  EXPECT_EQ(uri->host, "broker.example.com");
  EXPECT_EQ(uri->port, 443);
  EXPECT_EQ(uri->path, "/mqtt");
  EXPECT_TRUE(uri->tls);
}

TEST(ParseMqttUriTest, KnowsWhichSchemesUseTls) {
  for (const char* tls : {"ssl://h:1", "mqtts://h:1", "wss://h:1"}) {
    EXPECT_TRUE(ParseMqttUri(tls)->tls) << tls;
  }
  for (const char* plain : {"tcp://h:1", "mqtt://h:1", "ws://h:1"}) {
    EXPECT_FALSE(ParseMqttUri(plain)->tls) << plain;
  }
}

TEST(ParseMqttUriTest, PahoUriUsesTheClassicSchemes) {
  EXPECT_EQ(ParseMqttUri("mqtt://broker:1883")->PahoUri(), "tcp://broker:1883");
  EXPECT_EQ(ParseMqttUri("mqtts://broker:8883")->PahoUri(), "ssl://broker:8883");
  EXPECT_EQ(ParseMqttUri("ws://broker:80/mqtt")->PahoUri(), "ws://broker:80/mqtt");
  EXPECT_EQ(ParseMqttUri("tcp://[::1]:1883")->PahoUri(), "tcp://[::1]:1883");
}

TEST(ParseMqttUriTest, Ipv6InBrackets) {
  absl::StatusOr<MqttUri> uri = ParseMqttUri("tcp://[fe80::1]:1883");
  ASSERT_TRUE(uri.ok()) << uri.status();
  EXPECT_EQ(uri->host, "fe80::1");
  EXPECT_EQ(uri->port, 1883);
  EXPECT_FALSE(ParseMqttUri("tcp://[::1").ok());
  EXPECT_FALSE(ParseMqttUri("tcp://[::1]").ok());
}

TEST(ParseMqttUriTest, ErrorsQuoteTheUriButNeverItsPassword) {
  absl::StatusOr<MqttUri> uri = ParseMqttUri("tcp://bob:hunter2@broker:1883");
  ASSERT_FALSE(uri.ok());
  EXPECT_EQ(uri.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(absl::StrContains(uri.status().message(), "hunter2")) << uri.status();
  EXPECT_TRUE(absl::StrContains(uri.status().message(), "tcp://REDACTED@broker:1883"))
      << uri.status();
}

TEST(ParseMqttUriTest, RejectsMalformedPorts) {
  for (const char* bad : {"tcp://h:", "tcp://h:+1", "tcp://h:1x", "tcp://h:99999", "tcp://h:-1"}) {
    EXPECT_FALSE(ParseMqttUri(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace herald
