#include "tests/fault/fault_harness.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <gtest/gtest.h>

#include <pqxx/pqxx>
#include <sstream>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/random/random.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "herald/v1/device.grpc.pb.h"
#include "herald/v1/notification.grpc.pb.h"
#include "tests/testing/test_servers.h"

namespace herald::testing {
namespace {

// A free loopback port below the kernel's ephemeral range (32768+), so that
// no outgoing connection can take it before a restarted replica binds it.
int FreePort() {
  thread_local absl::BitGen bit_gen;
  for (int attempt = 0; attempt < 200; ++attempt) {
    const int port = absl::Uniform(bit_gen, 20000, 32000);
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(static_cast<uint16_t>(port));
    const bool free = bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
    close(fd);
    if (free) return port;
  }
  return 0;
}

int RunCommand(const std::string& command) {
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::map<std::string, std::string> ReadEnvFile(const std::string& path) {
  std::map<std::string, std::string> values;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    const size_t equals = line.find('=');
    if (equals != std::string::npos) values[line.substr(0, equals)] = line.substr(equals + 1);
  }
  return values;
}

// The request with index `i`: a deterministic mix of target kinds and QoS.
v1::SendNotificationRequest BuildRequest(const std::string& scenario, int i, int devices) {
  v1::SendNotificationRequest request;
  v1::Target* target = request.mutable_target();
  switch (i % 10) {
    case 7:
      target->mutable_owner_ids()->add_values(absl::StrFormat("owner-%03d", (i / 10) % (devices / 10)));
      break;
    case 8:
      target->mutable_groups()->add_values(absl::StrFormat("group-%02d", i % (devices / 100)));
      break;
    case 9:
      for (int k = 0; k < 5; ++k) {
        target->mutable_device_ids()->add_values(
            absl::StrFormat("dev-%04d", (i * 13 + k * 101) % devices));
      }
      break;
    default:
      target->mutable_device_ids()->add_values(absl::StrFormat("dev-%04d", (i * 7) % devices));
  }
  request.mutable_content()->set_title(absl::StrCat("fault ", scenario, " ", i));
  request.mutable_content()->set_body("injected");
  request.mutable_options()->set_qos(1 + i % 2);
  request.mutable_options()->set_idempotency_key(absl::StrCat("k-", i));
  return request;
}

bool Retryable(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::CANCELLED:
    case grpc::StatusCode::UNKNOWN:
    case grpc::StatusCode::INTERNAL:
    case grpc::StatusCode::ABORTED:
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return true;
    default:
      return false;
  }
}

}  // namespace

std::string Figures::ToString(const std::string& scenario) const {
  return absl::StrFormat(
      "fault scenario=%s accepted=%d targets=%d delivered=%d expired=%d failed=%d lost=%d "
      "duplicates=%d (qos2 %d) republished=%d (qos2 %d) unexpected=%d client_retries=%d "
      "seconds=%.1f",
      scenario, accepted, targets, delivered, expired, failed, lost, duplicates, qos2_duplicates,
      republished, qos2_republished, unexpected, client_retries, seconds);
}

FaultHarness::FaultHarness(std::string name, HarnessOptions options)
    : name_(std::move(name)), options_(std::move(options)) {
  const char* tmp = std::getenv("TMPDIR");
  dir_ = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/herald-fault-", name_, "-", getpid());
}

FaultHarness::~FaultHarness() {
  supervising_ = false;
  if (supervisor_.joinable()) supervisor_.join();
  for (int port : std::vector<int>(cut_ports_)) (void)Iptables(false, port);
  recorder_.reset();
  for (auto& replica : replicas_) replica->Kill();
  proxy_.reset();
  (void)Servers("stop");
  RunCommand(absl::StrCat("rm -rf '", dir_, "'"));
}

absl::Status FaultHarness::Servers(const std::string& action) {
  const std::string command =
      absl::StrCat("HERALD_TEST_MQTT_PERSISTENCE=1 HERALD_TEST_PG_DURABLE=1 '", SourceDir(), "/scripts/test-servers.sh' ",
                   action, " '", dir_, "' >>'", dir_, ".servers.log' 2>&1");
  if (RunCommand(command) != 0) {
    return absl::InternalError(absl::StrCat("test-servers.sh ", action, " failed; see ", dir_,
                                            ".servers.log"));
  }
  return absl::OkStatus();
}

absl::Status FaultHarness::Start() {
  if (absl::Status started = Servers("start"); !started.ok()) return started;
  std::map<std::string, std::string> env = ReadEnvFile(dir_ + "/servers.env");
  database_url_ = env["HERALD_TEST_DATABASE_URL"];
  if (!absl::SimpleAtoi(env["HERALD_TEST_MQTT_PORT"], &mqtt_port_) ||
      !absl::SimpleAtoi(env["HERALD_TEST_MQTT_OBSERVER_PORT"], &observer_port_) ||
      !absl::SimpleAtoi(env["HERALD_TEST_PG_PORT"], &pg_port_)) {
    return absl::InternalError("servers.env is incomplete");
  }
  std::string output;
  absl::StatusOr<int> migrated = RunHerald({"migrate", "--database_url=" + database_url_}, &output);
  if (!migrated.ok() || *migrated != 0) {
    return absl::InternalError(absl::StrCat("herald migrate failed: ", output));
  }

  int broker_port = mqtt_port_;
  if (options_.through_proxy) {
    proxy_ = std::make_unique<TcpProxy>(mqtt_port_);
    if (absl::Status started = proxy_->Start(); !started.ok()) return started;
    broker_port = proxy_->port();
  }
  for (int i = 0; i < options_.replicas; ++i) {
    std::vector<std::string> args = {
        "--database_url=" + database_url_,
        absl::StrCat("--mqtt_uri=tcp://127.0.0.1:", broker_port),
        absl::StrCat("--mqtt_client_id=fault-", name_, "-", i),
        absl::StrCat("--grpc_address=127.0.0.1:", FreePort()),
        "--mqtt_keepalive=2s",
        "--mqtt_reconnect_min=200ms",
        "--mqtt_reconnect_max=1s",
        "--delivery_lease=3s",
        "--delivery_poll_interval=100ms",
        "--retry_backoff_initial=200ms",
        "--retry_backoff_max=2s",
        "--max_delivery_attempts=100",
        "--shutdown_grace=10s",
    };
    args.insert(args.end(), options_.extra_flags.begin(), options_.extra_flags.end());
    replicas_.push_back(std::make_unique<HeraldProcess>(args));
    if (absl::Status started = replicas_.back()->Start(); !started.ok()) return started;
    channels_.push_back(
        replicas_.back()->NewChannel());
  }

  recorder_ = std::make_unique<MqttRecorder>(
      absl::StrCat("tcp://127.0.0.1:", observer_port_),
      std::vector<std::string>{"devices/+/notifications"}, 2,
      RecorderOptions{.persistent_session = true,
                      .client_id = absl::StrCat("fault-recorder-", name_, "-", getpid())});
  if (absl::Status connected = recorder_->Connect(); !connected.ok()) return connected;
  return RegisterDevices();
}

absl::Status FaultHarness::RegisterDevices() {
  std::shared_ptr<grpc::Channel> channel = channels_[0];
  std::atomic<int> next{0};
  std::atomic<bool> failed{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      auto stub = v1::DeviceService::NewStub(channel);
      for (int i = next++; i < options_.devices && !failed; i = next++) {
        v1::CreateDeviceRequest request;
        request.mutable_device()->set_device_id(absl::StrFormat("dev-%04d", i));
        request.mutable_device()->set_owner_id(absl::StrFormat("owner-%03d", i / 10));
        request.mutable_device()->add_groups(absl::StrFormat("group-%02d", i / 100));
        v1::Device device;
        grpc::ClientContext context;
        if (!stub->CreateDevice(&context, request, &device).ok()) failed = true;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  return failed ? absl::InternalError("registering devices failed") : absl::OkStatus();
}

void FaultHarness::SendOne(int index, std::atomic<int64_t>* retries) {
  const v1::SendNotificationRequest request = BuildRequest(name_, index, options_.devices);
  const absl::Time deadline = absl::Now() + absl::Seconds(120);
  for (int attempt = 0; absl::Now() < deadline; ++attempt) {
    auto stub =
        v1::NotificationService::NewStub(channels_[(index + attempt) % channels_.size()]);
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    v1::SendNotificationResponse response;
    const grpc::Status status = stub->SendNotification(&context, request, &response);
    if (status.ok()) {
      absl::MutexLock lock(&mu_);
      accepted_[index] = response.notification_id();
      return;
    }
    if (!Retryable(status.error_code())) {
      ADD_FAILURE() << "request " << index << " refused: " << status.error_code() << " "
                    << status.error_message();
      return;
    }
    ++*retries;
    absl::SleepFor(absl::Milliseconds(100));
  }
  ADD_FAILURE() << "request " << index << " never acknowledged";
}

void FaultHarness::RunLoad(const LoadOptions& load, const std::function<void()>& fault) {
  {
    absl::MutexLock lock(&mu_);
    accepted_.assign(load.notifications, "");
  }
  std::atomic<int> next{0};
  std::atomic<int64_t> retries{0};
  const absl::Time start = absl::Now();
  std::vector<std::thread> clients;
  for (int t = 0; t < load.client_threads; ++t) {
    clients.emplace_back([&] {
      for (int i = next++; i < load.notifications; i = next++) {
        absl::SleepFor(start + absl::Seconds(i / load.per_second) - absl::Now());
        SendOne(i, &retries);
      }
    });
  }
  std::thread fault_thread([&] {
    while (next < load.notifications * load.fault_at) absl::SleepFor(absl::Milliseconds(10));
    if (fault) fault();
  });
  for (std::thread& client : clients) client.join();
  fault_thread.join();
  client_retries_ += retries;
}

void FaultHarness::SuperviseReplicas() {
  supervising_ = true;
  supervisor_ = std::thread([this] {
    while (supervising_) {
      for (auto& replica : replicas_) {
        if (!replica->Running()) {
          replica->SetEnv("HERALD_TEST_CRASH_AT", "");
          absl::Status started = replica->Start();
          if (!started.ok()) ADD_FAILURE() << "restarting a replica failed: " << started;
        }
      }
      absl::SleepFor(absl::Milliseconds(100));
    }
  });
}

absl::Status FaultHarness::StopBroker() { return Servers("stop-mqtt"); }
absl::Status FaultHarness::StartBroker() { return Servers("start-mqtt"); }
absl::Status FaultHarness::RestartDatabase() { return Servers("restart-pg"); }

absl::Status FaultHarness::Iptables(bool add, int port) {
  const char* verb = add ? "-I" : "-D";
  for (const char* direction : {"--dport", "--sport"}) {
    const std::string command =
        absl::StrCat("iptables ", verb, " INPUT -i lo -p tcp ", direction, " ", port,
                     " -m comment --comment herald-fault-test -j DROP 2>&1");
    if (RunCommand(command) != 0) {
      return absl::UnavailableError(absl::StrCat("iptables failed: ", command));
    }
  }
  if (add) {
    cut_ports_.push_back(port);
  } else {
    std::erase(cut_ports_, port);
  }
  return absl::OkStatus();
}

absl::Status FaultHarness::CutBroker(bool cut) { return Iptables(cut, mqtt_port_); }
absl::Status FaultHarness::CutDatabase(bool cut) { return Iptables(cut, pg_port_); }

int64_t FaultHarness::ResidentBytes(int i) {
  std::ifstream status(absl::StrCat("/proc/", replicas_[i]->pid(), "/status"));
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) {
      int64_t kib = 0;
      std::istringstream(line.substr(6)) >> kib;
      return kib * 1024;
    }
  }
  return 0;
}

std::vector<std::string> FaultHarness::AcceptedIds() {
  absl::MutexLock lock(&mu_);
  return accepted_;
}

absl::StatusOr<std::vector<std::string>> FaultHarness::SendConcurrently(
    int request_index, const std::vector<int>& replicas) {
  const v1::SendNotificationRequest request = BuildRequest(name_, request_index, options_.devices);
  std::vector<std::string> ids(replicas.size());
  std::vector<grpc::Status> statuses(replicas.size());
  std::vector<std::thread> threads;
  for (size_t k = 0; k < replicas.size(); ++k) {
    threads.emplace_back([&, k] {
      auto stub = v1::NotificationService::NewStub(channels_[replicas[k]]);
      grpc::ClientContext context;
      v1::SendNotificationResponse response;
      statuses[k] = stub->SendNotification(&context, request, &response);
      ids[k] = response.notification_id();
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (const grpc::Status& status : statuses) {
    if (!status.ok()) return absl::InternalError(status.error_message());
  }
  absl::MutexLock lock(&mu_);
  if (static_cast<size_t>(request_index) >= accepted_.size()) accepted_.resize(request_index + 1);
  accepted_[request_index] = ids[0];
  return ids;
}

Figures FaultHarness::Verify(absl::Duration settle_timeout) {
  supervising_ = false;
  if (supervisor_.joinable()) supervisor_.join();
  for (int port : std::vector<int>(cut_ports_)) (void)Iptables(false, port);
  // Someone must deliver what is left: restart replicas that are down.
  for (auto& replica : replicas_) {
    if (!replica->Running()) {
      replica->SetEnv("HERALD_TEST_CRASH_AT", "");
      (void)replica->Start();
    }
  }
  const absl::Time start = absl::Now();
  Figures figures;
  const std::vector<std::string> accepted = AcceptedIds();
  for (const std::string& id : accepted) figures.accepted += id.empty() ? 0 : 1;

  struct Row {
    std::string notification_id;
    std::string topic;
    int qos;
    std::string state;
    int attempts;
  };
  std::vector<Row> rows;
  try {
    // Wait until nothing is pending, on the database's word.
    const absl::Time deadline = absl::Now() + settle_timeout;
    while (true) {
      pqxx::connection connection(database_url_);
      pqxx::nontransaction query(connection);
      const int64_t pending =
          query.exec1("SELECT count(*) FROM deliveries WHERE state = 'pending'")[0].as<int64_t>();
      if (pending == 0) {
        for (const auto& row : query.exec(
                 "SELECT notification_id, topic, qos, state, attempts FROM deliveries")) {
          rows.push_back({row[0].as<std::string>(), row[1].as<std::string>(), row[2].as<int>(),
                          row[3].as<std::string>(), row[4].as<int>()});
        }
        break;
      }
      if (absl::Now() > deadline) {
        std::string logs;
        for (auto& replica : replicas_) {
          const std::string log = replica->ReadLog();
          logs += "--- " + replica->log_path() + " (last 6000 bytes) ---\n" +
                  log.substr(log.size() > 6000 ? log.size() - 6000 : 0);
        }
        ADD_FAILURE() << pending << " deliveries still pending after " << settle_timeout << "\n"
                      << logs;
        break;
      }
      absl::SleepFor(absl::Milliseconds(200));
    }
  } catch (const std::exception& e) {
    ADD_FAILURE() << "reading the outcome from PostgreSQL failed: " << e.what();
  }

  // The subscriber may still be receiving what the broker acknowledged.
  int64_t expected_messages = 0;
  for (const Row& row : rows) expected_messages += row.state == "delivered" ? 1 : 0;
  recorder_->WaitForCount(expected_messages, absl::Seconds(20));
  int64_t last = -1;
  while (static_cast<int64_t>(recorder_->Count()) != last) {  // until it stops growing
    last = recorder_->Count();
    absl::SleepFor(absl::Milliseconds(300));
  }

  absl::flat_hash_map<std::string, int> received;  // notification id + topic -> copies
  for (const RecordedMessage& message : recorder_->Messages()) {
    ++received[message.user_property_notification_id + "|" + message.topic];
  }
  absl::flat_hash_map<std::string, bool> known;
  for (const std::string& id : accepted) {
    if (!id.empty()) known[id] = false;
  }
  for (const Row& row : rows) {
    ++figures.targets;
    if (known.contains(row.notification_id)) known[row.notification_id] = true;
    const auto it = received.find(row.notification_id + "|" + row.topic);
    const int copies = it == received.end() ? 0 : it->second;
    if (row.attempts > 1) {
      ++figures.republished;
      if (row.qos == 2) ++figures.qos2_republished;
    }
    if (row.state == "delivered") {
      ++figures.delivered;
      if (copies == 0) ++figures.lost;
    } else if (row.state == "expired") {
      ++figures.expired;
    } else if (row.state == "failed") {
      ++figures.failed;
    } else {
      ++figures.lost;  // still pending, or a state the suite does not expect
    }
    if (copies > 1) {
      figures.duplicates += copies - 1;
      if (row.qos == 2) figures.qos2_duplicates += copies - 1;
    }
    if (it != received.end()) received.erase(it);
  }
  for (const auto& [id, found] : known) {
    if (!found) ++figures.lost;  // acknowledged, but not in the database at all
  }
  figures.unexpected = static_cast<int64_t>(received.size());
  figures.client_retries = client_retries_;
  figures.seconds = absl::ToDoubleSeconds(absl::Now() - start);
  return figures;
}

}  // namespace herald::testing
