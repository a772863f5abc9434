// PgDeviceStore::UpdatePresence against a real PostgreSQL: the batch
// update, its guards (metadata and owner from the topic, never older over
// newer), and ListDevices' online filter over the result.
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/store/pg_connection_pool.h"
#include "service/store/pg_device_store.h"
#include "tests/integration/store/store_test_support.h"
#include "tests/testing/test_servers.h"

namespace herald {
namespace {

using ::herald::testing::CreateScratchDatabase;
using ::herald::testing::MakePool;
using ::herald::testing::RecordingQueryObserver;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

class PgPresenceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pool_ = MakePool(CreateScratchDatabase("presence"));
    ASSERT_NE(pool_, nullptr);
    store_ = std::make_unique<PgDeviceStore>(pool_.get(), &observer_);
  }

  void Create(const std::string& id, const std::string& owner = "alice",
              std::map<std::string, std::string> metadata = {}) {
    Device device;
    device.tenant_id = kDefaultTenant;
    device.device_id = id;
    device.owner_id = owner;
    device.metadata = std::move(metadata);
    ASSERT_TRUE(store_->CreateDevice(device).ok());
  }

  std::vector<std::string> Online(bool online) {
    DeviceFilter filter;
    filter.online = online;
    absl::StatusOr<Page<Device>> page = store_->ListDevices(kDefaultTenant, filter, 100, "");
    EXPECT_TRUE(page.ok()) << page.status();
    std::vector<std::string> ids;
    if (page.ok()) {
      for (const Device& device : page->items) ids.push_back(device.device_id);
    }
    return ids;
  }

  RecordingQueryObserver observer_;
  std::unique_ptr<PgConnectionPool> pool_;
  std::unique_ptr<PgDeviceStore> store_;
};

TEST_F(PgPresenceTest, BatchUpdateWithItsGuards) {
  Create("node-001", "alice", {{"home_id", "abc123"}, {"room", "kitchen"}});
  Create("node-002", "alice", {{"home_id", "abc123"}});
  Create("node-003", "bob", {{"home_id", "xyz"}});
  Create("plain");
  const absl::Time t = absl::FromUnixMicros(absl::ToUnixMicros(absl::Now()));
  const absl::Time before_update = t - absl::Seconds(1);

  absl::StatusOr<std::vector<std::string>> changed = store_->UpdatePresence(
      kDefaultTenant,
      {{.device_id = "node-001", .online = true, .seen_time = t,
        .expected_metadata = {{"home_id", "abc123"}}},
       {.device_id = "node-002", .online = true, .seen_time = t,
        .expected_metadata = {{"home_id", "other"}}},                    // another home's node
       {.device_id = "node-003", .online = false, .seen_time = t,
        .expected_owner_id = "alice"},                                   // bob's
       {.device_id = "plain", .online = false, .seen_time = t, .expected_platform = "mqtt"},
       {.device_id = "ghost", .online = true, .seen_time = t}});
  ASSERT_TRUE(changed.ok()) << changed.status();
  EXPECT_THAT(*changed, UnorderedElementsAre("node-001", "plain"));

  absl::StatusOr<Device> node = store_->GetDevice(kDefaultTenant, "node-001");
  ASSERT_TRUE(node.ok());
  EXPECT_TRUE(node->online);
  EXPECT_EQ(node->last_seen_time, t);
  EXPECT_LE(node->update_time, t) << "presence is not an edit of the device";
  EXPECT_EQ(Online(true), std::vector<std::string>{"node-001"});
  EXPECT_EQ(Online(false), (std::vector<std::string>{"node-002", "node-003", "plain"}))
      << "never seen counts as not online";

  // Older than stored: ignored, whichever replica writes it last.
  changed = store_->UpdatePresence(
      kDefaultTenant, {{.device_id = "node-001", .online = false, .seen_time = before_update}});
  ASSERT_TRUE(changed.ok());
  EXPECT_THAT(*changed, IsEmpty());
  // Newer: applied (the same instant too: a replica repeating it).
  changed = store_->UpdatePresence(
      kDefaultTenant, {{.device_id = "node-001", .online = false, .seen_time = t}});
  ASSERT_TRUE(changed.ok());
  EXPECT_THAT(*changed, ElementsAre("node-001"));
  EXPECT_THAT(Online(true), IsEmpty());

  EXPECT_TRUE(store_->UpdatePresence(kDefaultTenant, {})->empty());
  EXPECT_TRUE(store_->UpdatePresence("other-tenant",
                                     {{.device_id = "plain", .online = true, .seen_time = t}})
                  ->empty())
      << "another tenant's device of the same id is not touched";
  EXPECT_TRUE(observer_.Saw("update_presence"));
}

TEST_F(PgPresenceTest, ManyDevicesInOneRoundTrip) {
  std::vector<PresenceUpdate> updates;
  for (int i = 0; i < 300; ++i) {
    const std::string id = absl::StrCat("d", i);
    Create(id);
    updates.push_back({.device_id = id, .online = i % 2 == 0, .seen_time = absl::Now()});
  }
  absl::StatusOr<std::vector<std::string>> changed =
      store_->UpdatePresence(kDefaultTenant, updates);
  ASSERT_TRUE(changed.ok()) << changed.status();
  EXPECT_EQ(changed->size(), 300u);
  EXPECT_EQ(Online(true).size(), 100u) << "a page of 100";
}

}  // namespace
}  // namespace herald
