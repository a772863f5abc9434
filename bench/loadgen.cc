// bench/loadgen: drives Herald's gRPC API from its own process, the way
// backends do, and times every RPC. Asynchronous gRPC: one completion
// queue, --channels channels (each its own TCP connection), at most
// --concurrency RPCs outstanding; either as fast as that allows (closed
// loop) or paced at --rate RPCs per second (open loop, still bounded by
// --concurrency). Every notification carries its RPC's start time and a
// key unique in the run in its data map (bench_payload.h), from which the
// subscriber computes RPC-start-to-receipt latency and finds duplicates.
//
//   loadgen --target=127.0.0.1:50051 --mode=ready          # wait for Herald
//   loadgen --target=... --mode=device --qos=1 --count=20000 --concurrency=64 --out=lg.json
//   loadgen --target=... --mode=batch --batch_size=100 --count=200
//   loadgen --target=... --mode=group --groups=g10k-0,g10k-1 --count=2 --concurrency=1
//   loadgen --target=... --mode=topic --topic=bench/broadcast --count=20000
//   loadgen --target=... --mode=command --count=2000      # needs a fleet answering
//   loadgen --target=... --mode=device --rate=1000 --max_seconds=10
//   loadgen --target=... --mode=health --count=50000      # gRPC's own cost per call
//
// The JSON it writes says how many RPCs succeeded, their latency, and how
// many deliveries Herald accepted (the sum of target_count), which is the
// number of messages the subscriber must receive. An UNIMPLEMENTED answer
// stops the run early and is reported as "unimplemented".
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstdint>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "bench/common/bench_clock.h"
#include "bench/common/bench_payload.h"
#include "bench/common/bench_stats.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "herald/v1/command.grpc.pb.h"
#include "herald/v1/notification.grpc.pb.h"
#include "herald/v1/stats.grpc.pb.h"

ABSL_FLAG(std::string, target, "127.0.0.1:50051", "Herald's gRPC address.");
ABSL_FLAG(std::string, mode, "device",
          "ready (wait until Herald serves and its broker connection is up), device, batch, "
          "group, topic, command, or health (the gRPC health check: what a call costs Herald "
          "when it does no work of its own).");
ABSL_FLAG(int, qos, 1, "QoS of the notifications or commands.");
ABSL_FLAG(int64_t, count, 1000, "RPCs to send (a batch is one RPC).");
ABSL_FLAG(int, concurrency, 64, "RPCs outstanding at most.");
ABSL_FLAG(double, rate, 0, "RPCs per second; 0 = closed loop at --concurrency.");
ABSL_FLAG(double, max_seconds, 0, "Stop sending after this long (0 = no limit); what was sent "
                                  "is still awaited and counted.");
ABSL_FLAG(int, channels, 4, "gRPC channels (TCP connections), used round-robin.");
ABSL_FLAG(int, batch_size, 100, "Notifications per SendNotifications call (mode batch).");
ABSL_FLAG(int64_t, devices, 10000, "Devices dev-000000.. addressed round-robin "
                                   "(modes device, batch, command).");
ABSL_FLAG(std::string, groups, "g10k-0", "Comma-separated groups, one per RPC in turn (mode group).");
ABSL_FLAG(std::string, topic, "bench/broadcast", "Raw topic (mode topic).");
ABSL_FLAG(std::string, run_tag, "r", "Prefix of every bench key; unique per run.");
ABSL_FLAG(double, rpc_timeout_seconds, 120, "Deadline of each RPC.");
ABSL_FLAG(int, command_timeout_ms, 5000, "SendCommand's per-attempt timeout.");
ABSL_FLAG(std::string, out, "-", "Where the JSON results go (- = stdout).");

namespace herald::bench {
namespace {

namespace pb = ::herald::v1;

// Herald's API key, from $HERALD_API_KEY (not a flag: command lines are
// visible to every user); sent with every call when set.
void Authorize(grpc::ClientContext& context) {
  static const char* const key = std::getenv("HERALD_API_KEY");
  if (key != nullptr && *key != '\0') context.AddMetadata("authorization", absl::StrCat("Bearer ", key));
}

// The figures of the run; written by the completion-queue thread only,
// read by the main thread after that thread has ended.
struct Tally {
  std::vector<int64_t> latencies_ns;  // successful RPCs
  int64_t ok = 0;
  int64_t failed = 0;
  int64_t accepted_targets = 0;       // deliveries Herald acknowledged
  int64_t accepted_notifications = 0;
  int64_t entry_errors = 0;           // refused entries of a batch
  std::map<std::string, int64_t> errors;  // "CODE: message" of the first of each code
  std::map<int, std::string> first_error;
  bool unimplemented = false;
};

// One outstanding RPC; the completion queue's tag.
class Call {
 public:
  Call() { Authorize(context); }
  virtual ~Call() = default;
  // Accounts for the finished call.
  virtual void Done(Tally& tally) = 0;

  grpc::ClientContext context;
  grpc::Status status;
  int64_t start_ns = 0;
};

template <typename Response>
class TypedCall : public Call {
 public:
  void Done(Tally& tally) override {
    if (!status.ok()) {
      ++tally.failed;
      const int code = status.error_code();
      ++tally.errors[absl::StrCat(code)];
      tally.first_error.emplace(code, status.error_message());
      if (code == grpc::StatusCode::UNIMPLEMENTED) tally.unimplemented = true;
      return;
    }
    ++tally.ok;
    Account(response, tally);
  }

  Response response;
  std::unique_ptr<grpc::ClientAsyncResponseReader<Response>> reader;

 private:
  static void Account(const pb::SendNotificationResponse& r, Tally& tally) {
    tally.accepted_targets += r.target_count();
    ++tally.accepted_notifications;
  }
  static void Account(const pb::SendNotificationsResponse& r, Tally& tally) {
    for (const auto& result : r.results()) {
      if (result.code() != 0) {
        ++tally.entry_errors;
        tally.first_error.emplace(1000 + result.code(), result.message());
        continue;
      }
      tally.accepted_targets += result.response().target_count();
      ++tally.accepted_notifications;
    }
  }
  static void Account(const grpc::ByteBuffer&, Tally&) {}  // a health check delivers nothing
  static void Account(const pb::Command&, Tally& tally) {
    // Each command is published to its device at least once.
    ++tally.accepted_targets;
    ++tally.accepted_notifications;
  }
};

class LoadGenerator {
 public:
  LoadGenerator() {
    const int channels = std::max(1, absl::GetFlag(FLAGS_channels));
    for (int i = 0; i < channels; ++i) {
      grpc::ChannelArguments args;
      // Separate connections, not one shared subchannel.
      args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
      args.SetInt("herald.bench.channel", i);
      auto channel = grpc::CreateCustomChannel(absl::GetFlag(FLAGS_target),
                                               grpc::InsecureChannelCredentials(), args);
      notifications_.push_back(pb::NotificationService::NewStub(channel));
      commands_.push_back(pb::CommandService::NewStub(channel));
      generic_.push_back(std::make_unique<grpc::GenericStub>(channel));
    }
    groups_ = absl::StrSplit(absl::GetFlag(FLAGS_groups), ',', absl::SkipEmpty());
    if (groups_.empty()) groups_.push_back("g10k-0");
  }

  int Run() {
    const std::string mode = absl::GetFlag(FLAGS_mode);
    if (mode != "device" && mode != "batch" && mode != "group" && mode != "topic" &&
        mode != "command" && mode != "health") {
      std::cerr << "loadgen: unknown --mode " << mode << "\n";
      return 2;
    }
    mode_ = mode;
    const int64_t count = absl::GetFlag(FLAGS_count);
    const double rate = absl::GetFlag(FLAGS_rate);
    const double max_seconds = absl::GetFlag(FLAGS_max_seconds);

    count_ = count;
    const double cpu_at_start = ProcessCpuSeconds();
    started_ns_ = MonotonicNs();
    stop_at_ns_ =
        max_seconds > 0 ? started_ns_ + static_cast<int64_t>(max_seconds * 1e9) : INT64_MAX;
    std::thread reaper([this] { Reap(); });
    if (rate > 0) {
      SendPaced(rate);
    } else {
      // Closed loop: the first --concurrency calls go from here, each later
      // one from the completion-queue thread as a call finishes, so that no
      // thread is woken per call just to send the next (the harness's own
      // CPU is taken from the processes it measures).
      {
        absl::MutexLock lock(&mu_);
        closed_loop_ = true;
      }
      int calls_started = 0;
      while (calls_started < concurrency_ && IssueNext()) ++calls_started;
    }
    int64_t sent = 0;
    int64_t sending_done = 0;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](LoadGenerator* self) ABSL_EXCLUSIVE_LOCKS_REQUIRED(self->mu_) {
            return self->in_flight_ == 0 && (self->sending_over_ || !self->closed_loop_);
          },
          this));
      sent = next_seq_;
      sending_done = last_issue_ns_ > 0 ? last_issue_ns_ : started_ns_;
    }
    const int64_t started = started_ns_;
    const int64_t finished = MonotonicNs();
    cq_.Shutdown();
    reaper.join();
    const double cpu_seconds = ProcessCpuSeconds() - cpu_at_start;

    ResultWriter out;
    out.Set("mode", mode);
    out.Set("qos", static_cast<double>(absl::GetFlag(FLAGS_qos)));
    out.Set("requested", static_cast<double>(count));
    out.Set("sent", static_cast<double>(sent));
    out.Set("ok", static_cast<double>(tally_.ok));
    out.Set("failed", static_cast<double>(tally_.failed));
    out.Set("entry_errors", static_cast<double>(tally_.entry_errors));
    out.Set("accepted_notifications", static_cast<double>(tally_.accepted_notifications));
    out.Set("accepted_targets", static_cast<double>(tally_.accepted_targets));
    out.Set("unimplemented", tally_.unimplemented);
    google::protobuf::Struct errors;
    for (const auto& [code, n] : tally_.errors) {
      (*errors.mutable_fields())[code].set_number_value(static_cast<double>(n));
    }
    out.Set("errors_by_code", errors);
    google::protobuf::Struct first_errors;
    for (const auto& [code, message] : tally_.first_error) {
      (*first_errors.mutable_fields())[absl::StrCat(code)].set_string_value(message);
    }
    out.Set("first_error_by_code", first_errors);
    const double seconds = NsToSeconds(finished - started);
    out.Set("seconds", seconds);
    out.Set("sending_seconds", NsToSeconds(sending_done - started));
    out.Set("rpcs_per_s", seconds > 0 ? static_cast<double>(tally_.ok) / seconds : 0.0);
    out.Set("accepted_notifications_per_s",
            seconds > 0 ? static_cast<double>(tally_.accepted_notifications) / seconds : 0.0);
    out.Set("rpc_latency_ms", LatencySummary(tally_.latencies_ns));
    out.Set("cpu_seconds", cpu_seconds);
    if (absl::Status written = out.WriteTo(absl::GetFlag(FLAGS_out)); !written.ok()) {
      std::cerr << "loadgen: " << written.message() << "\n";
      return 1;
    }
    return 0;
  }

 private:
  void FillContent(pb::NotificationContent& content, const std::string& key, int64_t start) {
    content.set_title(kTitle);
    content.set_body(kBody);
    auto& data = *content.mutable_data();
    data[std::string(kKeyKey)] = key;
    data[std::string(kStartKey)] = absl::StrCat(start);
  }

  void FillNotification(pb::SendNotificationRequest& request, const std::string& mode, int64_t index,
                        const std::string& key, int64_t start) {
    pb::Target& target = *request.mutable_target();
    if (mode == "group") {
      target.mutable_groups()->add_values(groups_[index % groups_.size()]);
    } else if (mode == "topic") {
      target.set_topic(absl::GetFlag(FLAGS_topic));
    } else {
      target.mutable_device_ids()->add_values(DeviceId(index % absl::GetFlag(FLAGS_devices)));
    }
    FillContent(*request.mutable_content(), key, start);
    request.mutable_options()->set_qos(absl::GetFlag(FLAGS_qos));
  }

  void Prepare(Call& call) {
    call.context.set_deadline(std::chrono::system_clock::now() +
                              std::chrono::milliseconds(static_cast<int64_t>(
                                  absl::GetFlag(FLAGS_rpc_timeout_seconds) * 1000)));
    call.start_ns = MonotonicNs();
  }

  void Issue(int64_t seq) {
    const std::string& mode = mode_;
    const size_t channel = static_cast<size_t>(seq) % notifications_.size();
    const std::string tag = absl::GetFlag(FLAGS_run_tag);
    if (mode == "batch") {
      auto* call = new TypedCall<pb::SendNotificationsResponse>();
      Prepare(*call);
      pb::SendNotificationsRequest request;
      const int batch = absl::GetFlag(FLAGS_batch_size);
      for (int j = 0; j < batch; ++j) {
        const int64_t index = seq * batch + j;
        FillNotification(*request.add_requests(), mode, index, absl::StrCat(tag, "-", index),
                         call->start_ns);
      }
      call->reader = notifications_[channel]->AsyncSendNotifications(&call->context, request, &cq_);
      call->reader->Finish(&call->response, &call->status, call);
    } else if (mode == "health") {
      // grpc.health.v1.Health/Check for the server as a whole: an empty
      // HealthCheckRequest serializes to no bytes (one empty slice; a
      // ByteBuffer without any is no message at all).
      auto* call = new TypedCall<grpc::ByteBuffer>();
      Prepare(*call);
      grpc::Slice empty("");
      call->reader = generic_[channel]->PrepareUnaryCall(
          &call->context, "/grpc.health.v1.Health/Check", grpc::ByteBuffer(&empty, 1), &cq_);
      call->reader->StartCall();
      call->reader->Finish(&call->response, &call->status, call);
    } else if (mode == "command") {
      auto* call = new TypedCall<pb::Command>();
      Prepare(*call);
      pb::SendCommandRequest request;
      request.set_device_id(DeviceId(seq % absl::GetFlag(FLAGS_devices)));
      request.set_action("bench");
      (*request.mutable_params())[std::string(kKeyKey)] = absl::StrCat(tag, "-", seq);
      (*request.mutable_params())[std::string(kStartKey)] = absl::StrCat(call->start_ns);
      request.set_qos(absl::GetFlag(FLAGS_qos));
      const int timeout_ms = absl::GetFlag(FLAGS_command_timeout_ms);
      request.mutable_timeout()->set_seconds(timeout_ms / 1000);
      request.mutable_timeout()->set_nanos((timeout_ms % 1000) * 1'000'000);
      request.set_max_retries(1);
      // Seeded devices have never reported presence.
      request.set_send_if_offline(true);
      call->reader = commands_[channel]->AsyncSendCommand(&call->context, request, &cq_);
      call->reader->Finish(&call->response, &call->status, call);
    } else {
      auto* call = new TypedCall<pb::SendNotificationResponse>();
      Prepare(*call);
      pb::SendNotificationRequest request;
      FillNotification(request, mode, seq, absl::StrCat(tag, "-", seq), call->start_ns);
      call->reader = notifications_[channel]->AsyncSendNotification(&call->context, request, &cq_);
      call->reader->Finish(&call->response, &call->status, call);
    }
  }

  // The completion-queue thread: accounts for each finished RPC and frees
  // its slot.
  void Reap() {
    void* tag = nullptr;
    bool ok = false;
    while (cq_.Next(&tag, &ok)) {
      const int64_t now = MonotonicNs();
      std::unique_ptr<Call> call(static_cast<Call*>(tag));
      if (call->status.ok()) tally_.latencies_ns.push_back(now - call->start_ns);
      call->Done(tally_);
      bool closed_loop = false;
      {
        absl::MutexLock lock(&mu_);
        --in_flight_;
        if (tally_.unimplemented) stop_ = true;
        closed_loop = closed_loop_;
      }
      if (closed_loop) IssueNext();
    }
  }

  // Paced (open loop): this thread sends on schedule, never more than
  // --concurrency outstanding.
  void SendPaced(double rate) {
    for (int64_t seq = 0; seq < count_; ++seq) {
      const int64_t due = started_ns_ + static_cast<int64_t>(static_cast<double>(seq) * 1e9 / rate);
      const int64_t wait = due - MonotonicNs();
      if (wait > 0) std::this_thread::sleep_for(std::chrono::nanoseconds(wait));
      {
        absl::MutexLock lock(&mu_);
        mu_.Await(absl::Condition(
            +[](LoadGenerator* self) ABSL_EXCLUSIVE_LOCKS_REQUIRED(self->mu_) {
              return self->in_flight_ < self->concurrency_ || self->stop_;
            },
            this));
      }
      if (!IssueNext()) break;
    }
  }

  // Sends the next call unless the run is over (all sent, --max_seconds
  // passed, or stopped); false when it is.
  bool IssueNext() {
    int64_t seq = 0;
    {
      absl::MutexLock lock(&mu_);
      if (sending_over_) return false;
      if (stop_ || next_seq_ >= count_ || MonotonicNs() > stop_at_ns_) {
        sending_over_ = true;
        return false;
      }
      seq = next_seq_++;
      ++in_flight_;
      last_issue_ns_ = MonotonicNs();
    }
    Issue(seq);
    return true;
  }

  std::vector<std::unique_ptr<pb::NotificationService::Stub>> notifications_;
  std::vector<std::unique_ptr<pb::CommandService::Stub>> commands_;
  std::vector<std::unique_ptr<grpc::GenericStub>> generic_;
  std::vector<std::string> groups_;
  grpc::CompletionQueue cq_;
  Tally tally_;
  absl::Mutex mu_;
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool closed_loop_ ABSL_GUARDED_BY(mu_) = false;
  bool sending_over_ ABSL_GUARDED_BY(mu_) = false;  // no call will be sent any more
  int64_t next_seq_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t last_issue_ns_ ABSL_GUARDED_BY(mu_) = 0;
  std::string mode_;        // set before the first call
  int64_t count_ = 0;       // likewise
  int64_t started_ns_ = 0;  // likewise
  int64_t stop_at_ns_ = 0;  // likewise
  const int concurrency_ = std::max(1, absl::GetFlag(FLAGS_concurrency));
};

// Waits until Herald answers GetStats and reports its broker connection
// up, so that a scenario starts against a ready server.
int WaitReady() {
  const double max_seconds =
      absl::GetFlag(FLAGS_max_seconds) > 0 ? absl::GetFlag(FLAGS_max_seconds) : 60;
  const int64_t deadline = MonotonicNs() + static_cast<int64_t>(max_seconds * 1e9);
  std::string last = "no answer";
  while (MonotonicNs() < deadline) {
    // A fresh channel (and connection) per attempt: one whose first connect
    // was refused while Herald was starting backs off for seconds.
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    auto stub = pb::StatsService::NewStub(grpc::CreateCustomChannel(
        absl::GetFlag(FLAGS_target), grpc::InsecureChannelCredentials(), args));
    grpc::ClientContext context;
    Authorize(context);
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    pb::GetStatsResponse response;
    const grpc::Status status = stub->GetStats(&context, pb::GetStatsRequest(), &response);
    if (status.ok()) {
      bool connected = !response.providers().empty();
      for (const auto& provider : response.providers()) {
        connected = connected && absl::AsciiStrToLower(provider.state()) == "connected";
        last = absl::StrCat("provider ", provider.provider(), " is ", provider.state());
      }
      if (connected) return 0;
    } else {
      last = status.error_message();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::cerr << "loadgen: herald not ready: " << last << "\n";
  return 1;
}

}  // namespace
}  // namespace herald::bench

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("Drives Herald's gRPC API for the benchmark.");
  absl::ParseCommandLine(argc, argv);
  // Debian builds Abseil without NDEBUG, which keeps absl::Mutex's lock
  // order graph on for every acquisition: CPU the harness would take from
  // the processes it measures (service/main.cc does the same).
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  if (absl::GetFlag(FLAGS_mode) == "ready") return herald::bench::WaitReady();
  herald::bench::LoadGenerator generator;
  return generator.Run();
}
