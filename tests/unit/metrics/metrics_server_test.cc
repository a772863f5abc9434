// MetricsServer over the loopback interface only, on ports the kernel picks.
#include "service/metrics/metrics_server.h"
#include "tests/testing/http_get.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"
#include "service/metrics/herald_metrics.h"

namespace herald {
namespace {

using ::testing::HasSubstr;

// GET http://127.0.0.1:port/path; the whole response, headers included.
TEST(MetricsServerTest, ServesTheRegistryOnTheChosenPort) {
  auto registry = std::make_shared<prometheus::Registry>();
  HeraldMetrics metrics(*registry, "9.9.9");
  metrics.SetBacklog(42);

  absl::StatusOr<std::unique_ptr<MetricsServer>> server =
      MetricsServer::Start("127.0.0.1:0", registry);
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_GT((*server)->port(), 0);

  absl::StatusOr<testing::HttpResponse> response =
      testing::HttpGetFull((*server)->port(), "/metrics");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200);
  EXPECT_THAT(response->body, HasSubstr("herald_build_info{version=\"9.9.9\"} 1"));
  EXPECT_THAT(response->body, HasSubstr("herald_backlog_deliveries 42"));
}

// civetweb's listener looks at its stop flag only between polls of up to
// 2 s; destroying the server must not wait for the poll to run out (five
// stops took 2.0 s in all before, 0.1 s since).
TEST(MetricsServerTest, StopsWithoutWaitingForTheListenersPoll) {
  auto registry = std::make_shared<prometheus::Registry>();
  const absl::Time started = absl::Now();
  for (const char* address : {"127.0.0.1:0", "0.0.0.0:0", "localhost:0", "127.0.0.1:0",
                              "0.0.0.0:0"}) {
    absl::StatusOr<std::unique_ptr<MetricsServer>> server = MetricsServer::Start(address, registry);
    ASSERT_TRUE(server.ok()) << address << ": " << server.status();
  }
  EXPECT_LT(absl::Now() - started, absl::Seconds(1));
}

TEST(MetricsServerTest, KeepsTheRegistryAlive) {
  auto registry = std::make_shared<prometheus::Registry>();
  auto metrics = std::make_unique<HeraldMetrics>(*registry, "1.0.0");
  absl::StatusOr<std::unique_ptr<MetricsServer>> server =
      MetricsServer::Start("127.0.0.1:0", registry);
  ASSERT_TRUE(server.ok()) << server.status();
  metrics.reset();
  registry.reset();
  absl::StatusOr<std::string> body = testing::HttpGet((*server)->port(), "/metrics");
  ASSERT_TRUE(body.ok()) << body.status();
  EXPECT_THAT(*body, HasSubstr("herald_build_info"));
}

TEST(MetricsServerTest, PortInUseIsUnavailable) {
  auto registry = std::make_shared<prometheus::Registry>();
  absl::StatusOr<std::unique_ptr<MetricsServer>> first =
      MetricsServer::Start("127.0.0.1:0", registry);
  ASSERT_TRUE(first.ok()) << first.status();
  const std::string address = absl::StrCat("127.0.0.1:", (*first)->port());
  absl::StatusOr<std::unique_ptr<MetricsServer>> second = MetricsServer::Start(address, registry);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(second.status().message(), HasSubstr(address));
}

TEST(MetricsServerTest, MalformedAddressIsInvalid) {
  auto registry = std::make_shared<prometheus::Registry>();
  for (const char* address : {"9464", "localhost", "127.0.0.1:", "127.0.0.1:9464s",
                              "127.0.0.1:70000", "1.2.3.4:80,5.6.7.8:80", "::1:9464"}) {
    absl::StatusOr<std::unique_ptr<MetricsServer>> server =
        MetricsServer::Start(address, registry);
    EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument) << address;
  }
}

TEST(MetricsServerTest, NullRegistryIsInvalid) {
  EXPECT_EQ(MetricsServer::Start("127.0.0.1:0", nullptr).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace herald
