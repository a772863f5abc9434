// Fault injection: Herald's promise under crashes, outages and partitions.
// Each scenario runs a real load (thousands of notifications at QoS 1 and 2,
// to device ids, owners and groups, thousands of device topics) against its
// own PostgreSQL, persistent Mosquitto and herald replicas, injects one
// fault mid-run, lets the system heal, and then checks the subscriber's
// record against PostgreSQL: every acknowledged notification's every target
// delivered (and received) or accounted for, zero lost, QoS 2 duplicates
// only where a crash forced a republish. Each prints a line of figures.
#include <signal.h>
#include <sys/wait.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <pqxx/pqxx>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "tests/fault/fault_harness.h"

namespace herald::testing {
namespace {

std::string ScenarioName() {
  return ::testing::UnitTest::GetInstance()->current_test_info()->name();
}

void ExpectNothingLost(const Figures& figures) {
  std::printf("%s\n", figures.ToString(ScenarioName()).c_str());
  std::fflush(stdout);
  EXPECT_GT(figures.accepted, 0);
  EXPECT_GT(figures.delivered, 0);
  EXPECT_EQ(figures.lost, 0) << "acknowledged deliveries neither received nor accounted for";
  EXPECT_EQ(figures.unexpected, 0) << "messages that PostgreSQL knows nothing of";
  EXPECT_EQ(figures.failed, 0) << "deliveries gave up although the fault healed";
  // QoS 2 is exactly once to the broker per publish; a second copy is only
  // possible where a crash or lost connection forced a republish.
  EXPECT_LE(figures.qos2_duplicates, figures.qos2_republished);
}

class FaultTest : public ::testing::Test {
 protected:
  std::unique_ptr<FaultHarness> Make(HarnessOptions options = {}) {
    auto harness = std::make_unique<FaultHarness>(ScenarioName(), std::move(options));
    absl::Status started = harness->Start();
    EXPECT_TRUE(started.ok()) << started;
    return started.ok() ? std::move(harness) : nullptr;
  }
};

// Runs the load with replica 0 armed to SIGKILL itself at `crash_point`; a
// supervisor restarts it (disarmed), as Kubernetes would.
Figures RunWithCrashPoint(FaultHarness& harness, const std::string& crash_point) {
  harness.replica(0).Kill();
  harness.replica(0).SetEnv("HERALD_TEST_CRASH_AT", crash_point);
  EXPECT_TRUE(harness.replica(0).Start().ok());
  harness.SuperviseReplicas();
  harness.RunLoad({}, nullptr);
  Figures figures = harness.Verify();
  ExpectNothingLost(figures);
  return figures;
}

// Crash after the notification is committed, before the reply: the client
// retries with its idempotency key and gets the first result.
TEST_F(FaultTest, KillAfterCommitBeforeReply) {
  auto harness = Make();
  ASSERT_NE(harness, nullptr);
  const Figures figures = RunWithCrashPoint(*harness, "after_commit:500");
  EXPECT_GT(figures.client_retries, 0) << "the crash point was never reached";
  // One notification per idempotency key, although the client sent some twice.
  pqxx::connection connection(harness->database_url());
  pqxx::nontransaction query(connection);
  EXPECT_EQ(query.exec1("SELECT count(*) FROM notifications")[0].as<int64_t>(), figures.accepted);
}

// Crash after deliveries were claimed (by a worker, or at insert for the
// handoff to the local dispatcher), before they were published: the lease
// runs out and the restarted replica publishes them.
TEST_F(FaultTest, KillAfterClaimBeforePublish) {
  auto harness = Make();
  ASSERT_NE(harness, nullptr);
  const Figures figures = RunWithCrashPoint(*harness, "after_claim:20");
  EXPECT_GT(figures.republished, 0) << "the crash point was never reached";
}

// Crash after the broker acknowledged a publish, before the outcome was
// recorded: the delivery is republished (at least once; a QoS 2 copy too).
TEST_F(FaultTest, KillAfterPublishBeforeAckIsRecorded) {
  auto harness = Make();
  ASSERT_NE(harness, nullptr);
  const Figures figures = RunWithCrashPoint(*harness, "after_ack:3000");
  EXPECT_GT(figures.republished, 0) << "the crash point was never reached";
}

// The health service's answer for `service` on replica `i`.
grpc::health::v1::HealthCheckResponse::ServingStatus HealthOf(FaultHarness& harness, int i,
                                                              const std::string& service) {
  auto stub = grpc::health::v1::Health::NewStub(
      grpc::CreateChannel(harness.replica(i).grpc_target(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(2)));
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  grpc::health::v1::HealthCheckResponse response;
  if (!stub->Check(&context, request, &response).ok()) {
    return grpc::health::v1::HealthCheckResponse::UNKNOWN;
  }
  return response.status();
}

// The broker goes away mid-run (its state persisted) and comes back: Herald
// keeps accepting (ready), reports the degraded state, reconnects and
// drains the backlog.
TEST_F(FaultTest, BrokerRestartMidRun) {
  auto harness = Make();
  ASSERT_NE(harness, nullptr);
  bool degraded_seen = false;
  bool ready_throughout = true;
  harness->RunLoad({}, [&] {
    ASSERT_TRUE(harness->StopBroker().ok());
    const absl::Time back = absl::Now() + absl::Seconds(4);
    while (absl::Now() < back) {
      degraded_seen |= HealthOf(*harness, 0, "herald.delivery") ==
                       grpc::health::v1::HealthCheckResponse::NOT_SERVING;
      ready_throughout &=
          HealthOf(*harness, 0, "") == grpc::health::v1::HealthCheckResponse::SERVING;
      absl::SleepFor(absl::Milliseconds(200));
    }
    ASSERT_TRUE(harness->StartBroker().ok());
  });
  ExpectNothingLost(harness->Verify());
  EXPECT_TRUE(degraded_seen) << "herald.delivery must report NOT_SERVING while the broker is away";
  EXPECT_TRUE(ready_throughout) << "Herald stays ready (it keeps accepting) without a broker";
}

// Herald cannot reach the broker for longer than twice its keep-alive
// (packets dropped, nothing closed), then the network heals.
TEST_F(FaultTest, BrokerPartitionLongerThanTwiceKeepAlive) {
  auto harness = Make();
  ASSERT_NE(harness, nullptr);
  harness->RunLoad({}, [&] {
    ASSERT_TRUE(harness->CutBroker(true).ok());
    absl::SleepFor(absl::Seconds(5));  // keep-alive is 2 s
    ASSERT_TRUE(harness->CutBroker(false).ok());
  });
  ExpectNothingLost(harness->Verify());
}

// Herald cannot reach PostgreSQL for a while: calls fail with UNAVAILABLE
// (the client retries), nothing half-written, and Herald recovers alone.
TEST_F(FaultTest, DatabasePartition) {
  auto harness = Make();
  ASSERT_NE(harness, nullptr);
  harness->RunLoad({}, [&] {
    ASSERT_TRUE(harness->CutDatabase(true).ok());
    // Longer than a caller waits for one attempt (10 s): calls queued behind
    // a stalled insert would otherwise all complete once the network heals.
    absl::SleepFor(absl::Seconds(12));
    ASSERT_TRUE(harness->CutDatabase(false).ok());
  });
  const Figures figures = harness->Verify();
  ExpectNothingLost(figures);
  EXPECT_GT(figures.client_retries, 0) << "the partition was not felt";
}

// PostgreSQL restarts (immediate mode: sessions die mid-transaction).
TEST_F(FaultTest, DatabaseRestartMidTransaction) {
  auto harness = Make();
  ASSERT_NE(harness, nullptr);
  harness->RunLoad({}, [&] { ASSERT_TRUE(harness->RestartDatabase().ok()); });
  ExpectNothingLost(harness->Verify());
}

// A slow broker (delay and a bandwidth cap on a proxy): the in-flight
// window fills, the backlog waits in PostgreSQL, memory stays bounded.
TEST_F(FaultTest, SlowBrokerBoundsInFlightAndMemory) {
  auto harness = Make({.through_proxy = true, .extra_flags = {"--mqtt_max_in_flight=50"}});
  ASSERT_NE(harness, nullptr);
  harness->RunLoad({.notifications = 1500}, [&] {
    harness->proxy()->SetThrottle(absl::Milliseconds(2), 64 * 1024);
    absl::SleepFor(absl::Seconds(5));
    harness->proxy()->SetThrottle(absl::ZeroDuration(), 0);
  });
  const int64_t peak = harness->ResidentBytes(0);
  const Figures figures = harness->Verify();
  ExpectNothingLost(figures);
  std::printf("fault scenario=%s peak_resident_mb=%.1f\n", ScenarioName().c_str(),
              static_cast<double>(peak) / (1 << 20));
  EXPECT_LT(peak, 300LL << 20) << "memory must stay bounded while the broker is slow";
}

// Several replicas share one database and broker; one is killed mid-run and
// not restarted: the others take its leased work over.
void ReplicasShareWorkAndSurviveAKill(int replicas) {
  auto harness = std::make_unique<FaultHarness>(ScenarioName(), HarnessOptions{.replicas = replicas});
  absl::Status started = harness->Start();
  ASSERT_TRUE(started.ok()) << started;
  harness->RunLoad({}, [&] { kill(harness->replica(1).pid(), SIGKILL); });
  const Figures figures = harness->Verify();
  ExpectNothingLost(figures);
}

TEST_F(FaultTest, TwoReplicasOneKilled) { ReplicasShareWorkAndSurviveAKill(2); }
TEST_F(FaultTest, ThreeReplicasOneKilled) { ReplicasShareWorkAndSurviveAKill(3); }

// SIGTERM under load: Herald drains, exits 0, and its successor finishes.
TEST_F(FaultTest, SigtermUnderLoad) {
  auto harness = Make();
  ASSERT_NE(harness, nullptr);
  harness->SuperviseReplicas();
  harness->RunLoad({}, [&] { kill(harness->replica(0).pid(), SIGTERM); });
  const Figures figures = harness->Verify();
  ExpectNothingLost(figures);
  EXPECT_EQ(harness->replica(0).last_exit_code(), 0) << "SIGTERM must end in a clean exit";
}

// The same idempotency key arrives at two replicas at the same moment: one
// notification, both callers get its id, its targets get one copy.
TEST_F(FaultTest, ConcurrentDuplicateKeyOnTwoReplicas) {
  auto harness = Make({.replicas = 2});
  ASSERT_NE(harness, nullptr);
  for (int i = 0; i < 200; ++i) {
    absl::StatusOr<std::vector<std::string>> ids = harness->SendConcurrently(i, {0, 1});
    ASSERT_TRUE(ids.ok()) << ids.status();
    ASSERT_EQ((*ids)[0], (*ids)[1]) << "request " << i;
  }
  const Figures figures = harness->Verify();
  ExpectNothingLost(figures);
  EXPECT_EQ(figures.accepted, 200);
  EXPECT_EQ(figures.duplicates, 0);
  pqxx::connection connection(harness->database_url());
  pqxx::nontransaction query(connection);
  EXPECT_EQ(query.exec1("SELECT count(*) FROM notifications")[0].as<int64_t>(), 200);
}

}  // namespace
}  // namespace herald::testing
