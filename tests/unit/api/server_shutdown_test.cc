// ShutdownServer against a real in-process gRPC server and client: a running
// call still gets its answer, and an idle client connection does not hold
// the stop.
#include "service/api/server_shutdown.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <memory>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace herald::api {
namespace {

using grpc::health::v1::Health;
using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

// Answers Check once `release` is notified (at once if it already is).
class SlowHealth : public Health::Service {
 public:
  grpc::Status Check(grpc::ServerContext*, const HealthCheckRequest*,
                     HealthCheckResponse* response) override {
    started.Notify();
    release.WaitForNotification();
    response->set_status(HealthCheckResponse::SERVING);
    return grpc::Status::OK;
  }
  absl::Notification started;
  absl::Notification release;
};

class ServerShutdownTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(&service_);
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> creators;
    creators.push_back(live_.NewInterceptorFactory());
    builder.experimental().SetInterceptorCreators(std::move(creators));
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", port_),
                                   grpc::InsecureChannelCredentials());
    stub_ = Health::NewStub(channel_);
  }

  void TearDown() override {
    if (!service_.release.HasBeenNotified()) service_.release.Notify();
  }

  grpc::Status Check(HealthCheckResponse* response) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
    return stub_->Check(&context, HealthCheckRequest(), response);
  }

  LiveCalls live_;  // outlives server_
  SlowHealth service_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<Health::Stub> stub_;
};

TEST_F(ServerShutdownTest, AnIdleClientConnectionDoesNotHoldTheStop) {
  service_.release.Notify();
  HealthCheckResponse response;
  ASSERT_TRUE(Check(&response).ok());
  ASSERT_EQ(channel_->GetState(/*try_to_connect=*/false), GRPC_CHANNEL_READY);

  const absl::Time started = absl::Now();
  ShutdownServer(*server_, live_, absl::Now() + absl::Seconds(30));
  // gRPC alone waits 4.4 s for such a client to hang up.
  EXPECT_LT(absl::Now() - started, absl::Seconds(3));
}

TEST_F(ServerShutdownTest, ARunningCallIsAnsweredBeforeTheServerStops) {
  grpc::Status status;
  HealthCheckResponse response;
  std::thread caller([&] { status = Check(&response); });
  service_.started.WaitForNotification();

  absl::Notification stopped;
  std::thread stopper([&] {
    ShutdownServer(*server_, live_, absl::Now() + absl::Seconds(30));
    stopped.Notify();
  });
  // The stop waits for the call rather than cutting it off.
  EXPECT_FALSE(stopped.WaitForNotificationWithTimeout(absl::Milliseconds(300)));
  service_.release.Notify();
  caller.join();
  stopper.join();
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.status(), HealthCheckResponse::SERVING);
}

TEST_F(ServerShutdownTest, ACallStillRunningAtTheDeadlineIsCancelled) {
  grpc::Status status;
  HealthCheckResponse response;
  std::thread caller([&] { status = Check(&response); });
  service_.started.WaitForNotification();

  std::thread stopper(
      [&] { ShutdownServer(*server_, live_, absl::Now() + absl::Milliseconds(200)); });
  caller.join();
  // The connection is closed under it: UNAVAILABLE, which clients retry.
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  // The stop also waits for the handler to return; its answer goes nowhere.
  service_.release.Notify();
  stopper.join();
}

}  // namespace
}  // namespace herald::api
