// Tests of FakeDeviceStore: the DeviceStore contract that code tested
// against the fake relies on.
#include "tests/testing/fakes/fake_device_store.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/core/page_token.h"
#include "tests/testing/fakes/fake_clock.h"
#include "tests/testing/fakes/status_matchers.h"

namespace herald::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::IsEmpty;

Device MakeDevice(const std::string& id, const std::string& owner = "alice",
                  std::vector<std::string> groups = {}, bool enabled = true,
                  const std::string& tenant = kDefaultTenant) {
  Device device;
  device.tenant_id = tenant;
  device.device_id = id;
  device.owner_id = owner;
  device.groups = std::move(groups);
  device.enabled = enabled;
  return device;
}

std::vector<std::string> Ids(const std::vector<Device>& devices) {
  std::vector<std::string> ids;
  for (const Device& device : devices) ids.push_back(device.device_id);
  return ids;
}

TEST(FakeDeviceStoreTest, CreateGetDelete) {
  FakeClock clock;
  FakeDeviceStore store(clock.AsFunction());
  ASSERT_OK_AND_ASSIGN(Device created, store.CreateDevice(MakeDevice("s1")));
  EXPECT_EQ(created.create_time, clock.Now());
  EXPECT_EQ(created.update_time, clock.Now());
  EXPECT_THAT(store.CreateDevice(MakeDevice("s1", "bob")),
              StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_OK(store.CreateDevice(MakeDevice("s1", "bob", {}, true, "other-tenant")))
      << "ids are per tenant";
  ASSERT_OK_AND_ASSIGN(Device got, store.GetDevice(kDefaultTenant, "s1"));
  EXPECT_EQ(got.owner_id, "alice");
  EXPECT_THAT(store.GetDevice(kDefaultTenant, "nope"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_OK(store.DeleteDevice(kDefaultTenant, "s1"));
  EXPECT_THAT(store.DeleteDevice(kDefaultTenant, "s1"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(store.GetDevice(kDefaultTenant, "s1"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_OK(store.GetDevice("other-tenant", "s1"));
}

TEST(FakeDeviceStoreTest, UpdateTouchesOnlyMaskedFields) {
  FakeClock clock;
  FakeDeviceStore store(clock.AsFunction());
  ASSERT_OK(store.CreateDevice(MakeDevice("s1", "alice", {"g1"})));
  clock.Advance(absl::Minutes(1));
  Device change = MakeDevice("s1", "bob", {"g2"}, false);
  change.topic = "t";
  ASSERT_OK_AND_ASSIGN(Device updated,
                       store.UpdateDevice(change, {DeviceField::kOwnerId, DeviceField::kEnabled}));
  EXPECT_EQ(updated.owner_id, "bob");
  EXPECT_FALSE(updated.enabled);
  EXPECT_THAT(updated.groups, ElementsAre("g1"));
  EXPECT_EQ(updated.topic, "");
  EXPECT_EQ(updated.update_time, clock.Now());
  EXPECT_EQ(updated.create_time, clock.Now() - absl::Minutes(1));
  EXPECT_THAT(store.UpdateDevice(MakeDevice("nope"), {DeviceField::kTopic}),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST(FakeDeviceStoreTest, ListsInIdOrderWithPageTokens) {
  FakeDeviceStore store;
  for (const char* id : {"c", "a", "e", "b", "d"}) ASSERT_OK(store.CreateDevice(MakeDevice(id)));
  ASSERT_OK(store.CreateDevice(MakeDevice("zz", "x", {}, true, "other-tenant")));
  ASSERT_OK_AND_ASSIGN(Page<Device> first, store.ListDevices(kDefaultTenant, {}, 2, ""));
  EXPECT_THAT(Ids(first.items), ElementsAre("a", "b"));
  ASSERT_FALSE(first.next_page_token.empty());
  ASSERT_OK_AND_ASSIGN(Page<Device> second,
                       store.ListDevices(kDefaultTenant, {}, 2, first.next_page_token));
  EXPECT_THAT(Ids(second.items), ElementsAre("c", "d"));
  ASSERT_OK_AND_ASSIGN(Page<Device> last,
                       store.ListDevices(kDefaultTenant, {}, 2, second.next_page_token));
  EXPECT_THAT(Ids(last.items), ElementsAre("e"));
  EXPECT_THAT(last.next_page_token, IsEmpty());
  ASSERT_OK_AND_ASSIGN(Page<Device> exact, store.ListDevices(kDefaultTenant, {}, 5, ""));
  EXPECT_THAT(exact.next_page_token, IsEmpty()) << "no token when nothing follows";
}

TEST(FakeDeviceStoreTest, ListFiltersAndRefusesForeignTokens) {
  FakeDeviceStore store;
  ASSERT_OK(store.CreateDevice(MakeDevice("a", "alice", {"g1"})));
  ASSERT_OK(store.CreateDevice(MakeDevice("b", "bob", {"g1", "g2"})));
  ASSERT_OK(store.CreateDevice(MakeDevice("c", "alice", {"g2"})));
  ASSERT_OK(store.SetOnline(kDefaultTenant, "c", true, kFakeEpoch));
  auto list = [&](DeviceFilter filter) {
    return Ids(store.ListDevices(kDefaultTenant, filter, 0, "").value().items);
  };
  DeviceFilter by_owner;
  by_owner.owner_id = "alice";
  EXPECT_THAT(list(by_owner), ElementsAre("a", "c"));
  DeviceFilter by_group;
  by_group.group = "g2";
  EXPECT_THAT(list(by_group), ElementsAre("b", "c"));
  DeviceFilter by_presence;
  by_presence.online = true;
  EXPECT_THAT(list(by_presence), ElementsAre("c"));
  DeviceFilter both = by_owner;
  both.group = "g1";
  EXPECT_THAT(list(both), ElementsAre("a"));
  DeviceFilter by_platform;
  by_platform.platform = "other";
  EXPECT_THAT(list(by_platform), IsEmpty());
  EXPECT_THAT(store.ListDevices(kDefaultTenant, {}, 1, EncodePageToken("notifications", "a")),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(store.ListDevices(kDefaultTenant, {}, 1, "garbage"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(FakeDeviceStoreTest, ResolvesEnabledDevicesOnly) {
  FakeDeviceStore store;
  ASSERT_OK(store.CreateDevice(MakeDevice("a", "alice", {"g1"})));
  ASSERT_OK(store.CreateDevice(MakeDevice("b", "alice", {"g1", "g2"}, /*enabled=*/false)));
  ASSERT_OK(store.CreateDevice(MakeDevice("c", "bob", {"g2"})));
  ASSERT_OK(store.CreateDevice(MakeDevice("a", "alice", {"g1"}, true, "other-tenant")));
  auto resolve = [&](TargetKind kind, std::vector<std::string> values) {
    return Ids(store.ResolveTargets(kDefaultTenant, {.kind = kind, .values = values}).value());
  };
  EXPECT_THAT(resolve(TargetKind::kDeviceIds, {"c", "a", "b", "ghost"}), ElementsAre("a", "c"));
  EXPECT_THAT(resolve(TargetKind::kOwnerIds, {"alice"}), ElementsAre("a"));
  EXPECT_THAT(resolve(TargetKind::kGroups, {"g1", "g2"}), ElementsAre("a", "c"));
  EXPECT_THAT(store.ResolveTargets(kDefaultTenant, {.kind = TargetKind::kTopic, .values = {"t"}}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(store.resolve_calls(), 4);
}

TEST(FakeDeviceStoreTest, InjectedFailures) {
  FakeDeviceStore store;
  store.FailNextCalls(absl::UnavailableError("db down"), 1, "GetDevice");
  store.FailNextCalls(absl::InternalError("boom"), 2);
  EXPECT_THAT(store.CreateDevice(MakeDevice("a")), StatusIs(absl::StatusCode::kInternal));
  EXPECT_THAT(store.GetDevice(kDefaultTenant, "a"), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(store.GetDevice(kDefaultTenant, "a"), StatusIs(absl::StatusCode::kInternal));
  EXPECT_OK(store.CreateDevice(MakeDevice("a"))) << "failures are used up";
  EXPECT_EQ(store.size(), 1u) << "a failed call changes nothing";
}

TEST(FakeDeviceStoreTest, UpdatePresenceAppliesMatchingNewerUpdatesOnly) {
  FakeDeviceStore store;
  Device a = MakeDevice("a");
  a.metadata = {{"home_id", "h1"}};
  ASSERT_OK(store.CreateDevice(a));
  ASSERT_OK(store.CreateDevice(MakeDevice("b", "bob")));
  const absl::Time t0 = kFakeEpoch;

  ASSERT_OK_AND_ASSIGN(std::vector<std::string> changed,
                       store.UpdatePresence(kDefaultTenant,
                                            {{.device_id = "a", .online = true, .seen_time = t0,
                                              .expected_metadata = {{"home_id", "h1"}}},
                                             {.device_id = "b", .online = false, .seen_time = t0,
                                              .expected_owner_id = "alice"},
                                             {.device_id = "nobody", .seen_time = t0}}));
  EXPECT_THAT(changed, ElementsAre("a")) << "b's owner differs; nobody does not exist";
  ASSERT_OK_AND_ASSIGN(Device stored, store.GetDevice(kDefaultTenant, "a"));
  EXPECT_TRUE(stored.online);
  EXPECT_EQ(stored.last_seen_time, t0);
  EXPECT_EQ(stored.update_time, kFakeEpoch) << "presence is not an edit";

  // Older than what is stored: ignored. Other metadata: ignored.
  ASSERT_OK_AND_ASSIGN(changed, store.UpdatePresence(
                                    kDefaultTenant, {{.device_id = "a",
                                                      .online = false,
                                                      .seen_time = t0 - absl::Seconds(1)}}));
  EXPECT_THAT(changed, IsEmpty());
  ASSERT_OK_AND_ASSIGN(changed, store.UpdatePresence(
                                    kDefaultTenant, {{.device_id = "a",
                                                      .online = false,
                                                      .seen_time = t0 + absl::Seconds(1),
                                                      .expected_metadata = {{"home_id", "h2"}}}}));
  EXPECT_THAT(changed, IsEmpty());
  ASSERT_OK_AND_ASSIGN(changed, store.UpdatePresence(kDefaultTenant,
                                                     {{.device_id = "a",
                                                       .online = false,
                                                       .seen_time = t0 + absl::Seconds(1)}}));
  EXPECT_THAT(changed, ElementsAre("a"));
  ASSERT_OK_AND_ASSIGN(stored, store.GetDevice(kDefaultTenant, "a"));
  EXPECT_FALSE(stored.online);

  store.FailNextCalls(absl::UnavailableError("db down"), 1, "UpdatePresence");
  EXPECT_THAT(store.UpdatePresence(kDefaultTenant, {{.device_id = "a", .seen_time = t0}}),
              StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(store.presence_calls(), 5);
}

}  // namespace
}  // namespace herald::testing
