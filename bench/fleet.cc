// bench/fleet: a simulated device fleet for the command scenario. It
// subscribes to every device's command topic and answers each command at
// once on the device's response topic, as a well-behaved device does:
// {"request_id": ..., "status": "ok", "result": {...}}, with the MQTT 5
// correlation data copied from the command, published to the command's
// response topic property (else devices/<id>/responses).
//
//   fleet --uri=tcp://127.0.0.1:PORT --qos=1 --ready_file=fleet.ready --out=fleet.json
//
// Runs until SIGTERM or SIGINT, then writes how many commands it answered.
#include <signal.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "bench/common/bench_payload.h"
#include "bench/common/bench_stats.h"
#include "bench/common/mqtt_connect.h"
#include "bench/common/payload_fields.h"

ABSL_FLAG(std::string, uri, "tcp://127.0.0.1:1883", "Broker the devices connect to.");
ABSL_FLAG(int, qos, 1, "QoS of the command subscription and of the answers.");
ABSL_FLAG(std::string, filter, "devices/+/commands", "Command topic filter.");
ABSL_FLAG(std::string, ready_file, "", "Created once the subscription is acknowledged.");
ABSL_FLAG(std::string, out, "-", "Where the JSON results go (- = stdout).");

namespace herald::bench {
namespace {

std::atomic<bool> g_stop_signal{false};

void OnSignal(int) { g_stop_signal.store(true); }

// "devices/dev-1/commands" -> "devices/dev-1/responses".
std::string DefaultResponseTopic(const std::string& command_topic) {
  const size_t slash = command_topic.rfind('/');
  if (slash == std::string::npos) return command_topic + "/responses";
  return command_topic.substr(0, slash) + "/responses";
}

int Run() {
  const int qos = absl::GetFlag(FLAGS_qos);
  std::atomic<int64_t> answered{0};
  std::atomic<int64_t> malformed{0};
  std::atomic<int64_t> refused{0};
  mqtt::async_client* publisher = nullptr;

  const auto on_command = [&](mqtt::const_message_ptr message) {
    const std::string& payload = message->get_payload_str();
    const std::optional<std::string_view> request_id = FindJsonString(payload, "request_id");
    if (!request_id.has_value()) {
      malformed.fetch_add(1);
      return;
    }
    const mqtt::properties& props = message->get_properties();
    std::string topic = DefaultResponseTopic(message->get_topic());
    if (props.contains(mqtt::property::RESPONSE_TOPIC)) {
      topic = mqtt::get<std::string>(props, mqtt::property::RESPONSE_TOPIC);
    }
    const std::string key(FindJsonString(payload, kKeyKey).value_or(""));
    auto answer = mqtt::make_message(
        topic,
        absl::StrCat(R"({"request_id":")", std::string(*request_id), R"(","status":"ok","result":{"echo":")",
                     key, R"("}})"),
        qos, false);
    if (props.contains(mqtt::property::CORRELATION_DATA)) {
      mqtt::properties answer_props;
      answer_props.add(mqtt::property(
          mqtt::property::CORRELATION_DATA,
          mqtt::get<mqtt::binary>(props, mqtt::property::CORRELATION_DATA)));
      answer->set_properties(answer_props);
    }
    try {
      publisher->publish(answer);
      answered.fetch_add(1);
    } catch (const mqtt::exception&) {
      refused.fetch_add(1);
    }
  };

  absl::StatusOr<std::unique_ptr<mqtt::async_client>> client =
      ConnectMqtt(absl::GetFlag(FLAGS_uri), absl::StrCat("bench-fleet-", getpid()),
                  {.max_in_flight = 1000, .on_message = on_command});
  if (!client.ok()) {
    std::cerr << "fleet: " << client.status().message() << "\n";
    return 1;
  }
  publisher = client->get();
  try {
    (*client)->subscribe(absl::GetFlag(FLAGS_filter), qos)->wait();
  } catch (const mqtt::exception& e) {
    std::cerr << "fleet: cannot subscribe: " << e.what() << "\n";
    return 1;
  }
  const double cpu_at_start = ProcessCpuSeconds();
  if (const std::string ready = absl::GetFlag(FLAGS_ready_file); !ready.empty()) {
    std::ofstream(ready) << "ready\n";
  }
  while (!g_stop_signal.load()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const double cpu_seconds = ProcessCpuSeconds() - cpu_at_start;
  DisconnectMqtt(**client);

  ResultWriter out;
  out.Set("qos", static_cast<double>(qos));
  out.Set("answered", static_cast<double>(answered.load()));
  out.Set("malformed", static_cast<double>(malformed.load()));
  out.Set("refused", static_cast<double>(refused.load()));
  out.Set("cpu_seconds", cpu_seconds);
  if (absl::Status written = out.WriteTo(absl::GetFlag(FLAGS_out)); !written.ok()) {
    std::cerr << "fleet: " << written.message() << "\n";
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace herald::bench

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("A simulated device fleet that answers Herald's commands.");
  absl::ParseCommandLine(argc, argv);
  signal(SIGTERM, herald::bench::OnSignal);
  signal(SIGINT, herald::bench::OnSignal);
  return herald::bench::Run();
}
