// End to end: the real herald binary over real gRPC, with a real PostgreSQL,
// a real Mosquitto and a real MQTT subscriber recording what devices get.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "herald/v1/device.grpc.pb.h"
#include "herald/v1/notification.grpc.pb.h"
#include "herald/v1/stats.grpc.pb.h"
#include "tests/testing/herald_process.h"
#include "tests/testing/http_get.h"
#include "tests/testing/mqtt_recorder.h"
#include "tests/testing/test_servers.h"

namespace herald {
namespace {

using ::herald::testing::HeraldProcess;
using ::herald::testing::MqttRecorder;
using ::herald::testing::RecordedMessage;
using ::herald::testing::TestServers;

class EndToEndTest : public ::testing::Test {
 protected:
  // Failures here are recorded, not asserted: gtest would report the tests
  // of a suite whose set-up failed as skipped, and CTest would pass them.
  static void SetUpTestSuite() {
    setup_error_ = new std::string();
    database_url_ = new std::string(herald::testing::CreateScratchDatabase("e2e", false));
    // The schema comes from `herald migrate`, as in production; twice is a no-op.
    for (int run = 0; run < 2; ++run) {
      std::string output;
      absl::StatusOr<int> code =
          herald::testing::RunHerald({"migrate", "--database_url=" + *database_url_}, &output);
      if (!code.ok() || *code != 0) {
        *setup_error_ = absl::StrCat("herald migrate failed (run ", run + 1, "): ",
                                     code.ok() ? absl::StrCat("exit ", *code) : code.status().ToString(),
                                     "\n", output);
        return;
      }
    }
    herald_ = new HeraldProcess({"--database_url=" + *database_url_,
                                 "--mqtt_uri=" + TestServers::Get().mqtt_uri,
                                 absl::StrCat("--mqtt_client_id=herald-e2e-", getpid()), "--log_level=debug"});
    if (absl::Status started = herald_->Start(); !started.ok()) {
      *setup_error_ = started.ToString();
      return;
    }
    channel_ = new std::shared_ptr<grpc::Channel>(herald_->NewChannel());
  }

  static void TearDownTestSuite() {
    const bool started = channel_ != nullptr;
    delete channel_;
    if (started) {
      const int code = herald_->Stop();
      EXPECT_EQ(code, 0) << "herald should exit 0 on SIGTERM\n" << herald_->ReadLog();
    }
    delete herald_;
    delete database_url_;
    delete setup_error_;
  }

  void SetUp() override {
    ASSERT_TRUE(setup_error_->empty()) << *setup_error_;
    devices_ = v1::DeviceService::NewStub(*channel_);
    notifications_ = v1::NotificationService::NewStub(*channel_);
    stats_ = v1::StatsService::NewStub(*channel_);
    // A unique prefix per test keeps the tests independent on one server.
    prefix_ = absl::StrCat(::testing::UnitTest::GetInstance()->current_test_info()->name(), "-");
  }

  void TearDown() override {
    if (HasFailure() && herald_ != nullptr) std::fprintf(stderr, "--- herald log ---\n%s\n", herald_->ReadLog().c_str());
  }

  std::unique_ptr<MqttRecorder> Record(std::vector<std::string> filters) {
    auto recorder = std::make_unique<MqttRecorder>(TestServers::Get().mqtt_uri, filters, 2);
    absl::Status connected = recorder->Connect();
    EXPECT_TRUE(connected.ok()) << connected;
    return recorder;
  }

  v1::Device CreateDevice(const std::string& id, const std::string& owner,
                          std::vector<std::string> groups = {}, bool enabled = true,
                          const std::string& topic = "") {
    v1::CreateDeviceRequest request;
    v1::Device* device = request.mutable_device();
    device->set_device_id(prefix_ + id);
    device->set_owner_id(prefix_ + owner);
    for (const std::string& group : groups) device->add_groups(prefix_ + group);
    device->set_enabled(enabled);
    device->set_topic(topic);
    v1::Device created;
    grpc::ClientContext context;
    grpc::Status status = devices_->CreateDevice(&context, request, &created);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return created;
  }

  // SendNotification through the suite's replica, or through `stub`.
  grpc::Status Send(const v1::SendNotificationRequest& request,
                    v1::SendNotificationResponse* response,
                    v1::NotificationService::Stub* stub = nullptr) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    return (stub != nullptr ? stub : notifications_.get())
        ->SendNotification(&context, request, response);
  }

  // The flags of one more replica on the suite's database and broker, with
  // its own MQTT client id, plus `extra`.
  static std::vector<std::string> ReplicaFlags(const std::string& name, const std::string& extra) {
    return {"--database_url=" + *database_url_, "--mqtt_uri=" + TestServers::Get().mqtt_uri,
            absl::StrCat("--mqtt_client_id=herald-e2e-", name, "-", getpid()), extra};
  }

  // Polls GetNotification until it leaves the in-progress states.
  v1::Notification WaitSettled(const std::string& id, absl::Duration timeout = absl::Seconds(15)) {
    const absl::Time deadline = absl::Now() + timeout;
    v1::Notification notification;
    while (absl::Now() < deadline) {
      grpc::ClientContext context;
      v1::GetNotificationRequest request;
      request.set_notification_id(id);
      grpc::Status status = notifications_->GetNotification(&context, request, &notification);
      EXPECT_TRUE(status.ok()) << status.error_message();
      if (!status.ok()) break;
      const auto state = notification.state();
      if (state != v1::ACCEPTED && state != v1::DELIVERING && state != v1::SCHEDULED) break;
      absl::SleepFor(absl::Milliseconds(50));
    }
    return notification;
  }

  std::string Id(const std::string& name) const { return prefix_ + name; }

  static std::string* setup_error_;
  static std::string* database_url_;
  static HeraldProcess* herald_;
  static std::shared_ptr<grpc::Channel>* channel_;
  std::unique_ptr<v1::DeviceService::Stub> devices_;
  std::unique_ptr<v1::NotificationService::Stub> notifications_;
  std::unique_ptr<v1::StatsService::Stub> stats_;
  std::string prefix_;
};

std::string* EndToEndTest::setup_error_ = nullptr;
std::string* EndToEndTest::database_url_ = nullptr;
HeraldProcess* EndToEndTest::herald_ = nullptr;
std::shared_ptr<grpc::Channel>* EndToEndTest::channel_ = nullptr;

google::protobuf::Struct ParseJson(const std::string& json) {
  google::protobuf::Struct parsed;
  auto status = google::protobuf::util::JsonStringToMessage(json, &parsed);
  EXPECT_TRUE(status.ok()) << "not JSON: " << json;
  return parsed;
}

v1::SendNotificationRequest ToDevices(std::vector<std::string> ids, int qos) {
  v1::SendNotificationRequest request;
  for (const std::string& id : ids) request.mutable_target()->mutable_device_ids()->add_values(id);
  request.mutable_content()->set_title("Door open");
  request.mutable_content()->set_body("Front door opened");
  (*request.mutable_content()->mutable_data())["door"] = "front";
  request.mutable_content()->set_priority(v1::HIGH);
  request.mutable_options()->set_qos(qos);
  return request;
}

TEST_F(EndToEndTest, HealthServiceReportsServing) {
  auto health = grpc::health::v1::Health::NewStub(*channel_);
  auto status_of = [&](const std::string& service) {
    grpc::ClientContext context;
    grpc::health::v1::HealthCheckRequest request;
    request.set_service(service);
    grpc::health::v1::HealthCheckResponse response;
    grpc::Status status = health->Check(&context, request, &response);
    EXPECT_TRUE(status.ok()) << service << ": " << status.error_message();
    return response.status();
  };
  // "herald.delivery" also needs the broker connection, which may come up
  // a moment after the server (it is refreshed every 2 s).
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (status_of("herald.delivery") != grpc::health::v1::HealthCheckResponse::SERVING &&
         absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  for (const std::string service :
       {"", "herald.v1.NotificationService", "herald.delivery", "herald.liveness"}) {
    EXPECT_EQ(status_of(service), grpc::health::v1::HealthCheckResponse::SERVING) << service;
  }
}

TEST_F(EndToEndTest, DeviceLifecycle) {
  CreateDevice("a", "owner", {"floor-1"});
  CreateDevice("b", "owner", {"floor-2"});
  CreateDevice("c", "other", {"floor-1"});

  {  // A second create of the same id is refused.
    v1::CreateDeviceRequest request;
    request.mutable_device()->set_device_id(Id("a"));
    v1::Device device;
    grpc::ClientContext context;
    EXPECT_EQ(devices_->CreateDevice(&context, request, &device).error_code(),
              grpc::StatusCode::ALREADY_EXISTS);
  }
  {  // Filter by owner, paginated one by one.
    std::vector<std::string> seen;
    std::string token;
    do {
      v1::ListDevicesRequest request;
      request.set_owner_id(Id("owner"));
      request.set_page_size(1);
      request.set_page_token(token);
      v1::ListDevicesResponse response;
      grpc::ClientContext context;
      ASSERT_TRUE(devices_->ListDevices(&context, request, &response).ok());
      for (const auto& device : response.devices()) seen.push_back(device.device_id());
      token = response.next_page_token();
    } while (!token.empty() && seen.size() < 10);
    EXPECT_EQ(seen, (std::vector<std::string>{Id("a"), Id("b")}));
  }
  {  // Filter by group.
    v1::ListDevicesRequest request;
    request.set_group(Id("floor-1"));
    v1::ListDevicesResponse response;
    grpc::ClientContext context;
    ASSERT_TRUE(devices_->ListDevices(&context, request, &response).ok());
    ASSERT_EQ(response.devices_size(), 2);
    EXPECT_EQ(response.devices(0).device_id(), Id("a"));
    EXPECT_EQ(response.devices(1).device_id(), Id("c"));
  }
  {  // Update only what the mask names.
    v1::UpdateDeviceRequest request;
    request.mutable_device()->set_device_id(Id("a"));
    request.mutable_device()->set_owner_id("ignored-owner");
    (*request.mutable_device()->mutable_metadata())["home_id"] = "h1";
    request.mutable_update_mask()->add_paths("metadata");
    v1::Device updated;
    grpc::ClientContext context;
    ASSERT_TRUE(devices_->UpdateDevice(&context, request, &updated).ok());
    EXPECT_EQ(updated.owner_id(), Id("owner"));
    EXPECT_EQ(updated.metadata().at("home_id"), "h1");
  }
  {  // Delete, then it is gone.
    v1::DeleteDeviceRequest request;
    request.set_device_id(Id("b"));
    google::protobuf::Empty empty;
    grpc::ClientContext context;
    ASSERT_TRUE(devices_->DeleteDevice(&context, request, &empty).ok());
    v1::GetDeviceRequest get;
    get.set_device_id(Id("b"));
    v1::Device device;
    grpc::ClientContext get_context;
    EXPECT_EQ(devices_->GetDevice(&get_context, get, &device).error_code(),
              grpc::StatusCode::NOT_FOUND);
  }
}

TEST_F(EndToEndTest, DeviceRequestsWithBadInputAreRefusedWithTheField) {
  struct Case {
    std::string device_id;
    std::string topic;
    std::string expected;
  };
  for (const Case& c : std::vector<Case>{
           {"", "", "device.device_id: is required"},
           {"bad/id", "", "device.device_id"},
           {"bad+id", "", "device.device_id"},
           {Id("t1"), "devices/#", "device.topic"},
           {Id("t2"), "$SYS/x", "device.topic"},
           {Id("t3"), std::string("a\0b", 3), "device.topic"},
       }) {
    v1::CreateDeviceRequest request;
    request.mutable_device()->set_device_id(c.device_id);
    request.mutable_device()->set_topic(c.topic);
    v1::Device device;
    grpc::ClientContext context;
    grpc::Status status = devices_->CreateDevice(&context, request, &device);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.expected;
    EXPECT_TRUE(absl::StrContains(status.error_message(), c.expected)) << status.error_message();
  }
  v1::ListDevicesRequest request;
  request.set_page_token("never-issued");
  v1::ListDevicesResponse response;
  grpc::ClientContext context;
  grpc::Status status = devices_->ListDevices(&context, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(absl::StrContains(status.error_message(), "page_token")) << status.error_message();
}

TEST_F(EndToEndTest, NotifiesDevicesAtEachQosAndRecordsTheOutcome) {
  CreateDevice("s1", "owner");
  CreateDevice("s2", "owner");
  auto recorder = Record({"devices/" + Id("s1") + "/notifications",
                          "devices/" + Id("s2") + "/notifications"});
  for (int qos : {0, 1, 2}) {
    SCOPED_TRACE(absl::StrCat("qos ", qos));
    recorder->Clear();
    v1::SendNotificationResponse response;
    grpc::Status status = Send(ToDevices({Id("s1"), Id("s2"), Id("missing")}, qos), &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(response.target_count(), 2);
    ASSERT_EQ(response.unresolved_device_ids_size(), 1);
    EXPECT_EQ(response.unresolved_device_ids(0), Id("missing"));
    ASSERT_TRUE(recorder->WaitForCount(2, absl::Seconds(10)));

    for (const std::string& device : {Id("s1"), Id("s2")}) {
      auto messages = recorder->MessagesOn("devices/" + device + "/notifications");
      ASSERT_EQ(messages.size(), 1u);
      EXPECT_EQ(messages[0].qos, qos);
      EXPECT_EQ(messages[0].user_property_notification_id, response.notification_id());
      EXPECT_EQ(messages[0].content_type, "application/json");
      google::protobuf::Struct payload = ParseJson(messages[0].payload);
      EXPECT_EQ(payload.fields().at("id").string_value(), response.notification_id());
      EXPECT_EQ(payload.fields().at("title").string_value(), "Door open");
      EXPECT_EQ(payload.fields().at("body").string_value(), "Front door opened");
      EXPECT_EQ(payload.fields().at("priority").string_value(), "high");
      EXPECT_EQ(payload.fields().at("data").struct_value().fields().at("door").string_value(),
                "front");
      EXPECT_TRUE(payload.fields().contains("sent_at"));
      EXPECT_FALSE(payload.fields().contains("expires_at"));
    }

    v1::Notification notification = WaitSettled(response.notification_id());
    EXPECT_EQ(notification.state(), v1::DELIVERED);
    EXPECT_EQ(notification.target_count(), 2);
    EXPECT_EQ(notification.options().qos(), qos);
    ASSERT_EQ(notification.deliveries_size(), 2);
    for (const v1::Delivery& delivery : notification.deliveries()) {
      EXPECT_EQ(delivery.state(), v1::DELIVERED_TO_BROKER);
      EXPECT_EQ(delivery.attempts(), 1);
      EXPECT_EQ(delivery.topic(), "devices/" + delivery.device_id() + "/notifications");
    }
  }
}

// A replica started with --mqtt_notification_properties=false publishes the
// same payload without the MQTT 5 content type and notification_id user
// property (the payload's id still names the notification).
TEST_F(EndToEndTest, WithoutNotificationPropertiesOnlyThePayloadNamesTheNotification) {
  CreateDevice("bare", "owner");
  auto recorder = Record({"devices/" + Id("bare") + "/notifications"});
  HeraldProcess bare(ReplicaFlags("bare", "--mqtt_notification_properties=false"));
  ASSERT_TRUE(bare.Start().ok());
  // Until its broker connection is up a replica hands nothing to its own
  // dispatcher, and the suite's replica would publish the notification.
  auto stats = v1::StatsService::NewStub(bare.NewChannel());
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  std::string state;
  while (state != "connected" && absl::Now() < deadline) {
    grpc::ClientContext context;
    v1::GetStatsResponse response;
    if (stats->GetStats(&context, v1::GetStatsRequest(), &response).ok() &&
        response.providers_size() > 0) {
      state = response.providers(0).state();
    }
    if (state != "connected") absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_EQ(state, "connected");
  auto notifications = v1::NotificationService::NewStub(bare.NewChannel());
  v1::SendNotificationResponse response;
  grpc::Status status = Send(ToDevices({Id("bare")}, 1), &response, notifications.get());
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_TRUE(recorder->WaitForCount(1, absl::Seconds(10)));

  auto messages = recorder->MessagesOn("devices/" + Id("bare") + "/notifications");
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0].user_property_notification_id, "");
  EXPECT_EQ(messages[0].content_type, "");
  EXPECT_EQ(ParseJson(messages[0].payload).fields().at("id").string_value(),
            response.notification_id());
  EXPECT_EQ(WaitSettled(response.notification_id()).state(), v1::DELIVERED);
  EXPECT_EQ(bare.Stop(), 0) << bare.ReadLog();
}

// gRPC's server waits, when it stops, for its clients to close their
// connections: a backend that kept an idle channel open held every stop of
// a replica for 4.4 s (gRPC's own wait, or the deadline of --shutdown_grace
// / 4 if shorter). With nothing to finish, a stop takes about 0.3 s.
TEST_F(EndToEndTest, AStopDoesNotWaitForAClientsIdleConnection) {
  CreateDevice("idle", "owner");
  HeraldProcess replica(ReplicaFlags("idle", "--shutdown_grace=60s"));
  ASSERT_TRUE(replica.Start().ok());
  std::shared_ptr<grpc::Channel> channel = replica.NewChannel();
  auto notifications = v1::NotificationService::NewStub(channel);
  v1::SendNotificationResponse response;
  grpc::Status status = Send(ToDevices({Id("idle")}, 1), &response, notifications.get());
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(channel->GetState(/*try_to_connect=*/false), GRPC_CHANNEL_READY);

  const absl::Time stop_started = absl::Now();
  EXPECT_EQ(replica.Stop(), 0) << replica.ReadLog();
  const absl::Duration stop_took = absl::Now() - stop_started;
  EXPECT_LT(stop_took, absl::Seconds(3)) << "the stop waited for the idle connection";
  // The call it answered was stored; either replica delivers it.
  EXPECT_EQ(WaitSettled(response.notification_id()).state(), v1::DELIVERED);
}

TEST_F(EndToEndTest, NotifiesOwnersGroupsAndRawTopics) {
  CreateDevice("k1", "alice", {"kitchen"});
  CreateDevice("k2", "alice", {"kitchen"}, /*enabled=*/false);
  CreateDevice("h1", "bob", {"hall"}, true, "homes/bob/" + Id("h1") + "/alerts");
  // Only this test's topics: other tests share the broker.
  auto recorder = Record({"devices/" + Id("k1") + "/notifications",
                          "devices/" + Id("k2") + "/notifications",
                          "homes/bob/" + Id("h1") + "/alerts", "broadcast/" + Id("all")});

  {  // Owner: only the enabled device of alice.
    v1::SendNotificationRequest request = ToDevices({}, 1);
    request.mutable_target()->mutable_owner_ids()->add_values(Id("alice"));
    v1::SendNotificationResponse response;
    ASSERT_TRUE(Send(request, &response).ok());
    EXPECT_EQ(response.target_count(), 1);
    EXPECT_EQ(WaitSettled(response.notification_id()).state(), v1::DELIVERED);
  }
  {  // Group: the device's own topic wins over the template.
    v1::SendNotificationRequest request = ToDevices({}, 2);
    request.mutable_target()->mutable_groups()->add_values(Id("hall"));
    v1::SendNotificationResponse response;
    ASSERT_TRUE(Send(request, &response).ok());
    EXPECT_EQ(response.target_count(), 1);
    EXPECT_EQ(WaitSettled(response.notification_id()).state(), v1::DELIVERED);
  }
  {  // Raw topic broadcast, retained.
    v1::SendNotificationRequest request = ToDevices({}, 1);
    request.mutable_target()->set_topic("broadcast/" + Id("all"));
    request.mutable_options()->set_retain(true);
    v1::SendNotificationResponse response;
    ASSERT_TRUE(Send(request, &response).ok());
    EXPECT_EQ(response.target_count(), 1);
    v1::Notification settled = WaitSettled(response.notification_id());
    EXPECT_EQ(settled.state(), v1::DELIVERED);
    ASSERT_EQ(settled.deliveries_size(), 1);
    EXPECT_EQ(settled.deliveries(0).device_id(), "");
  }
  ASSERT_TRUE(recorder->WaitForCount(3, absl::Seconds(10)));
  EXPECT_EQ(recorder->MessagesOn("devices/" + Id("k1") + "/notifications").size(), 1u);
  EXPECT_TRUE(recorder->MessagesOn("devices/" + Id("k2") + "/notifications").empty());
  EXPECT_EQ(recorder->MessagesOn("homes/bob/" + Id("h1") + "/alerts").size(), 1u);
  EXPECT_EQ(recorder->MessagesOn("broadcast/" + Id("all")).size(), 1u);

  // A retained broadcast reaches a subscriber that arrives later, too.
  auto late = Record({"broadcast/" + Id("all")});
  ASSERT_TRUE(late->WaitForCount(1, absl::Seconds(10)));
  EXPECT_TRUE(late->Messages()[0].retained);
}

TEST_F(EndToEndTest, BadNotificationRequestsAreRefusedAndChangeNothing) {
  CreateDevice("v1", "owner");
  // Only this test's device and the raw topics it tries: other tests share the broker.
  auto recorder = Record({"devices/" + Id("v1") + "/#", "x/#"});
  auto list_count = [&] {
    v1::ListNotificationsRequest request;
    request.set_page_size(1000);
    v1::ListNotificationsResponse response;
    grpc::ClientContext context;
    EXPECT_TRUE(notifications_->ListNotifications(&context, request, &response).ok());
    return response.notifications_size();
  };
  const int before = list_count();

  struct Case {
    std::string name;
    v1::SendNotificationRequest request;
    grpc::StatusCode code;
    std::string expected;
  };
  std::vector<Case> cases;
  auto base = [&] { return ToDevices({Id("v1")}, 1); };
  {
    v1::SendNotificationRequest r = base();
    r.clear_target();
    cases.push_back({"no target", r, grpc::StatusCode::INVALID_ARGUMENT, "target"});
  }
  {
    v1::SendNotificationRequest r = base();
    r.mutable_options()->set_qos(3);
    cases.push_back({"qos 3", r, grpc::StatusCode::INVALID_ARGUMENT, "options.qos"});
  }
  {
    v1::SendNotificationRequest r = base();
    r.mutable_content()->clear_title();
    r.mutable_content()->clear_body();
    cases.push_back({"empty content", r, grpc::StatusCode::INVALID_ARGUMENT, "content"});
  }
  {
    v1::SendNotificationRequest r = base();
    (*r.mutable_content()->mutable_data())["blob"] = std::string(70000, 'x');
    cases.push_back({"payload too large", r, grpc::StatusCode::INVALID_ARGUMENT, "payload"});
  }
  {
    v1::SendNotificationRequest r = base();
    r.mutable_target()->mutable_device_ids()->add_values("bad/id");
    cases.push_back({"invalid device id", r, grpc::StatusCode::INVALID_ARGUMENT,
                     "target.device_ids[1]"});
  }
  for (const std::string& topic : std::vector<std::string>{"x/+/y", "x/#", "$SYS/x", std::string("x/\0y", 4), ""}) {
    v1::SendNotificationRequest r = base();
    r.mutable_target()->set_topic(topic);
    cases.push_back({"topic " + topic, r, grpc::StatusCode::INVALID_ARGUMENT, "target.topic"});
  }
  {
    v1::SendNotificationRequest r = ToDevices({Id("nobody"), Id("nothing")}, 1);
    cases.push_back({"unknown devices", r, grpc::StatusCode::NOT_FOUND, "target.device_ids"});
  }
  {
    v1::SendNotificationRequest r = base();
    r.mutable_target()->mutable_device_ids()->clear_values();
    cases.push_back({"empty id list", r, grpc::StatusCode::INVALID_ARGUMENT,
                     "target.device_ids"});
  }
  for (const Case& c : cases) {
    v1::SendNotificationResponse response;
    grpc::Status status = Send(c.request, &response);
    EXPECT_EQ(status.error_code(), c.code) << c.name << ": " << status.error_message();
    EXPECT_TRUE(absl::StrContains(status.error_message(), c.expected))
        << c.name << ": " << status.error_message();
  }
  {  // A page token that was never issued.
    v1::GetNotificationRequest request;
    request.set_notification_id("00000000-0000-4000-8000-000000000000");
    v1::Notification notification;
    grpc::ClientContext context;
    EXPECT_EQ(notifications_->GetNotification(&context, request, &notification).error_code(),
              grpc::StatusCode::NOT_FOUND);
    v1::ListNotificationsRequest list;
    list.set_page_token("Zm9yZ2Vk");
    v1::ListNotificationsResponse listed;
    grpc::ClientContext list_context;
    grpc::Status status = notifications_->ListNotifications(&list_context, list, &listed);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_TRUE(absl::StrContains(status.error_message(), "page_token"));
  }
  EXPECT_EQ(list_count(), before);
  // Nothing reached the broker: a good notification sent now is the first message.
  v1::SendNotificationResponse response;
  ASSERT_TRUE(Send(base(), &response).ok());
  ASSERT_TRUE(recorder->WaitForCount(1, absl::Seconds(10)));
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_EQ(recorder->Count(), 1u);
}

TEST_F(EndToEndTest, IdempotencyKeyReturnsTheFirstResultAndSendsOnce) {
  CreateDevice("i1", "owner");
  auto recorder = Record({"devices/" + Id("i1") + "/notifications"});
  v1::SendNotificationRequest request = ToDevices({Id("i1")}, 1);
  request.mutable_options()->set_idempotency_key(Id("key"));
  v1::SendNotificationResponse first;
  v1::SendNotificationResponse second;
  ASSERT_TRUE(Send(request, &first).ok());
  ASSERT_TRUE(Send(request, &second).ok());
  EXPECT_FALSE(first.duplicate());
  EXPECT_TRUE(second.duplicate());
  EXPECT_EQ(first.notification_id(), second.notification_id());
  EXPECT_EQ(WaitSettled(first.notification_id()).state(), v1::DELIVERED);
  ASSERT_TRUE(recorder->WaitForCount(1, absl::Seconds(10)));
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_EQ(recorder->Count(), 1u);

  request.mutable_content()->set_title("Something else");
  v1::SendNotificationResponse third;
  grpc::Status status = Send(request, &third);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_TRUE(absl::StrContains(status.error_message(), "idempotency_key"))
      << status.error_message();
}

TEST_F(EndToEndTest, ValidateOnlyResolvesButSendsNothing) {
  CreateDevice("p1", "owner");
  auto recorder = Record({"devices/" + Id("p1") + "/notifications"});
  v1::SendNotificationRequest request = ToDevices({Id("p1")}, 1);
  request.set_validate_only(true);
  v1::SendNotificationResponse response;
  ASSERT_TRUE(Send(request, &response).ok());
  EXPECT_EQ(response.target_count(), 1);
  ASSERT_EQ(response.targets_size(), 1);
  EXPECT_EQ(response.targets(0).topic(), "devices/" + Id("p1") + "/notifications");
  EXPECT_TRUE(response.notification_id().empty());
  absl::SleepFor(absl::Milliseconds(500));
  EXPECT_EQ(recorder->Count(), 0u);
}

TEST_F(EndToEndTest, ScheduledNotificationCanBeCancelledBeforeItIsSent) {
  CreateDevice("c1", "owner");
  v1::SendNotificationRequest request = ToDevices({Id("c1")}, 1);
  request.mutable_options()->mutable_send_time()->set_seconds(absl::ToUnixSeconds(absl::Now()) +
                                                              3600);
  v1::SendNotificationResponse response;
  ASSERT_TRUE(Send(request, &response).ok());
  EXPECT_EQ(response.state(), v1::SCHEDULED);
  v1::CancelNotificationRequest cancel;
  cancel.set_notification_id(response.notification_id());
  v1::Notification cancelled;
  grpc::ClientContext context;
  ASSERT_TRUE(notifications_->CancelNotification(&context, cancel, &cancelled).ok());
  EXPECT_EQ(cancelled.state(), v1::CANCELLED);
}

TEST_F(EndToEndTest, BatchEntriesSucceedOrFailIndependently) {
  CreateDevice("b1", "owner");
  v1::SendNotificationsRequest batch;
  *batch.add_requests() = ToDevices({Id("b1")}, 1);
  *batch.add_requests() = ToDevices({Id("b1")}, 7);
  *batch.add_requests() = ToDevices({Id("b1")}, 2);
  v1::SendNotificationsResponse response;
  grpc::ClientContext context;
  ASSERT_TRUE(notifications_->SendNotifications(&context, batch, &response).ok());
  ASSERT_EQ(response.results_size(), 3);
  EXPECT_EQ(response.results(0).code(), 0);
  EXPECT_EQ(response.results(1).code(), static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
  EXPECT_TRUE(absl::StrContains(response.results(1).message(), "options.qos"));
  EXPECT_EQ(response.results(2).code(), 0);
  EXPECT_EQ(WaitSettled(response.results(2).response().notification_id()).state(), v1::DELIVERED);
}

TEST_F(EndToEndTest, StatsAndMetricsShowWhatHappened) {
  auto get_stats = [&] {
    v1::GetStatsResponse stats;
    grpc::ClientContext context;
    EXPECT_TRUE(stats_->GetStats(&context, v1::GetStatsRequest(), &stats).ok());
    return stats;
  };
  const v1::GetStatsResponse before = get_stats();
  CreateDevice("m1", "owner");
  CreateDevice("m2", "owner");
  v1::SendNotificationResponse response;
  ASSERT_TRUE(Send(ToDevices({Id("m1"), Id("m2")}, 2), &response).ok());
  EXPECT_EQ(WaitSettled(response.notification_id()).state(), v1::DELIVERED);

  const v1::GetStatsResponse after = get_stats();
  EXPECT_EQ(after.total().sent() - before.total().sent(), 2);
  EXPECT_EQ(after.total().succeeded() - before.total().succeeded(), 2);
  EXPECT_EQ(after.by_qos().at(2).succeeded() - (before.by_qos().contains(2)
                                                    ? before.by_qos().at(2).succeeded()
                                                    : 0),
            2);
  EXPECT_TRUE(after.by_provider().contains("mqtt"));
  EXPECT_TRUE(after.has_last_sent_time());
  EXPECT_GE(after.devices(), 2);
  ASSERT_EQ(after.providers_size(), 1);
  EXPECT_EQ(after.providers(0).provider(), "mqtt");
  EXPECT_EQ(after.providers(0).state(), "connected");
  EXPECT_GE(after.providers(0).connections(), 1);

  absl::StatusOr<std::string> metrics =
      herald::testing::HttpGet(herald_->metrics_port(), "/metrics");
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  for (const char* name :
       {"herald_notifications_accepted_total", "herald_deliveries_total{",
        "herald_delivery_latency_seconds_bucket", "herald_mqtt_connected 1",
        "herald_backlog_deliveries", "herald_db_query_duration_seconds_bucket",
        "grpc_server_started_total{", "grpc_server_handled_total{",
        "grpc_server_handling_seconds_bucket"}) {
    EXPECT_TRUE(absl::StrContains(*metrics, name)) << name;
  }
  EXPECT_TRUE(absl::StrContains(*metrics, "grpc_method=\"SendNotification\""));

  // The exposition passes promtool's linter.
  const std::string path = absl::StrCat(::testing::TempDir(), "/herald-metrics.txt");
  {
    FILE* file = std::fopen(path.c_str(), "w");
    ASSERT_NE(file, nullptr);
    std::fwrite(metrics->data(), 1, metrics->size(), file);
    std::fclose(file);
  }
  const std::string command = absl::StrCat("promtool check metrics < ", path, " 2>&1");
  FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buffer[4096];
  while (size_t n = std::fread(buffer, 1, sizeof(buffer), pipe)) output.append(buffer, n);
  const int code = pclose(pipe);
  EXPECT_EQ(code, 0) << "promtool check metrics failed:\n" << output;
}

}  // namespace
}  // namespace herald
