// Tests of service/dispatch/presence_tracker.h against FakeDeviceStore and
// FakeProvider: presence messages (JSON or bare words, retained Last Wills
// included) become each device's online state and last_seen_time.
#include "service/dispatch/presence_tracker.h"

#include <string>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"
#include "service/metrics/herald_metrics.h"
#include "tests/testing/fakes/fake_device_store.h"
#include "tests/testing/fakes/fake_provider.h"
#include "tests/testing/fakes/metrics_reader.h"
#include "tests/testing/fakes/status_matchers.h"

namespace herald {
namespace {

using ::herald::testing::FakeDeviceStore;
using ::herald::testing::FakeProvider;
using ::herald::testing::MetricValue;
using ::herald::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr absl::Duration kWait = absl::Seconds(10);

class PresenceTrackerTest : public ::testing::Test {
 protected:
  PresenceTrackerTest() : metrics_(registry_, "test") {
    AddDevice("d1");
    AddDevice("node-001", {{"home_id", "abc123"}});
  }

  void AddDevice(const std::string& id, std::map<std::string, std::string> metadata = {}) {
    Device device;
    device.tenant_id = kDefaultTenant;
    device.device_id = id;
    device.metadata = std::move(metadata);
    ASSERT_TRUE(devices_.CreateDevice(device).ok());
  }

  void Start(PresenceOptions options = {}) {
    options.retry_min = absl::Milliseconds(10);
    tracker_ = std::make_unique<PresenceTracker>(devices_, provider_, metrics_, options);
    ASSERT_TRUE(tracker_->Start().ok());
  }

  void Deliver(const std::string& topic, const std::string& payload, bool retained = false) {
    ASSERT_EQ(provider_.DeliverIncoming({.topic = topic, .payload = payload, .retained = retained}),
              1);
  }

  Device Get(const std::string& id) {
    EXPECT_TRUE(tracker_->AwaitIdle(kWait));
    absl::StatusOr<Device> device = devices_.GetDevice(kDefaultTenant, id);
    EXPECT_TRUE(device.ok()) << device.status();
    return device.ok() ? *device : Device();
  }

  double Presence(const std::string& outcome) {
    return MetricValue(registry_, "herald_presence_messages_total", {{"outcome", outcome}});
  }

  prometheus::Registry registry_;
  HeraldMetrics metrics_;
  FakeDeviceStore devices_;
  FakeProvider provider_;
  std::unique_ptr<PresenceTracker> tracker_;
};

TEST_F(PresenceTrackerTest, SubscribesToThePresenceFilter) {
  Start();
  EXPECT_THAT(provider_.subscriptions(), ElementsAre("devices/+/status/online"));
}

TEST_F(PresenceTrackerTest, OnlineThenOfflineThroughTheLastWill) {
  Start();
  const absl::Time before = absl::Now();
  Deliver("devices/d1/status/online", R"({"online": true})");
  Device d1 = Get("d1");
  EXPECT_TRUE(d1.online);
  ASSERT_TRUE(d1.last_seen_time.has_value());
  EXPECT_GE(*d1.last_seen_time, before);

  Deliver("devices/d1/status/online", R"({"online": false, "reason": "unexpected_disconnect"})",
          /*retained=*/true);
  d1 = Get("d1");
  EXPECT_FALSE(d1.online);
  EXPECT_EQ(Presence("online"), 1);
  EXPECT_EQ(Presence("offline"), 1);
}

TEST_F(PresenceTrackerTest, ShellyBareWords) {
  PresenceOptions options;
  options.topic_template = "shellies/{device_id}/online";
  Start(options);
  EXPECT_THAT(provider_.subscriptions(), ElementsAre("shellies/+/online"));
  Deliver("shellies/d1/online", "true");
  EXPECT_TRUE(Get("d1").online);
  Deliver("shellies/d1/online", "false");
  EXPECT_FALSE(Get("d1").online);
}

TEST_F(PresenceTrackerTest, HomeSyncTopicMustMatchTheDevicesMetadata) {
  PresenceOptions options;
  options.topic_template = "homesync/{meta.home_id}/nodes/{device_id}/status/online";
  Start(options);
  Deliver("homesync/other-home/nodes/node-001/status/online", R"({"online": true})");
  EXPECT_FALSE(Get("node-001").online) << "a node of another home has the same id";
  EXPECT_EQ(Presence("not_applied"), 1);
  Deliver("homesync/abc123/nodes/node-001/status/online", R"({"online": true})");
  EXPECT_TRUE(Get("node-001").online);
}

TEST_F(PresenceTrackerTest, MalformedAndUnknownAreCountedAndSkipped) {
  Start();
  Deliver("devices/d1/status/online", "maybe");
  Deliver("devices/d1/status/online", R"({"online": "yes"})");
  Deliver("devices/d1/status/online", "");  // a cleared retained message
  Deliver("devices/ghost/status/online", "online");
  EXPECT_TRUE(tracker_->AwaitIdle(kWait));
  EXPECT_EQ(Presence("malformed"), 3);
  EXPECT_EQ(Presence("not_applied"), 1);
  EXPECT_FALSE(Get("d1").last_seen_time.has_value());
}

TEST_F(PresenceTrackerTest, RetriesWhenTheDatabaseIsDown) {
  devices_.FailNextCalls(absl::UnavailableError("db down"), 2, "UpdatePresence");
  Start();
  Deliver("devices/d1/status/online", "online");
  EXPECT_TRUE(Get("d1").online);
  EXPECT_EQ(devices_.presence_calls(), 3);
}

TEST_F(PresenceTrackerTest, RefusesTemplatesWithoutTheDevice) {
  PresenceOptions options;
  options.topic_template = "homes/{meta.home_id}/status";
  PresenceTracker tracker(devices_, provider_, metrics_, options);
  EXPECT_THAT(tracker.Start(), StatusIs(absl::StatusCode::kInvalidArgument,
                                        HasSubstr("must contain {device_id}")));
}

TEST_F(PresenceTrackerTest, StopWritesWhatIsQueued) {
  Start();
  Deliver("devices/d1/status/online", "online");
  tracker_->Stop();
  absl::StatusOr<Device> d1 = devices_.GetDevice(kDefaultTenant, "d1");
  ASSERT_TRUE(d1.ok());
  EXPECT_TRUE(d1->online);
}

}  // namespace
}  // namespace herald
