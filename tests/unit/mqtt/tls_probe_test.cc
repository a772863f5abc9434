// Tests of providers/mqtt/tls_probe.h that need no broker: local TLS files
// that cannot be used are reported before any connection is made. The
// handshakes themselves (expired, wrong CA, wrong host, client certificate
// refused) are tested against Mosquitto in
// tests/integration/mqtt/mqtt_provider_integration_test.cc.
#include "providers/mqtt/tls_probe.h"

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace herald {
namespace {

// Port 1 on the loopback: nothing listens there, and the probe must not
// get as far as connecting.
constexpr int kClosedPort = 1;

TEST(TlsProbeTest, AnUnreadableCaFileIsNamed) {
  const absl::Status status = ProbeTlsHandshake(
      "127.0.0.1", kClosedPort, {.ca_file = "/nonexistent/ca.pem"}, absl::Seconds(1));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_TRUE(absl::StrContains(status.message(), "cannot load the CA file \"/nonexistent/ca.pem\""))
      << status;
}

TEST(TlsProbeTest, AnUnusableClientCertificateIsNamed) {
  const absl::Status status = ProbeTlsHandshake(
      "127.0.0.1", kClosedPort,
      {.cert_file = "/nonexistent/client.pem", .key_file = "/nonexistent/client.key"},
      absl::Seconds(1));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_TRUE(absl::StrContains(status.message(), "\"/nonexistent/client.pem\"")) << status;
  EXPECT_TRUE(absl::StrContains(status.message(), "\"/nonexistent/client.key\"")) << status;
}

}  // namespace
}  // namespace herald
