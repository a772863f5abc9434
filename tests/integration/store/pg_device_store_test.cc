// PgDeviceStore against a real PostgreSQL (a scratch database per test).
#include "service/store/pg_device_store.h"

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "service/core/page_token.h"
#include "service/core/topic.h"
#include "service/store/pg_connection_pool.h"
#include "tests/integration/store/store_test_support.h"
#include "tests/testing/test_servers.h"

namespace herald {
namespace {

using ::herald::testing::CreateScratchDatabase;
using ::herald::testing::MakePool;
using ::herald::testing::RecordingQueryObserver;

std::vector<std::string> Ids(const std::vector<Device>& devices) {
  std::vector<std::string> ids;
  for (const Device& device : devices) ids.push_back(device.device_id);
  return ids;
}

class PgDeviceStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pool_ = MakePool(CreateScratchDatabase("device_store"));
    ASSERT_NE(pool_, nullptr);
    store_ = std::make_unique<PgDeviceStore>(pool_.get(), &observer_);
  }

  Device MustCreate(Device device) {
    if (device.tenant_id.empty()) device.tenant_id = kDefaultTenant;
    absl::StatusOr<Device> created = store_->CreateDevice(device);
    EXPECT_TRUE(created.ok()) << created.status();
    return created.ok() ? *created : Device{};
  }

  RecordingQueryObserver observer_;
  std::unique_ptr<PgConnectionPool> pool_;
  std::unique_ptr<PgDeviceStore> store_;
};

TEST_F(PgDeviceStoreTest, CreateThenGetRoundTripsEveryField) {
  const absl::Time before = absl::Now() - absl::Seconds(5);
  Device device;
  device.tenant_id = kDefaultTenant;
  device.device_id = "sensor-001";
  device.owner_id = "home-7";
  device.platform = "mqtt";
  device.topic = "homes/7/sensor-001";
  device.groups = {"factory/floor-3", "with space", "quote\"d", "comma,inside", "NULL", "ünï"};
  device.metadata = {{"home_id", "7"}, {"quote", "say \"hi\""}, {"empty", ""}, {"ключ", "знач"}};
  device.enabled = false;
  device.online = true;
  device.last_seen_time = absl::FromUnixMicros(1769250600123456);

  absl::StatusOr<Device> created = store_->CreateDevice(device);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_GE(created->create_time, before);
  EXPECT_EQ(created->create_time, created->update_time);

  absl::StatusOr<Device> got = store_->GetDevice(kDefaultTenant, "sensor-001");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->tenant_id, kDefaultTenant);
  EXPECT_EQ(got->device_id, "sensor-001");
  EXPECT_EQ(got->owner_id, "home-7");
  EXPECT_EQ(got->platform, "mqtt");
  EXPECT_EQ(got->topic, "homes/7/sensor-001");
  EXPECT_EQ(got->groups, device.groups);
  EXPECT_EQ(got->metadata, device.metadata);
  EXPECT_FALSE(got->enabled);
  EXPECT_TRUE(got->online);
  EXPECT_EQ(got->last_seen_time, device.last_seen_time);
  EXPECT_EQ(got->create_time, created->create_time);
  EXPECT_EQ(got->update_time, created->update_time);

  EXPECT_TRUE(observer_.Saw("create_device"));
  EXPECT_TRUE(observer_.Saw("get_device"));
}

TEST_F(PgDeviceStoreTest, DefaultsRoundTrip) {
  const Device created = MustCreate({.device_id = "bare"});
  EXPECT_TRUE(created.groups.empty());
  EXPECT_TRUE(created.metadata.empty());
  EXPECT_TRUE(created.enabled);
  EXPECT_FALSE(created.online);
  EXPECT_FALSE(created.last_seen_time.has_value());
}

TEST_F(PgDeviceStoreTest, CreateDuplicateIsAlreadyExists) {
  MustCreate({.device_id = "sensor-001"});
  absl::StatusOr<Device> again =
      store_->CreateDevice({.tenant_id = kDefaultTenant, .device_id = "sensor-001"});
  EXPECT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_NE(again.status().message().find("sensor-001"), std::string::npos) << again.status();
  // A failure that the caller caused is not a database failure.
  EXPECT_FALSE(observer_.Saw("create_device", /*ok=*/false));
}

TEST_F(PgDeviceStoreTest, GetMissingIsNotFound) {
  absl::StatusOr<Device> missing = store_->GetDevice(kDefaultTenant, "nope");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("device_id"), std::string::npos);
}

TEST_F(PgDeviceStoreTest, TenantsAreIsolated) {
  MustCreate({.tenant_id = "tenant-a", .device_id = "shared-id", .owner_id = "a"});
  MustCreate({.tenant_id = "tenant-b", .device_id = "shared-id", .owner_id = "b"});
  absl::StatusOr<Device> a = store_->GetDevice("tenant-a", "shared-id");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->owner_id, "a");
  EXPECT_EQ(store_->GetDevice("tenant-c", "shared-id").status().code(),
            absl::StatusCode::kNotFound);
  absl::StatusOr<Page<Device>> page = store_->ListDevices("tenant-b", {}, 10, "");
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->items.size(), 1u);
  EXPECT_EQ(page->items[0].owner_id, "b");
  ASSERT_TRUE(store_->DeleteDevice("tenant-a", "shared-id").ok());
  EXPECT_TRUE(store_->GetDevice("tenant-b", "shared-id").ok());
}

TEST_F(PgDeviceStoreTest, UpdateChangesOnlyMaskedFields) {
  const Device created = MustCreate({.device_id = "d1",
                                     .owner_id = "owner-1",
                                     .topic = "t/1",
                                     .groups = {"g1"},
                                     .metadata = {{"k", "v"}}});
  Device change;
  change.tenant_id = kDefaultTenant;
  change.device_id = "d1";
  change.owner_id = "owner-2";
  change.platform = "other";
  change.topic = "t/2";
  change.groups = {"g2", "g3"};
  change.metadata = {{"k2", "v2"}};
  change.enabled = false;

  absl::StatusOr<Device> updated =
      store_->UpdateDevice(change, {DeviceField::kOwnerId, DeviceField::kGroups});
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->owner_id, "owner-2");
  EXPECT_EQ(updated->groups, (std::vector<std::string>{"g2", "g3"}));
  EXPECT_EQ(updated->platform, "mqtt");
  EXPECT_EQ(updated->topic, "t/1");
  EXPECT_EQ(updated->metadata, created.metadata);
  EXPECT_TRUE(updated->enabled);
  EXPECT_EQ(updated->create_time, created.create_time);
  EXPECT_GE(updated->update_time, created.update_time);

  updated = store_->UpdateDevice(change, {DeviceField::kPlatform, DeviceField::kTopic,
                                          DeviceField::kMetadata, DeviceField::kEnabled});
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->platform, "other");
  EXPECT_EQ(updated->topic, "t/2");
  EXPECT_EQ(updated->metadata, change.metadata);
  EXPECT_FALSE(updated->enabled);

  absl::StatusOr<Device> stored = store_->GetDevice(kDefaultTenant, "d1");
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->owner_id, "owner-2");
  EXPECT_FALSE(stored->enabled);
}

TEST_F(PgDeviceStoreTest, UpdateWithEmptyMaskReturnsDeviceUnchanged) {
  const Device created = MustCreate({.device_id = "d1", .owner_id = "o"});
  Device change = created;
  change.owner_id = "other";
  absl::StatusOr<Device> same = store_->UpdateDevice(change, {});
  ASSERT_TRUE(same.ok()) << same.status();
  EXPECT_EQ(same->owner_id, "o");
  EXPECT_EQ(same->update_time, created.update_time);
}

TEST_F(PgDeviceStoreTest, UpdateMissingIsNotFound) {
  absl::StatusOr<Device> missing = store_->UpdateDevice(
      {.tenant_id = kDefaultTenant, .device_id = "ghost"}, {DeviceField::kOwnerId});
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
}

TEST_F(PgDeviceStoreTest, DeleteRemovesAndThenIsNotFound) {
  MustCreate({.device_id = "d1"});
  ASSERT_TRUE(store_->DeleteDevice(kDefaultTenant, "d1").ok());
  EXPECT_EQ(store_->GetDevice(kDefaultTenant, "d1").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->DeleteDevice(kDefaultTenant, "d1").code(), absl::StatusCode::kNotFound);
}

TEST_F(PgDeviceStoreTest, ListPaginatesInDeviceIdOrder) {
  std::vector<std::string> expected;
  for (int i = 0; i < 7; ++i) {
    const std::string id = absl::StrCat("dev-", i);
    MustCreate({.device_id = id});
    expected.push_back(id);
  }
  std::vector<std::string> seen;
  std::string token;
  int pages = 0;
  do {
    absl::StatusOr<Page<Device>> page = store_->ListDevices(kDefaultTenant, {}, 3, token);
    ASSERT_TRUE(page.ok()) << page.status();
    ASSERT_LE(page->items.size(), 3u);
    for (const Device& device : page->items) seen.push_back(device.device_id);
    token = page->next_page_token;
    ++pages;
  } while (!token.empty() && pages < 10);
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(seen, expected);
}

TEST_F(PgDeviceStoreTest, ListOfExactlyOnePageHasNoNextToken) {
  MustCreate({.device_id = "a"});
  MustCreate({.device_id = "b"});
  absl::StatusOr<Page<Device>> page = store_->ListDevices(kDefaultTenant, {}, 2, "");
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->items.size(), 2u);
  EXPECT_TRUE(page->next_page_token.empty());
}

TEST_F(PgDeviceStoreTest, ListFilters) {
  MustCreate({.device_id = "a", .owner_id = "o1", .groups = {"g1", "g2"}, .online = true});
  MustCreate({.device_id = "b", .owner_id = "o1", .platform = "other", .groups = {"g2"}});
  MustCreate({.device_id = "c", .owner_id = "o2", .groups = {"g1"}, .online = true});
  MustCreate({.device_id = "d", .owner_id = "o2"});

  const auto list = [&](const DeviceFilter& filter) {
    absl::StatusOr<Page<Device>> page = store_->ListDevices(kDefaultTenant, filter, 100, "");
    EXPECT_TRUE(page.ok()) << page.status();
    return page.ok() ? Ids(page->items) : std::vector<std::string>{};
  };
  using IdList = std::vector<std::string>;
  EXPECT_EQ(list({}), (IdList{"a", "b", "c", "d"}));
  EXPECT_EQ(list({.owner_id = "o1"}), (IdList{"a", "b"}));
  EXPECT_EQ(list({.group = "g1"}), (IdList{"a", "c"}));
  EXPECT_EQ(list({.group = "g2", .platform = "mqtt"}), (IdList{"a"}));
  EXPECT_EQ(list({.platform = "other"}), (IdList{"b"}));
  EXPECT_EQ(list({.online = true}), (IdList{"a", "c"}));
  EXPECT_EQ(list({.online = false}), (IdList{"b", "d"}));
  EXPECT_EQ(list({.owner_id = "o2", .online = true}), (IdList{"c"}));
  EXPECT_EQ(list({.group = "none"}), (IdList{}));
}

TEST_F(PgDeviceStoreTest, ListWithFilterPaginates) {
  for (int i = 0; i < 5; ++i) {
    MustCreate({.device_id = absl::StrCat("in-", i), .owner_id = "o"});
    MustCreate({.device_id = absl::StrCat("out-", i), .owner_id = "x"});
  }
  absl::StatusOr<Page<Device>> first =
      store_->ListDevices(kDefaultTenant, {.owner_id = "o"}, 3, "");
  ASSERT_TRUE(first.ok());
  ASSERT_FALSE(first->next_page_token.empty());
  absl::StatusOr<Page<Device>> second =
      store_->ListDevices(kDefaultTenant, {.owner_id = "o"}, 3, first->next_page_token);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(Ids(second->items), (std::vector<std::string>{"in-3", "in-4"}));
  EXPECT_TRUE(second->next_page_token.empty());
}

TEST_F(PgDeviceStoreTest, ListRefusesBogusTokens) {
  for (const std::string& token : {std::string("garbage"), std::string("djE6ZGV2aWNlczp4OjA"),
                                   EncodePageToken("notifications", "x")}) {
    absl::StatusOr<Page<Device>> page = store_->ListDevices(kDefaultTenant, {}, 10, token);
    EXPECT_EQ(page.status().code(), absl::StatusCode::kInvalidArgument) << token;
    EXPECT_NE(page.status().message().find("page_token"), std::string::npos);
  }
}

TEST_F(PgDeviceStoreTest, ListDefaultPageSize) {
  for (int i = 0; i < 60; ++i) MustCreate({.device_id = absl::StrFormat("d%03d", i)});
  absl::StatusOr<Page<Device>> page = store_->ListDevices(kDefaultTenant, {}, 0, "");
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->items.size(), 50u);
  EXPECT_FALSE(page->next_page_token.empty());
}

TEST_F(PgDeviceStoreTest, ResolveByDeviceIdsReturnsEnabledKnownDevices) {
  MustCreate({.device_id = "a"});
  MustCreate({.device_id = "b", .enabled = false});
  MustCreate({.device_id = "c"});
  MustCreate({.tenant_id = "other", .device_id = "d"});
  absl::StatusOr<std::vector<Device>> devices = store_->ResolveTargets(
      kDefaultTenant, {.kind = TargetKind::kDeviceIds, .values = {"c", "a", "b", "d", "zzz"}});
  ASSERT_TRUE(devices.ok()) << devices.status();
  EXPECT_EQ(Ids(*devices), (std::vector<std::string>{"a", "c"}));
  EXPECT_TRUE(observer_.Saw("resolve_targets"));
}

// Concurrent lookups share queries (group lookup); each still gets exactly
// its own devices, of its own tenant, in id order.
TEST_F(PgDeviceStoreTest, ConcurrentDeviceIdLookupsEachGetTheirOwnDevices) {
  constexpr int kDevices = 64;
  for (int i = 0; i < kDevices; ++i) {
    MustCreate({.device_id = absl::StrFormat("dev-%02d", i), .enabled = i % 7 != 0});
    MustCreate({.tenant_id = "other", .device_id = absl::StrFormat("dev-%02d", i)});
  }
  std::vector<std::thread> threads;
  std::vector<std::string> failures(32);
  for (int t = 0; t < 32; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 20; ++round) {
        const int a = (t * 3 + round) % kDevices;
        const int b = (t * 5 + round * 7 + 1) % kDevices;
        const std::string tenant = t % 4 == 0 ? "other" : kDefaultTenant;
        absl::StatusOr<std::vector<Device>> devices = store_->ResolveTargets(
            tenant, {.kind = TargetKind::kDeviceIds,
                     .values = {absl::StrFormat("dev-%02d", a), absl::StrFormat("dev-%02d", b),
                                "missing"}});
        std::set<std::string> expected;
        for (int i : {a, b}) {
          if (tenant == "other" || i % 7 != 0) expected.insert(absl::StrFormat("dev-%02d", i));
        }
        const std::vector<std::string> want(expected.begin(), expected.end());
        if (!devices.ok()) {
          failures[t] = devices.status().ToString();
        } else if (Ids(*devices) != want) {
          failures[t] = absl::StrCat("round ", round, ": wrong devices");
        } else {
          for (const Device& device : *devices) {
            if (device.tenant_id != tenant) failures[t] = "a device of another tenant";
          }
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int t = 0; t < 32; ++t) EXPECT_EQ(failures[t], "") << "thread " << t;
}

TEST_F(PgDeviceStoreTest, ResolveByOwners) {
  MustCreate({.device_id = "a", .owner_id = "o1"});
  MustCreate({.device_id = "b", .owner_id = "o2"});
  MustCreate({.device_id = "c", .owner_id = "o2", .enabled = false});
  MustCreate({.device_id = "d", .owner_id = "o3"});
  absl::StatusOr<std::vector<Device>> devices = store_->ResolveTargets(
      kDefaultTenant, {.kind = TargetKind::kOwnerIds, .values = {"o1", "o2"}});
  ASSERT_TRUE(devices.ok()) << devices.status();
  EXPECT_EQ(Ids(*devices), (std::vector<std::string>{"a", "b"}));
}

TEST_F(PgDeviceStoreTest, ResolveByGroupsReturnsEachDeviceOnce) {
  MustCreate({.device_id = "a", .groups = {"floor-1", "floor-2"}});
  MustCreate({.device_id = "b", .groups = {"floor-2"}});
  MustCreate({.device_id = "c", .groups = {"floor-3"}});
  MustCreate({.device_id = "d", .groups = {"floor-1"}, .enabled = false});
  absl::StatusOr<std::vector<Device>> devices = store_->ResolveTargets(
      kDefaultTenant, {.kind = TargetKind::kGroups, .values = {"floor-1", "floor-2"}});
  ASSERT_TRUE(devices.ok()) << devices.status();
  EXPECT_EQ(Ids(*devices), (std::vector<std::string>{"a", "b"}));
}

// A resolved device carries what its topic is built from: its own topic, or
// the template's fields, metadata included.
TEST_F(PgDeviceStoreTest, ResolvedDevicesCarryWhatTheirTopicIsBuiltFrom) {
  MustCreate({.device_id = "own",
              .owner_id = "o1",
              .platform = "shelly",
              .topic = "shellies/own/cmd",
              .metadata = {{"home", "h1"}}});
  MustCreate({.device_id = "templated",
              .owner_id = "o2",
              .platform = "esp32",
              .metadata = {{"home", "h2"}, {"room", "kitchen"}}});
  absl::StatusOr<std::vector<Device>> devices = store_->ResolveTargets(
      kDefaultTenant, {.kind = TargetKind::kDeviceIds, .values = {"own", "templated"}});
  ASSERT_TRUE(devices.ok()) << devices.status();
  ASSERT_EQ(Ids(*devices), (std::vector<std::string>{"own", "templated"}));
  const Device& own = (*devices)[0];
  EXPECT_EQ(own.tenant_id, kDefaultTenant);
  EXPECT_EQ(own.owner_id, "o1");
  EXPECT_EQ(own.platform, "shelly");
  EXPECT_EQ(own.topic, "shellies/own/cmd");
  EXPECT_TRUE(own.enabled);
  const Device& templated = (*devices)[1];
  EXPECT_EQ(templated.owner_id, "o2");
  EXPECT_EQ(templated.platform, "esp32");
  EXPECT_EQ(templated.topic, "");
  EXPECT_EQ(templated.metadata,
            (std::map<std::string, std::string>{{"home", "h2"}, {"room", "kitchen"}}));
  EXPECT_EQ(ExpandTopicTemplate("homes/{meta.home}/{meta.room}/{device_id}", templated).value(),
            "homes/h2/kitchen/templated");
}

TEST_F(PgDeviceStoreTest, ResolveManyIdsInOneCall) {
  std::vector<std::string> ids;
  for (int i = 0; i < 2000; ++i) ids.push_back(absl::StrFormat("dev-%05d", i));
  for (int i = 0; i < 2000; i += 2) MustCreate({.device_id = ids[i]});
  absl::StatusOr<std::vector<Device>> devices =
      store_->ResolveTargets(kDefaultTenant, {.kind = TargetKind::kDeviceIds, .values = ids});
  ASSERT_TRUE(devices.ok()) << devices.status();
  EXPECT_EQ(devices->size(), 1000u);
}

TEST_F(PgDeviceStoreTest, ResolveEdgeCases) {
  absl::StatusOr<std::vector<Device>> none =
      store_->ResolveTargets(kDefaultTenant, {.kind = TargetKind::kGroups, .values = {}});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  EXPECT_EQ(store_->ResolveTargets(kDefaultTenant, {.kind = TargetKind::kTopic, .values = {"t"}})
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace herald
