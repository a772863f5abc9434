#include "tests/testing/mqtt_recorder.h"

#include <unistd.h>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "mqtt/async_client.h"

namespace herald::testing {

class MqttRecorder::Impl : public mqtt::callback {
 public:
  Impl(std::string uri, std::vector<std::string> filters, int qos, RecorderOptions options)
      : client_(uri,
                options.client_id.empty()
                    ? absl::StrCat("herald-test-recorder-", getpid(), "-",
                                   reinterpret_cast<uintptr_t>(this))
                    : options.client_id,
                mqtt::create_options(MQTTVERSION_5, 100000), nullptr),
        filters_(std::move(filters)),
        qos_(qos),
        options_(std::move(options)) {
    client_.set_callback(*this);
  }

  ~Impl() override {
    try {
      if (client_.is_connected()) client_.disconnect()->wait_for(std::chrono::seconds(5));
    } catch (const std::exception&) {
    }
  }

  absl::Status Connect(absl::Duration timeout) {
    try {
      auto builder = mqtt::connect_options_builder()
                         .mqtt_version(MQTTVERSION_5)
                         .clean_start(!options_.persistent_session)
                         .connect_timeout(absl::ToChronoSeconds(timeout));
      if (options_.persistent_session) {
        builder.properties({{mqtt::property::SESSION_EXPIRY_INTERVAL, 3600}})
            .automatic_reconnect(std::chrono::milliseconds(200), std::chrono::seconds(1));
      }
      client_.connect(builder.finalize())->wait();
      for (const std::string& filter : filters_) {
        client_.subscribe(filter, qos_)->wait();
      }
      return absl::OkStatus();
    } catch (const std::exception& e) {
      return absl::UnavailableError(absl::StrCat("test subscriber cannot connect: ", e.what()));
    }
  }

  void message_arrived(mqtt::const_message_ptr message) override {
    RecordedMessage recorded;
    recorded.topic = message->get_topic();
    recorded.payload = message->to_string();
    recorded.qos = message->get_qos();
    recorded.retained = message->is_retained();
    const mqtt::properties& props = message->get_properties();
    if (props.contains(mqtt::property::CONTENT_TYPE)) {
      recorded.content_type = mqtt::get<std::string>(props, mqtt::property::CONTENT_TYPE);
    }
    if (props.contains(mqtt::property::USER_PROPERTY)) {
      for (size_t i = 0; i < props.count(mqtt::property::USER_PROPERTY); ++i) {
        auto pair = mqtt::get<mqtt::string_pair>(props, mqtt::property::USER_PROPERTY, i);
        if (std::get<0>(pair) == "notification_id") {
          recorded.user_property_notification_id = std::get<1>(pair);
        }
      }
    }
    absl::MutexLock lock(&mu_);
    messages_.push_back(std::move(recorded));
  }

  bool WaitForCount(size_t count, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    const auto enough = [this, count]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return messages_.size() >= count;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
  }

  std::vector<RecordedMessage> Messages() const {
    absl::MutexLock lock(&mu_);
    return messages_;
  }

  void Clear() {
    absl::MutexLock lock(&mu_);
    messages_.clear();
  }

 private:
  mqtt::async_client client_;
  std::vector<std::string> filters_;
  int qos_;
  RecorderOptions options_;
  mutable absl::Mutex mu_;
  std::vector<RecordedMessage> messages_ ABSL_GUARDED_BY(mu_);
};

MqttRecorder::MqttRecorder(std::string uri, std::vector<std::string> topic_filters, int qos,
                           RecorderOptions options)
    : impl_(std::make_unique<Impl>(std::move(uri), std::move(topic_filters), qos,
                                   std::move(options))) {}
MqttRecorder::~MqttRecorder() = default;

absl::Status MqttRecorder::Connect(absl::Duration timeout) { return impl_->Connect(timeout); }
bool MqttRecorder::WaitForCount(size_t count, absl::Duration timeout) {
  return impl_->WaitForCount(count, timeout);
}
std::vector<RecordedMessage> MqttRecorder::Messages() const { return impl_->Messages(); }
std::vector<RecordedMessage> MqttRecorder::MessagesOn(const std::string& topic) const {
  std::vector<RecordedMessage> matching;
  for (RecordedMessage& message : impl_->Messages()) {
    if (message.topic == topic) matching.push_back(std::move(message));
  }
  return matching;
}
size_t MqttRecorder::Count() const { return impl_->Messages().size(); }
void MqttRecorder::Clear() { impl_->Clear(); }

}  // namespace herald::testing
