// Unit tests of heraldctl's parts without gRPC (service/ctl/cli.h,
// printers.h): argument parsing, tables, and the text of API messages.
#include <gtest/gtest.h>

#include "google/protobuf/util/json_util.h"
#include "service/ctl/cli.h"
#include "service/ctl/printers.h"

namespace herald::ctl {
namespace {

TEST(ParseKeyValuesTest, SplitsAtTheFirstEquals) {
  absl::StatusOr<std::map<std::string, std::string>> parsed =
      ParseKeyValues({"door=front", "expr=a=b", "empty="});
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(*parsed, (std::map<std::string, std::string>{{"door", "front"}, {"expr", "a=b"}, {"empty", ""}}));
  EXPECT_TRUE(ParseKeyValues({})->empty());
}

TEST(ParseKeyValuesTest, RefusesWhatIsNotKeyEqualsValue) {
  EXPECT_EQ(ParseKeyValues({"door"}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseKeyValues({"=front"}).status().code(), absl::StatusCode::kInvalidArgument);
  absl::Status twice = ParseKeyValues({"a=1", "a=2"}).status();
  EXPECT_EQ(twice.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(twice.message().find("\"a\""), absl::string_view::npos) << twice;
}

TEST(ParseOptionalBoolTest, AcceptsTheUsualSpellings) {
  EXPECT_EQ(*ParseOptionalBool("", "--online"), std::nullopt);
  EXPECT_EQ(*ParseOptionalBool("TRUE", "--online"), std::optional<bool>(true));
  EXPECT_EQ(*ParseOptionalBool("no", "--online"), std::optional<bool>(false));
  absl::Status bad = ParseOptionalBool("maybe", "--online").status();
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.message().find("--online"), absl::string_view::npos);
}

TEST(ParseChoiceTest, IgnoresCaseAndListsTheChoices) {
  EXPECT_EQ(*ParseChoice("HIGH", {"low", "normal", "high"}, "--priority"), 2u);
  absl::Status bad = ParseChoice("extreme", {"low", "high"}, "--priority").status();
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.message().find("low, high"), absl::string_view::npos) << bad;
}

TEST(TableTest, PadsColumnsToTheWidestCellAndFlattensLineBreaks) {
  Table table({"DEVICE", "STATE", "ERROR"});
  table.AddRow({"sensor-001", "DELIVERED", ""});
  table.AddRow({"s2", "FAILED", "not\nauthorised"});
  EXPECT_EQ(table.Render(),
            "DEVICE      STATE      ERROR\n"
            "sensor-001  DELIVERED\n"
            "s2          FAILED     not authorised\n");
  EXPECT_EQ(table.rows(), 2u);
}

TEST(FieldsTest, AlignsValuesAndShowsEmptyOnesAsDash) {
  Fields fields;
  fields.Add("device", "s1");
  fields.Add("last seen", "");
  EXPECT_EQ(fields.Render(), "device:    s1\nlast seen: -\n");
}

TEST(PrintersTest, TimesAndDurations) {
  google::protobuf::Timestamp time;
  EXPECT_EQ(FormatTime(time), "-");
  time.set_seconds(1769250600);  // 2026-01-24T10:30:00Z
  time.set_nanos(500000000);
  EXPECT_EQ(FormatTime(time), "2026-01-24T10:30:00Z");
  google::protobuf::Duration duration;
  EXPECT_EQ(FormatDuration(duration), "-");
  duration.set_nanos(250000000);
  EXPECT_EQ(FormatDuration(duration), "250ms");
}

TEST(PrintersTest, DeviceTableAndJson) {
  google::protobuf::RepeatedPtrField<v1::Device> devices;
  v1::Device* device = devices.Add();
  device->set_device_id("sensor-001");
  device->set_owner_id("home-1");
  device->add_groups("floor-1");
  device->set_online(true);
  EXPECT_EQ(DeviceTable(devices),
            "DEVICE      OWNER   PLATFORM  TOPIC       GROUPS   ENABLED  ONLINE  LAST SEEN\n"
            "sensor-001  home-1  mqtt      (template)  floor-1  yes      yes     -\n");
  const std::string json = ToJson(*device);
  EXPECT_NE(json.find("\"deviceId\": \"sensor-001\""), std::string::npos) << json;
  // Defaults are printed, so that scripts find every field.
  EXPECT_NE(json.find("\"topic\": \"\""), std::string::npos) << json;
  EXPECT_EQ(json.back(), '\n');
}

TEST(PrintersTest, NotificationTextListsDeliveriesAndUnresolvedIds) {
  v1::Notification notification;
  notification.set_notification_id("n1");
  notification.set_state(v1::PARTIALLY_DELIVERED);
  notification.mutable_target()->mutable_device_ids()->add_values("a");
  v1::Delivery* delivery = notification.add_deliveries();
  delivery->set_device_id("a");
  delivery->set_topic("devices/a/notifications");
  delivery->set_state(v1::DELIVERY_FAILED);
  delivery->set_attempts(5);
  delivery->set_last_error("not authorised");
  const std::string text = NotificationText(notification, {"b"});
  EXPECT_NE(text.find("state:        PARTIALLY_DELIVERED\n"), std::string::npos) << text;
  EXPECT_NE(text.find("target:       devices a\n"), std::string::npos) << text;
  EXPECT_NE(text.find("unresolved:   b\n"), std::string::npos) << text;
  EXPECT_NE(text.find("a       devices/a/notifications  DELIVERY_FAILED  5"), std::string::npos) << text;
  EXPECT_NE(text.find("not authorised"), std::string::npos) << text;
}

TEST(PrintersTest, CommandTextShowsTheResultAsJson) {
  v1::Command command;
  command.set_command_id("c1");
  command.set_state(v1::COMMAND_SUCCEEDED);
  command.set_status("success");
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(R"({"pong": true})", command.mutable_result()).ok());
  const std::string text = CommandText(command);
  EXPECT_NE(text.find("state:      COMMAND_SUCCEEDED\n"), std::string::npos) << text;
  EXPECT_NE(text.find("result:     {\"pong\":true}\n"), std::string::npos) << text;
}

}  // namespace
}  // namespace herald::ctl
