// Commander: sends a command to one device and waits for its answer
// (CommandService.SendCommand), on the calling gRPC handler thread.
//
// The flow (docs/commands.md has the whole story):
//   1. Validate the request; refuse a device that is unknown (kNotFound),
//      disabled or known offline (kFailedPrecondition, unless
//      send_if_offline), and more than --max_pending_commands waiting calls
//      on this replica (kResourceExhausted: each one holds a handler thread).
//   2. Store the command (CommandStore), then publish
//      {"request_id","action","params","sent_at"} to the device's command
//      topic at the requested QoS; under MQTT 5 with the response topic and
//      correlation data (= request_id) properties.
//   3. Wait up to `timeout` for the answer; without one, back off
//      exponentially (listening all the while) and publish again with the
//      same request_id, up to max_retries times, so that a late answer to an
//      earlier attempt still counts.
//   4. Store the outcome and return the command (status, result, round
//      trip); kDeadlineExceeded naming the attempts if the device never
//      answered, kUnavailable if no attempt ever reached the broker.
//
// Answers arrive on the response subscription (Start): the response
// template's filter, as an MQTT 5 shared subscription "$share/GROUP/..."
// when options.shared_subscription (the broker then gives each answer to
// one replica), else a plain one (every replica sees every answer). An
// answer for a caller on this replica wakes it at once. Under a shared
// subscription, an answer for a command this replica does not wait for is
// handed over through the CommandStore (RecordResponse; the waiting
// replica hears of it from WatchResponses, or finds it when it re-reads its
// row every options.poll_interval). Duplicates, late and unknown answers are
// counted (herald_command_responses_total) and ignored; malformed ones are
// logged with their topic and skipped.
//
//   Commander commander(devices, commands, provider, metrics,
//                       {.command_topic_template = config.command_topic_template, ...});
//   HERALD_RETURN_IF_ERROR(commander.Start());
//   absl::StatusOr<CommandRecord> done = commander.Send(request, {.deadline = rpc_deadline});
//   ...
//   commander.Stop();
//
// Thread safety: thread-safe. Send blocks (up to the request's attempts
// times its timeout plus backoff, or the call's deadline); the message and
// store callbacks never block (database writes happen on the Commander's
// own hand-over thread).
#ifndef HERALD_SERVICE_DISPATCH_COMMANDER_H_
#define HERALD_SERVICE_DISPATCH_COMMANDER_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "providers/provider.h"
#include "service/core/command.h"
#include "service/core/command_store.h"
#include "service/core/device_store.h"
#include "service/core/topic.h"
#include "service/core/topic_pattern.h"
#include "service/dispatch/log_limiter.h"
#include "service/dispatch/retry_policy.h"
#include "service/metrics/herald_metrics.h"

namespace herald {

struct CommanderOptions {
  std::string command_topic_template = kDefaultCommandTopicTemplate;
  std::string response_topic_template = kDefaultResponseTopicTemplate;
  // MQTT 5: subscribe "$share/<share_group>/<filter>" and hand answers for
  // other replicas' commands over through the CommandStore. false (MQTT
  // 3.1.1, which has no shared subscriptions): a plain subscription.
  bool shared_subscription = true;
  std::string share_group = "herald";
  // Also subscribe the response topics of every tenant ("+/<filter>"),
  // whose command and response topics lie under their prefix. Needed only
  // when tenants other than "default" can call (authentication on).
  bool tenant_subscriptions = false;
  // SendCommand calls allowed to wait at once on this replica.
  int max_waiting = 256;
  // Backoff between attempts: initial * 2^(n-1), capped, with jitter.
  absl::Duration backoff_initial = absl::Milliseconds(500);
  absl::Duration backoff_max = absl::Seconds(5);
  // Under a shared subscription, how often a waiting call re-reads its row
  // in case the hand-over notification was lost.
  absl::Duration poll_interval = absl::Seconds(1);
  // How often a waiting call checks whether its caller went away.
  absl::Duration cancel_check_interval = absl::Milliseconds(100);
  size_t max_payload_bytes = 65536;  // the encoded command
  size_t max_handover_queue = 10000;  // answers waiting to be written for other replicas
  // Finished commands remembered to tell duplicate and late answers apart
  // from unknown ones without asking the database.
  size_t remembered_commands = 100000;
  absl::Duration remember_for = absl::Minutes(10);
  // The factor in [0, 1) that spreads backoffs; null draws at random.
  std::function<double()> jitter;
};

// How Send learns that its caller gave up.
struct CallContext {
  absl::Time deadline = absl::InfiniteFuture();  // the RPC's deadline
  std::function<bool()> cancelled;               // e.g. ServerContext::IsCancelled
};

class Commander {
 public:
  // The stores, provider and metrics must outlive the Commander.
  Commander(DeviceStore& devices, CommandStore& commands, Provider& provider,
            HeraldMetrics& metrics, CommanderOptions options);
  // Stops.
  ~Commander();

  Commander(const Commander&) = delete;
  Commander& operator=(const Commander&) = delete;

  // Subscribes to the responses, starts the hand-over thread and (shared
  // subscription only) the store's response feed. kInvalidArgument for a
  // template that cannot be used; the provider's error if it refuses the
  // subscription. Call once.
  absl::Status Start();

  // Wakes every waiting call (it returns kUnavailable) and stops the
  // threads. Idempotent.
  void Stop();

  // Sends `request` and waits for the device. OK with the stored command
  // when the device answered (state kSucceeded or kError: an "error" answer
  // is still an answer). Otherwise:
  //   kInvalidArgument   a malformed request (the field and rule named), or
  //                      a command larger than max_payload_bytes;
  //   kNotFound          no such device;
  //   kFailedPrecondition the device is disabled, known offline (its last
  //                      presence message said so) without send_if_offline,
  //                      or its topics cannot be built from the templates;
  //   kResourceExhausted max_waiting calls are waiting already;
  //   kDeadlineExceeded  no answer after every attempt (the message names
  //                      the command id and the attempts), or the call's
  //                      deadline passed;
  //   kCancelled         the caller went away;
  //   kUnavailable       no attempt reached the broker, the database is
  //                      down, or the Commander is stopping.
  // In the last four cases the command is stored as timed out.
  absl::StatusOr<CommandRecord> Send(const CommandRequest& request, const CallContext& call = {});

  // The response subscription's handler (public for tests). Never blocks.
  void HandleResponseMessage(const IncomingMessage& message);

  // The store's response feed (public for tests): `request_id` was recorded
  // by some replica; "" = re-check every waiting call. Never blocks.
  void HandleResponseRecorded(const std::string& request_id);

  // The subscription filter in use, e.g. "$share/herald/devices/+/responses".
  std::string subscription_filter() const;

  // Calls waiting right now.
  int64_t waiting() const;

 private:
  struct Waiter;
  struct Handover {
    CommandResponse response;
    std::string topic_device_id;  // the device the topic names, or ""
    std::string topic;
  };
  enum class WaitEnd { kAnswered, kTimeUp, kPublishFailed, kCancelled, kDeadline, kStopping };

  // Send after the request was validated and a waiting slot reserved.
  // Sets `outcome` (kCommand*) and `round_trip` for the metrics.
  absl::StatusOr<CommandRecord> SendReserved(const CommandRequest& request,
                                             const CallContext& call, std::string_view* outcome,
                                             std::optional<absl::Duration>* round_trip);
  // Publishes the attempts of the stored command and waits; returns the
  // command as stored at the end.
  absl::StatusOr<CommandRecord> Attempt(const CommandRequest& request,
                                        const CommandRecord& stored,
                                        const std::shared_ptr<Waiter>& waiter,
                                        const CallContext& call, std::string_view* outcome,
                                        std::optional<absl::Duration>* round_trip);
  WaitEnd Wait(Waiter& waiter, absl::Time until, const CallContext& call, bool watch_publish);
  void HandoverLoop();
  void Remember(const std::string& request_id, CommandState state)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  DeviceStore& devices_;
  CommandStore& commands_;
  Provider& provider_;
  HeraldMetrics& metrics_;
  const CommanderOptions options_;
  const RetryPolicy backoff_;
  // Warnings about what devices send (malformed, wrong device): at most 20
  // lines per 10 s, the rest counted in the next line.
  LogLimiter device_warnings_{20, absl::Seconds(10)};
  std::optional<TopicPattern> response_pattern_;  // set by Start
  std::string subscription_filter_;                // set by Start
  std::string tenant_subscription_filter_;         // set by Start; "" if none

  mutable absl::Mutex mu_;  // taken before any Waiter::mu, never while holding one
  absl::CondVar handover_cv_;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int64_t waiting_ ABSL_GUARDED_BY(mu_) = 0;  // reserved slots, Send calls in progress
  absl::flat_hash_map<std::string, std::shared_ptr<Waiter>> waiters_ ABSL_GUARDED_BY(mu_);
  // Finished request ids and their final state, oldest first in the deque.
  absl::flat_hash_map<std::string, CommandState> finished_ ABSL_GUARDED_BY(mu_);
  std::deque<std::pair<absl::Time, std::string>> finished_order_ ABSL_GUARDED_BY(mu_);
  std::deque<Handover> handovers_ ABSL_GUARDED_BY(mu_);
  std::thread handover_thread_;
};

}  // namespace herald

#endif  // HERALD_SERVICE_DISPATCH_COMMANDER_H_
