#include "service/dispatch/commander.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "service/core/ids.h"
#include "service/core/logging.h"
#include "service/dispatch/command_payload.h"
#include "service/dispatch/payload.h"

namespace herald {
namespace {

// Added to the longest a command can take when computing its expire time:
// the final database writes happen after the last wait.
constexpr absl::Duration kExpireSlack = absl::Seconds(5);

std::string Quoted(const std::string& text) { return absl::StrCat("\"", text, "\""); }

std::string Plural(int n, const char* word) {
  return absl::StrCat(n, " ", word, n == 1 ? "" : "s");
}

// The longest the attempts of `request` can take: every timeout and the
// backoffs between them, at their largest (no jitter shortens them).
absl::Duration LongestWait(const CommandRequest& request, const CommanderOptions& options) {
  absl::Duration total = request.timeout * (request.max_retries + 1);
  absl::Duration backoff = options.backoff_initial;
  for (int i = 0; i < request.max_retries; ++i) {
    total += std::min(backoff, options.backoff_max);
    backoff *= 2;
  }
  return total;
}

}  // namespace

// One Send call waiting for its device. Shared with the publish callbacks,
// which may run after the call returned.
struct Commander::Waiter {
  Waiter(std::string tenant, std::string prefix, std::string command, std::string request,
         std::string device)
      : tenant_id(std::move(tenant)),
        topic_prefix(std::move(prefix)),
        command_id(std::move(command)),
        request_id(std::move(request)),
        device_id(std::move(device)) {}

  const std::string tenant_id;
  const std::string topic_prefix;  // the tenant's: its answer must come from under it
  const std::string command_id;
  const std::string request_id;
  const std::string device_id;

  absl::Mutex mu;
  absl::CondVar cv;
  std::optional<CommandResponse> response ABSL_GUARDED_BY(mu);
  absl::Time response_time ABSL_GUARDED_BY(mu);
  bool recheck ABSL_GUARDED_BY(mu) = false;  // another replica may have stored the answer
  bool stop ABSL_GUARDED_BY(mu) = false;
  int attempt ABSL_GUARDED_BY(mu) = 0;             // the attempt being waited on
  bool publish_done ABSL_GUARDED_BY(mu) = false;   // its publish was reported
  absl::Status publish_status ABSL_GUARDED_BY(mu);  // ... with this result
  int acknowledged ABSL_GUARDED_BY(mu) = 0;        // publishes the broker accepted
};

Commander::Commander(DeviceStore& devices, CommandStore& commands, Provider& provider,
                     HeraldMetrics& metrics, CommanderOptions options)
    : devices_(devices),
      commands_(commands),
      provider_(provider),
      metrics_(metrics),
      options_(std::move(options)),
      backoff_({.max_attempts = kMaxCommandRetries + 1,
                .initial_backoff = options_.backoff_initial,
                .max_backoff = options_.backoff_max},
               options_.jitter) {}

Commander::~Commander() { Stop(); }

absl::Status Commander::Start() {
  if (absl::Status valid = ValidateTopicTemplate(options_.command_topic_template,
                                                 "--command_topic_template");
      !valid.ok()) {
    return valid;
  }
  absl::StatusOr<TopicPattern> pattern =
      TopicPattern::Compile(options_.response_topic_template, "--response_topic_template");
  if (!pattern.ok()) return pattern.status();
  if (options_.shared_subscription &&
      (options_.share_group.empty() ||
       options_.share_group.find_first_of("/+#") != std::string::npos)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "share group ", Quoted(options_.share_group),
        ": must be a non-empty topic level without '/', '+' or '#'"));
  }
  {
    absl::MutexLock lock(&mu_);
    if (started_ || stopping_) {
      return absl::FailedPreconditionError("the Commander was started or stopped before");
    }
    started_ = true;
    response_pattern_ = *std::move(pattern);
    const std::string share =
        options_.shared_subscription ? absl::StrCat("$share/", options_.share_group, "/") : "";
    subscription_filter_ = absl::StrCat(share, response_pattern_->filter());
    if (options_.tenant_subscriptions) {
      tenant_subscription_filter_ = absl::StrCat(share, AnyTenantFilter(*response_pattern_));
    }
  }
  handover_thread_ = std::thread([this] { HandoverLoop(); });
  if (options_.shared_subscription) {
    if (absl::Status watching = commands_.WatchResponses(
            [this](const std::string& request_id) { HandleResponseRecorded(request_id); });
        !watching.ok()) {
      return watching;
    }
  }
  // QoS 1: an answer must not be lost between the broker and Herald.
  for (const std::string& filter : {subscription_filter_, tenant_subscription_filter_}) {
    if (filter.empty()) continue;
    if (absl::Status subscribed = provider_.Subscribe(
            filter, 1, [this](const IncomingMessage& message) { HandleResponseMessage(message); });
        !subscribed.ok()) {
      return subscribed;
    }
  }
  LogInfo("command responses subscribed",
          {{"filter", subscription_filter_},
           {"tenant_filter", tenant_subscription_filter_.empty() ? "-"
                                                                 : tenant_subscription_filter_},
           {"hand_over", options_.shared_subscription ? "database" : "none (every replica "
                                                                      "receives every response)"}});
  return absl::OkStatus();
}

void Commander::Stop() {
  std::vector<std::shared_ptr<Waiter>> waiters;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
    for (const auto& [id, waiter] : waiters_) waiters.push_back(waiter);
    handover_cv_.SignalAll();
  }
  for (const std::shared_ptr<Waiter>& waiter : waiters) {
    absl::MutexLock lock(&waiter->mu);
    waiter->stop = true;
    waiter->cv.Signal();
  }
  if (handover_thread_.joinable()) handover_thread_.join();
  commands_.StopWatching();
}

std::string Commander::subscription_filter() const {
  absl::MutexLock lock(&mu_);
  return subscription_filter_;
}

int64_t Commander::waiting() const {
  absl::MutexLock lock(&mu_);
  return waiting_;
}

absl::StatusOr<CommandRecord> Commander::Send(const CommandRequest& request,
                                              const CallContext& call) {
  if (absl::Status valid = ValidateCommandRequest(request); !valid.ok()) {
    metrics_.CommandFinished(kCommandRejected, std::nullopt);
    return valid;
  }
  int64_t waiting = 0;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ || !started_) {
      metrics_.CommandFinished(kCommandUnavailable, std::nullopt);
      return absl::UnavailableError(stopping_ ? "Herald is shutting down; retry on another replica"
                                              : "commands are not ready yet");
    }
    if (waiting_ >= options_.max_waiting) {
      metrics_.CommandFinished(kCommandOverloaded, std::nullopt);
      return absl::ResourceExhaustedError(absl::StrCat(
          "this replica already has ", waiting_,
          " commands waiting for their devices (--max_pending_commands); retry with backoff"));
    }
    waiting = ++waiting_;
  }
  metrics_.SetCommandsWaiting(waiting);
  absl::Cleanup release = [this] {
    int64_t left;
    {
      absl::MutexLock lock(&mu_);
      left = --waiting_;
    }
    metrics_.SetCommandsWaiting(left);
  };
  std::string_view outcome = kCommandRejected;
  std::optional<absl::Duration> round_trip;
  absl::StatusOr<CommandRecord> result = SendReserved(request, call, &outcome, &round_trip);
  metrics_.CommandFinished(outcome, round_trip);
  return result;
}

absl::StatusOr<CommandRecord> Commander::SendReserved(const CommandRequest& request,
                                                      const CallContext& call,
                                                      std::string_view* outcome,
                                                      std::optional<absl::Duration>* round_trip) {
  const absl::Time start = absl::Now();
  absl::StatusOr<Device> device = devices_.GetDevice(request.tenant_id, request.device_id);
  if (!device.ok()) {
    *outcome = absl::IsNotFound(device.status()) ? kCommandRejected : kCommandUnavailable;
    return device.status();
  }
  if (!device->enabled) {
    return absl::FailedPreconditionError(
        absl::StrCat("device_id: device ", Quoted(request.device_id),
                     " is disabled; enable it with UpdateDevice to send it commands"));
  }
  if (!device->online && device->last_seen_time.has_value() && !request.send_if_offline) {
    *outcome = kCommandOffline;
    return absl::FailedPreconditionError(absl::StrCat(
        "device ", Quoted(request.device_id), " is offline (its presence message of ",
        FormatRfc3339(*device->last_seen_time),
        " said so); set send_if_offline to send anyway"));
  }
  absl::StatusOr<std::string> topic = ExpandTopicTemplate(options_.command_topic_template, *device);
  if (!topic.ok()) return topic.status();
  absl::StatusOr<std::string> response_topic =
      ExpandTopicTemplate(options_.response_topic_template, *device);
  if (!response_topic.ok()) return response_topic.status();
  // A tenant's devices live under its topic prefix.
  topic = TopicUnderPrefix(request.topic_prefix, *topic);
  response_topic = TopicUnderPrefix(request.topic_prefix, *response_topic);

  CommandRecord record;
  record.tenant_id = request.tenant_id;
  record.command_id = NewUuid();
  record.request_id = NewUuid();
  record.device_id = request.device_id;
  record.action = request.action;
  record.params = request.params;
  record.qos = request.qos;
  record.topic = *std::move(topic);
  record.response_topic = *std::move(response_topic);
  record.max_attempts = request.max_retries + 1;
  record.attempt_timeout = request.timeout;
  record.expire_time = std::min(start + LongestWait(request, options_), call.deadline) + kExpireSlack;

  const size_t payload_bytes =
      EncodeCommandPayload(record.request_id, request.action, request.params, start).size();
  if (payload_bytes > options_.max_payload_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "params: the encoded command is ", payload_bytes, " bytes; the limit is ",
        options_.max_payload_bytes, " (--max_payload_bytes)"));
  }

  absl::StatusOr<CommandRecord> stored = commands_.InsertCommand(record);
  if (!stored.ok()) {
    *outcome = kCommandUnavailable;
    return stored.status();
  }
  // Registered before the first publish, so that no answer can come too early.
  auto waiter = std::make_shared<Waiter>(stored->tenant_id, request.topic_prefix,
                                         stored->command_id,
                                         stored->request_id, stored->device_id);
  {
    absl::MutexLock lock(&mu_);
    waiters_[stored->request_id] = waiter;
  }
  absl::StatusOr<CommandRecord> result = Attempt(request, *stored, waiter, call, outcome,
                                                 round_trip);
  {
    absl::MutexLock lock(&mu_);
    waiters_.erase(stored->request_id);
    Remember(stored->request_id, result.ok() ? result->state : CommandState::kTimedOut);
  }
  return result;
}

absl::StatusOr<CommandRecord> Commander::Attempt(const CommandRequest& request,
                                                 const CommandRecord& stored,
                                                 const std::shared_ptr<Waiter>& waiter,
                                                 const CallContext& call,
                                                 std::string_view* outcome,
                                                 std::optional<absl::Duration>* round_trip) {
  int attempts = 0;
  absl::Time first_publish = absl::InfiniteFuture();
  std::string last_publish_error;
  WaitEnd end = WaitEnd::kTimeUp;
  for (int attempt = 1; attempt <= stored.max_attempts; ++attempt) {
    if (attempt > 1) {
      // Listening all the while: an answer to an earlier attempt ends it.
      end = Wait(*waiter, absl::Now() + backoff_.BackoffAfter(attempt - 1), call,
                 /*watch_publish=*/false);
      if (end != WaitEnd::kTimeUp) break;
    }
    {
      absl::MutexLock lock(&waiter->mu);
      waiter->attempt = attempt;
      waiter->publish_done = false;
    }
    const absl::Time publish_time = absl::Now();
    if (attempt == 1) first_publish = publish_time;
    OutgoingMessage message;
    message.topic = stored.topic;
    message.payload = EncodeCommandPayload(stored.request_id, stored.action, stored.params,
                                           publish_time);
    message.qos = stored.qos;
    message.response_topic = stored.response_topic;
    message.correlation_data = stored.request_id;
    message.user_properties["command_id"] = stored.command_id;
    provider_.Publish(std::move(message), [waiter, attempt](const PublishResult& result) {
      absl::MutexLock lock(&waiter->mu);
      if (result.status.ok()) ++waiter->acknowledged;
      if (waiter->attempt == attempt) {
        waiter->publish_done = true;
        waiter->publish_status = result.status;
        waiter->cv.Signal();
      }
    });
    attempts = attempt;
    if (absl::Status recorded = commands_.RecordAttempt(stored.tenant_id, stored.command_id,
                                                        attempt);
        !recorded.ok()) {
      LogWarning("command attempt not recorded", {{"command_id", stored.command_id},
                                                  {"attempt", absl::StrCat(attempt)},
                                                  {"error", recorded.message()}});
    }
    end = Wait(*waiter, publish_time + request.timeout, call, /*watch_publish=*/true);
    if (end == WaitEnd::kPublishFailed) {
      absl::MutexLock lock(&waiter->mu);
      last_publish_error = std::string(waiter->publish_status.message());
      LogInfo("command publish failed", {{"command_id", stored.command_id},
                                         {"attempt", absl::StrCat(attempt)},
                                         {"error", last_publish_error}});
      end = WaitEnd::kTimeUp;
      continue;
    }
    if (end != WaitEnd::kTimeUp) break;
  }

  CommandCompletion completion{.tenant_id = stored.tenant_id,
                               .command_id = stored.command_id,
                               .attempts = attempts};
  absl::Status failure;
  int acknowledged = 0;
  {
    absl::MutexLock lock(&waiter->mu);
    acknowledged = waiter->acknowledged;
    if (end == WaitEnd::kAnswered) {
      const CommandResponse& response = *waiter->response;
      completion.state = StateForDeviceStatus(response.status);
      completion.status = response.status;
      completion.result_json = response.result_json;
      completion.error = response.error;
      completion.response_time = waiter->response_time;
      completion.round_trip = std::max(waiter->response_time - first_publish, absl::ZeroDuration());
    }
  }
  const std::string what = absl::StrCat("command ", stored.command_id, " (action ",
                                        Quoted(stored.action), ") to device ",
                                        Quoted(stored.device_id));
  switch (end) {
    case WaitEnd::kAnswered: break;
    case WaitEnd::kCancelled:
      *outcome = kCommandCancelled;
      completion.error = absl::StrCat("the caller cancelled after ", Plural(attempts, "attempt"));
      failure = absl::CancelledError(absl::StrCat(what, ": ", completion.error));
      break;
    case WaitEnd::kDeadline:
      *outcome = kCommandTimedOut;
      completion.error =
          absl::StrCat("the call's deadline passed after ", Plural(attempts, "attempt"));
      failure = absl::DeadlineExceededError(absl::StrCat(what, ": ", completion.error));
      break;
    case WaitEnd::kStopping:
      *outcome = kCommandCancelled;
      completion.error = "Herald shut down before the device answered";
      failure = absl::UnavailableError(absl::StrCat(what, ": ", completion.error));
      break;
    case WaitEnd::kTimeUp:
    case WaitEnd::kPublishFailed:
      if (acknowledged == 0 && !last_publish_error.empty()) {
        *outcome = kCommandUnavailable;
        completion.error = absl::StrCat("not delivered to the broker in ",
                                        Plural(attempts, "attempt"), ": ", last_publish_error);
        failure = absl::UnavailableError(absl::StrCat(what, ": ", completion.error));
      } else {
        *outcome = kCommandTimedOut;
        completion.error = absl::StrCat("no answer after ", Plural(attempts, "attempt"), " of ",
                                        absl::FormatDuration(request.timeout), " each");
        failure = absl::DeadlineExceededError(
            absl::StrCat(what, ": ", completion.error, "; GetCommand(", stored.command_id,
                         ") has its record"));
      }
      break;
  }

  absl::StatusOr<CommandRecord> completed = commands_.CompleteCommand(completion);
  if (!completed.ok()) {
    LogWarning("command outcome not stored", {{"command_id", stored.command_id},
                                              {"error", completed.status().message()}});
    if (end != WaitEnd::kAnswered) return failure;
    // The caller still gets the device's answer it waited for.
    CommandRecord record = stored;
    record.state = completion.state;
    record.status = completion.status;
    record.result_json = completion.result_json;
    record.error = completion.error;
    record.attempts = attempts;
    record.round_trip = completion.round_trip;
    record.response_time = completion.response_time;
    record.complete_time = absl::Now();
    *outcome = record.state == CommandState::kSucceeded ? kCommandSucceeded : kCommandError;
    *round_trip = record.round_trip;
    return record;
  }
  // Another replica may have stored the device's answer just before we gave
  // up: the row decides.
  if (completed->state == CommandState::kSucceeded || completed->state == CommandState::kError) {
    *outcome = completed->state == CommandState::kSucceeded ? kCommandSucceeded : kCommandError;
    *round_trip = completed->round_trip;
    LogDebug("command answered", {{"command_id", completed->command_id},
                                  {"device_id", completed->device_id},
                                  {"status", completed->status},
                                  {"attempts", absl::StrCat(completed->attempts)}});
    return completed;
  }
  LogInfo("command not answered", {{"command_id", stored.command_id},
                                   {"device_id", stored.device_id},
                                   {"attempts", absl::StrCat(attempts)},
                                   {"error", completion.error}});
  return failure;
}

Commander::WaitEnd Commander::Wait(Waiter& waiter, absl::Time until, const CallContext& call,
                                   bool watch_publish) {
  absl::Time next_poll = absl::Now() + options_.poll_interval;
  waiter.mu.Lock();
  while (true) {
    if (waiter.response.has_value()) break;
    if (waiter.stop) {
      waiter.mu.Unlock();
      return WaitEnd::kStopping;
    }
    if (watch_publish && waiter.publish_done && !waiter.publish_status.ok()) {
      waiter.mu.Unlock();
      return WaitEnd::kPublishFailed;
    }
    const absl::Time now = absl::Now();
    if (call.cancelled && call.cancelled()) {
      waiter.mu.Unlock();
      return WaitEnd::kCancelled;
    }
    if (now >= call.deadline) {
      waiter.mu.Unlock();
      return WaitEnd::kDeadline;
    }
    if (now >= until) {
      waiter.mu.Unlock();
      return WaitEnd::kTimeUp;
    }
    if (options_.shared_subscription && (waiter.recheck || now >= next_poll)) {
      // Another replica may have recorded the answer in the row.
      waiter.recheck = false;
      next_poll = now + options_.poll_interval;
      waiter.mu.Unlock();
      absl::StatusOr<CommandRecord> row = commands_.GetCommand(waiter.tenant_id, waiter.command_id);
      waiter.mu.Lock();
      if (row.ok() && !waiter.response.has_value() &&
          (row->state == CommandState::kSucceeded || row->state == CommandState::kError)) {
        waiter.response = CommandResponse{.request_id = row->request_id,
                                          .status = row->status,
                                          .result_json = row->result_json,
                                          .error = row->error};
        waiter.response_time = absl::Now();
      }
      continue;
    }
    absl::Time wake = std::min({until, call.deadline, now + options_.cancel_check_interval});
    if (options_.shared_subscription) wake = std::min(wake, next_poll);
    waiter.cv.WaitWithDeadline(&waiter.mu, wake);
  }
  waiter.mu.Unlock();
  return WaitEnd::kAnswered;
}

void Commander::HandleResponseMessage(const IncomingMessage& message) {
  absl::StatusOr<CommandResponse> response =
      ParseCommandResponse(message.payload, message.correlation_data);
  if (!response.ok()) {
    metrics_.CommandResponseReceived(kResponseMalformed);
    if (int64_t suppressed = 0; device_warnings_.Allow(&suppressed)) {
      LogWarning("malformed command response skipped",
                 {{"topic", message.topic},
                  {"error", response.status().message()},
                  {"bytes", absl::StrCat(message.payload.size())},
                  {"similar_lines_suppressed", absl::StrCat(suppressed)}});
    }
    return;
  }
  std::string topic_device_id;
  std::string topic_prefix;
  std::shared_ptr<Waiter> waiter;
  std::string_view outcome;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ || !response_pattern_.has_value()) return;
    std::optional<TenantTopicMatch> match;
    if (options_.tenant_subscriptions) {
      match = MatchInAnyTenant(*response_pattern_, message.topic);
    } else if (std::optional<TopicMatch> plain = response_pattern_->Match(message.topic)) {
      match = TenantTopicMatch{.topic_prefix = "", .match = *std::move(plain)};
    }
    if (!match.has_value()) {
      outcome = kResponseMalformed;
    } else {
      topic_device_id = match->match.device_id;
      topic_prefix = match->topic_prefix;
      if (const auto it = waiters_.find(response->request_id); it != waiters_.end()) {
        waiter = it->second;
      } else if (const auto done = finished_.find(response->request_id); done != finished_.end()) {
        outcome = done->second == CommandState::kTimedOut ? kResponseLate : kResponseDuplicate;
      } else if (options_.shared_subscription) {
        if (handovers_.size() >= options_.max_handover_queue) {
          outcome = kResponseDropped;
        } else {
          handovers_.push_back(
              {.response = *response, .topic_device_id = topic_device_id, .topic = message.topic});
          handover_cv_.Signal();
          return;  // counted once the database has answered
        }
      } else {
        outcome = kResponseNotWaitingHere;
      }
    }
  }
  if (waiter != nullptr) {
    if ((!topic_device_id.empty() && topic_device_id != waiter->device_id) ||
        topic_prefix != waiter->topic_prefix) {
      outcome = kResponseWrongDevice;
    } else {
      absl::MutexLock lock(&waiter->mu);
      if (waiter->response.has_value()) {
        outcome = kResponseDuplicate;
      } else {
        waiter->response = *std::move(response);
        waiter->response_time = absl::Now();
        waiter->cv.Signal();
        outcome = kResponseMatched;
      }
    }
  }
  metrics_.CommandResponseReceived(outcome);
  int64_t suppressed = 0;
  const bool warn = (outcome == kResponseMalformed || outcome == kResponseWrongDevice ||
                     outcome == kResponseDropped) &&
                    device_warnings_.Allow(&suppressed);
  if (warn && outcome == kResponseMalformed) {
    LogWarning("command response on a topic outside --response_topic_template skipped",
               {{"topic", message.topic},
                {"similar_lines_suppressed", absl::StrCat(suppressed)}});
  } else if (warn && outcome == kResponseWrongDevice) {
    LogWarning("command response from the wrong device ignored",
               {{"topic", message.topic},
                {"request_id", response->request_id},
                {"similar_lines_suppressed", absl::StrCat(suppressed)}});
  } else if (warn && outcome == kResponseDropped) {
    LogWarning("command response dropped: the hand-over queue is full",
               {{"topic", message.topic},
                {"request_id", response->request_id},
                {"similar_lines_suppressed", absl::StrCat(suppressed)}});
  } else if (outcome != kResponseMatched && outcome != kResponseMalformed &&
             outcome != kResponseWrongDevice && outcome != kResponseDropped) {
    LogDebug("command response ignored", {{"topic", message.topic},
                                          {"request_id", response->request_id},
                                          {"outcome", outcome}});
  }
}

void Commander::HandleResponseRecorded(const std::string& request_id) {
  std::vector<std::shared_ptr<Waiter>> waiters;
  {
    absl::MutexLock lock(&mu_);
    if (request_id.empty()) {
      for (const auto& [id, waiter] : waiters_) waiters.push_back(waiter);
    } else if (const auto it = waiters_.find(request_id); it != waiters_.end()) {
      waiters.push_back(it->second);
    }
  }
  for (const std::shared_ptr<Waiter>& waiter : waiters) {
    absl::MutexLock lock(&waiter->mu);
    waiter->recheck = true;
    waiter->cv.Signal();
  }
}

void Commander::HandoverLoop() {
  while (true) {
    Handover handover;
    {
      absl::MutexLock lock(&mu_);
      const auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
        return stopping_ || !handovers_.empty();
      };
      mu_.Await(absl::Condition(&ready));
      if (stopping_) {
        for (size_t i = 0; i < handovers_.size(); ++i) {
          metrics_.CommandResponseReceived(kResponseDropped);
        }
        handovers_.clear();
        return;
      }
      handover = std::move(handovers_.front());
      handovers_.pop_front();
    }
    absl::StatusOr<ResponseDisposition> disposition =
        commands_.RecordResponse(handover.response, handover.topic_device_id);
    std::string_view outcome = kResponseDropped;
    if (disposition.ok()) {
      switch (*disposition) {
        case ResponseDisposition::kRecorded: outcome = kResponseHandedOver; break;
        case ResponseDisposition::kAlreadyAnswered: outcome = kResponseDuplicate; break;
        case ResponseDisposition::kTooLate: outcome = kResponseLate; break;
        case ResponseDisposition::kUnknown: outcome = kResponseUnknown; break;
        case ResponseDisposition::kWrongDevice: outcome = kResponseWrongDevice; break;
      }
    } else {
      LogWarning("command response not handed over", {{"topic", handover.topic},
                                                      {"request_id", handover.response.request_id},
                                                      {"error", disposition.status().message()}});
    }
    metrics_.CommandResponseReceived(outcome);
    if (outcome == kResponseWrongDevice) {
      if (int64_t suppressed = 0; device_warnings_.Allow(&suppressed)) {
        LogWarning("command response from the wrong device ignored",
                   {{"topic", handover.topic},
                    {"request_id", handover.response.request_id},
                    {"similar_lines_suppressed", absl::StrCat(suppressed)}});
      }
    } else if (outcome != kResponseHandedOver && outcome != kResponseDropped) {
      LogDebug("command response ignored", {{"topic", handover.topic},
                                            {"request_id", handover.response.request_id},
                                            {"outcome", outcome}});
    }
  }
}

void Commander::Remember(const std::string& request_id, CommandState state) {
  const absl::Time now = absl::Now();
  finished_[request_id] = state;
  finished_order_.emplace_back(now, request_id);
  while (!finished_order_.empty() &&
         (finished_order_.size() > options_.remembered_commands ||
          finished_order_.front().first < now - options_.remember_for)) {
    finished_.erase(finished_order_.front().second);
    finished_order_.pop_front();
  }
}

}  // namespace herald
