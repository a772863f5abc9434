#include "tests/testing/device_simulator.h"

#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "absl/strings/numbers.h"
#include "mqtt/async_client.h"
#include "tests/testing/tcp_proxy.h"

namespace herald::testing {
namespace {

std::string StringField(const google::protobuf::Struct& object, const std::string& name) {
  const auto it = object.fields().find(name);
  return it == object.fields().end() ? std::string() : it->second.string_value();
}

// The broker's port in "tcp://host:port"; 0 if there is none.
int PortOf(const std::string& uri) {
  const size_t colon = uri.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(uri.substr(colon + 1), &port)) return 0;
  return port;
}

}  // namespace

class DeviceSimulator::Impl {
 public:
  explicit Impl(DeviceSimulatorOptions options)
      : options_(std::move(options)),
        proxy_(std::make_unique<TcpProxy>(PortOf(options_.uri))),
        proxy_started_(proxy_->Start()),
        client_(absl::StrCat("tcp://127.0.0.1:", proxy_->port()), options_.client_id,
                mqtt::create_options(options_.mqtt_version == 5 ? MQTTVERSION_5
                                                                : MQTTVERSION_3_1_1,
                                     1000),
                nullptr) {
    client_.set_message_callback([this](mqtt::const_message_ptr message) {
      try {
        OnCommand(message);
      } catch (const std::exception&) {
        // A failed publish (e.g. while disconnecting) is no reason to crash Paho.
      }
    });
    timer_ = std::thread([this] { TimerLoop(); });
  }

  ~Impl() {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
    }
    timer_.join();
    try {
      if (client_.is_connected()) {
        if (!options_.presence_topic.empty()) {
          // Leave no retained message behind for later tests.
          client_.publish(options_.presence_topic, "", 0, 1, true)->wait_for(std::chrono::seconds(5));
        }
        client_.disconnect()->wait_for(std::chrono::seconds(5));
      }
    } catch (const std::exception&) {
    }
    // No callback may run once the members it uses are being destroyed.
    try {
      client_.disable_callbacks();
    } catch (const std::exception&) {
    }
  }

  absl::Status Connect(absl::Duration timeout) {
    if (!proxy_started_.ok()) return proxy_started_;
    {
      absl::MutexLock lock(&mu_);
      if (proxy_ == nullptr) {
        return absl::FailedPreconditionError(
            "the connection was dropped for good; use a new DeviceSimulator");
      }
    }
    try {
      mqtt::connect_options_builder builder;
      builder.connect_timeout(absl::ToChronoSeconds(timeout)).keep_alive_interval(
          std::chrono::seconds(30));
      if (options_.mqtt_version == 5) {
        builder.mqtt_version(MQTTVERSION_5).clean_start(true);
      } else {
        builder.mqtt_version(MQTTVERSION_3_1_1).clean_session(true);
      }
      if (!options_.presence_topic.empty()) {
        builder.will(mqtt::will_options(options_.presence_topic, options_.offline_payload, 1,
                                        /*retained=*/true));
      }
      client_.connect(builder.finalize())->wait_for(absl::ToChronoMilliseconds(timeout));
      if (!client_.is_connected()) {
        return absl::DeadlineExceededError(
            absl::StrCat("device ", options_.client_id, ": not connected in time"));
      }
      client_.subscribe(options_.command_topic, 1)->wait_for(absl::ToChronoMilliseconds(timeout));
      if (options_.announce_online && !options_.presence_topic.empty()) {
        client_.publish(options_.presence_topic, options_.online_payload, 1, true)
            ->wait_for(absl::ToChronoMilliseconds(timeout));
      }
      return absl::OkStatus();
    } catch (const std::exception& e) {
      return absl::UnavailableError(
          absl::StrCat("device ", options_.client_id, " cannot connect: ", e.what()));
    }
  }

  absl::Status DropConnection() {
    // Closing the proxy cuts the TCP connection without a DISCONNECT, as a
    // power loss would; the broker then publishes the Last Will.
    std::unique_ptr<TcpProxy> proxy;
    {
      absl::MutexLock lock(&mu_);
      proxy = std::move(proxy_);
    }
    if (proxy == nullptr) return absl::FailedPreconditionError("not connected");
    proxy.reset();
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (client_.is_connected() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(10));
    return client_.is_connected() ? absl::DeadlineExceededError("the client did not notice")
                                  : absl::OkStatus();
  }

  absl::Status Disconnect() {
    try {
      client_.disconnect()->wait_for(std::chrono::seconds(5));
      return absl::OkStatus();
    } catch (const std::exception& e) {
      return absl::InternalError(absl::StrCat("disconnect failed: ", e.what()));
    }
  }

  absl::Status PublishPresence(const std::string& payload) {
    try {
      client_.publish(options_.presence_topic, payload, 1, true)->wait_for(std::chrono::seconds(5));
      return absl::OkStatus();
    } catch (const std::exception& e) {
      return absl::InternalError(absl::StrCat("presence publish failed: ", e.what()));
    }
  }

  void set_behavior(DeviceBehavior behavior, absl::Duration delay) {
    absl::MutexLock lock(&mu_);
    behavior_ = behavior;
    delay_ = delay;
  }

  std::vector<ReceivedCommand> commands() const {
    absl::MutexLock lock(&mu_);
    return commands_;
  }

  size_t answers_sent() const {
    absl::MutexLock lock(&mu_);
    return answers_sent_;
  }

  bool AwaitCommands(size_t count, absl::Duration timeout) const {
    absl::MutexLock lock(&mu_);
    const auto enough = [this, count]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return commands_.size() >= count;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
  }

  bool AwaitAnswers(size_t count, absl::Duration timeout) const {
    absl::MutexLock lock(&mu_);
    const auto enough = [this, count]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return answers_sent_ >= count;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
  }

 private:
  struct Answer {
    absl::Time due;
    mqtt::message_ptr message;
  };

  void OnCommand(const mqtt::const_message_ptr& message) {
    ReceivedCommand command;
    command.topic = message->get_topic();
    command.payload = message->get_payload_str();
    command.qos = message->get_qos();
    const mqtt::properties& properties = message->get_properties();
    if (properties.contains(mqtt::property::RESPONSE_TOPIC)) {
      command.response_topic = mqtt::get<std::string>(properties, mqtt::property::RESPONSE_TOPIC);
    }
    if (properties.contains(mqtt::property::CORRELATION_DATA)) {
      command.correlation_data =
          mqtt::get<std::string>(properties, mqtt::property::CORRELATION_DATA);
    }
    for (size_t i = 0; i < properties.count(mqtt::property::USER_PROPERTY); ++i) {
      const auto pair = mqtt::get<mqtt::string_pair>(properties, mqtt::property::USER_PROPERTY, i);
      if (std::get<0>(pair) == "command_id") command.command_id = std::get<1>(pair);
    }
    google::protobuf::Struct payload;
    if (google::protobuf::util::JsonStringToMessage(command.payload, &payload).ok()) {
      command.request_id = StringField(payload, "request_id");
      command.action = StringField(payload, "action");
    }

    DeviceBehavior behavior;
    absl::Duration delay;
    bool repeat;
    {
      absl::MutexLock lock(&mu_);
      commands_.push_back(command);
      behavior = behavior_;
      delay = delay_;
      repeat = !seen_.insert(command.request_id).second;
    }

    const std::string answer = absl::StrCat(R"({"request_id":")", command.request_id,
                                            R"(","status":"success","result":)",
                                            options_.result_json, "}");
    switch (behavior) {
      case DeviceBehavior::kAnswer: Publish(options_.response_topic, answer); break;
      case DeviceBehavior::kAnswerError:
        Publish(options_.response_topic,
                absl::StrCat(R"({"request_id":")", command.request_id,
                             R"(","status":"error","error":"relay stuck"})"));
        break;
      case DeviceBehavior::kAnswerTwice:
        Publish(options_.response_topic, answer);
        Publish(options_.response_topic, answer);
        break;
      case DeviceBehavior::kAnswerGarbage:
        Publish(options_.response_topic, "{this is not json");
        break;
      case DeviceBehavior::kAnswerByCorrelation: {
        mqtt::message_ptr reply = mqtt::make_message(
            command.response_topic.empty() ? options_.response_topic : command.response_topic,
            absl::StrCat(R"({"status":"success","result":)", options_.result_json, "}"), 1,
            false);
        mqtt::properties props;
        props.add(mqtt::property(mqtt::property::CORRELATION_DATA, command.correlation_data));
        reply->set_properties(props);
        PublishMessage(reply);
        break;
      }
      case DeviceBehavior::kAnswerLate: {
        if (repeat) break;  // a retry of a command it is still working on
        absl::MutexLock lock(&mu_);
        scheduled_.push_back(
            {absl::Now() + delay, mqtt::make_message(options_.response_topic, answer, 1, false)});
        break;
      }
      case DeviceBehavior::kSilent: break;
    }
  }

  void Publish(const std::string& topic, const std::string& payload) {
    PublishMessage(mqtt::make_message(topic, payload, 1, false));
  }

  void PublishMessage(const mqtt::message_ptr& message) {
    client_.publish(message);  // never waits: this may be Paho's callback thread
    absl::MutexLock lock(&mu_);
    ++answers_sent_;
  }

  void TimerLoop() {
    absl::MutexLock lock(&mu_);
    while (!stopping_) {
      absl::Time next = absl::InfiniteFuture();
      for (const Answer& answer : scheduled_) next = std::min(next, answer.due);
      const auto wake = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_; };
      if (next > absl::Now()) {
        mu_.AwaitWithDeadline(absl::Condition(&wake),
                              std::min(next, absl::Now() + absl::Milliseconds(20)));
        continue;
      }
      std::vector<mqtt::message_ptr> due;
      for (auto it = scheduled_.begin(); it != scheduled_.end();) {
        if (it->due <= absl::Now()) {
          due.push_back(it->message);
          it = scheduled_.erase(it);
        } else {
          ++it;
        }
      }
      mu_.Unlock();
      for (const mqtt::message_ptr& message : due) {
        try {
          PublishMessage(message);
        } catch (const std::exception&) {
        }
      }
      mu_.Lock();
    }
  }

  const DeviceSimulatorOptions options_;
  std::unique_ptr<TcpProxy> proxy_;  // the device's path to the broker
  const absl::Status proxy_started_;
  mqtt::async_client client_;
  mutable absl::Mutex mu_;
  DeviceBehavior behavior_ ABSL_GUARDED_BY(mu_) = DeviceBehavior::kAnswer;
  absl::Duration delay_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<ReceivedCommand> commands_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<std::string> seen_ ABSL_GUARDED_BY(mu_);
  std::vector<Answer> scheduled_ ABSL_GUARDED_BY(mu_);
  size_t answers_sent_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread timer_;
};

DeviceSimulator::DeviceSimulator(DeviceSimulatorOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}
DeviceSimulator::~DeviceSimulator() = default;

absl::Status DeviceSimulator::Connect(absl::Duration timeout) { return impl_->Connect(timeout); }
void DeviceSimulator::set_behavior(DeviceBehavior behavior, absl::Duration delay) {
  impl_->set_behavior(behavior, delay);
}
absl::Status DeviceSimulator::DropConnection() { return impl_->DropConnection(); }
absl::Status DeviceSimulator::Disconnect() { return impl_->Disconnect(); }
absl::Status DeviceSimulator::PublishPresence(const std::string& payload) {
  return impl_->PublishPresence(payload);
}
std::vector<ReceivedCommand> DeviceSimulator::commands() const { return impl_->commands(); }
size_t DeviceSimulator::answers_sent() const { return impl_->answers_sent(); }
bool DeviceSimulator::AwaitCommands(size_t count, absl::Duration timeout) const {
  return impl_->AwaitCommands(count, timeout);
}
bool DeviceSimulator::AwaitAnswers(size_t count, absl::Duration timeout) const {
  return impl_->AwaitAnswers(count, timeout);
}

}  // namespace herald::testing
