#include "service/dispatch/notifier.h"

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "service/core/crash_points.h"
#include "service/core/ids.h"
#include "service/core/logging.h"
#include "service/core/status_macros.h"
#include "service/core/topic.h"
#include "service/dispatch/payload.h"

namespace herald {

Notifier::Notifier(DeviceStore& devices, NotificationStore& notifications, HeraldMetrics& metrics,
                   std::function<void()> wake_workers, NotifierOptions options)
    : devices_(devices),
      notifications_(notifications),
      metrics_(metrics),
      wake_workers_(std::move(wake_workers)),
      options_(std::move(options)) {}

absl::StatusOr<std::vector<ResolvedTarget>> Notifier::Resolve(
    const NotificationRequest& request, std::vector<std::string>* unresolved) {
  std::vector<ResolvedTarget> targets;
  if (request.target.kind == TargetKind::kTopic) {
    targets.push_back({.device_id = "", .topic = request.target.values[0]});
    return targets;
  }
  HERALD_ASSIGN_OR_RETURN(std::vector<Device> devices,
                          devices_.ResolveTargets(request.tenant_id, request.target));
  targets.reserve(devices.size());
  absl::flat_hash_set<std::string> resolved_ids;
  for (const Device& device : devices) {
    if (!resolved_ids.insert(device.device_id).second) continue;
    absl::StatusOr<std::string> topic =
        NotificationTopicFor(device, options_.notification_topic_template);
    if (!topic.ok()) {
      LogWarning("device skipped: no topic", {{"device_id", device.device_id},
                                              {"reason", topic.status().message()}});
      unresolved->push_back(device.device_id);
      continue;
    }
    targets.push_back({.device_id = device.device_id, .topic = *std::move(topic)});
  }
  if (request.target.kind == TargetKind::kDeviceIds) {
    absl::flat_hash_set<std::string> reported;
    for (const std::string& id : request.target.values) {
      if (!resolved_ids.contains(id) && reported.insert(id).second) unresolved->push_back(id);
    }
  }
  return targets;
}

absl::StatusOr<SendOutcome> Notifier::Send(const NotificationRequest& request) {
  // The qos label comes from the caller: a value outside 0-2 (refused by
  // validation) is counted as -1, so that invalid requests cannot create
  // one time series per distinct value.
  const int qos = request.options.qos >= 0 && request.options.qos <= 2 ? request.options.qos : -1;
  if (absl::Status valid = ValidateNotificationRequest(request, options_.limits); !valid.ok()) {
    metrics_.NotificationAccepted(qos, "rejected", 0);
    return valid;
  }
  SendOutcome outcome;
  absl::StatusOr<std::vector<ResolvedTarget>> targets =
      Resolve(request, &outcome.unresolved_device_ids);
  if (!targets.ok()) return targets.status();
  if (targets->empty()) {
    metrics_.NotificationAccepted(qos, "rejected", 0);
    return absl::NotFoundError(absl::StrCat(
        "target.", std::string(TargetKindName(request.target.kind)),
        ": nothing resolved to an enabled device with a valid topic (",
        request.target.values.size(), " value(s) given)"));
  }

  const absl::Time now = absl::Now();
  const absl::Time start = request.options.send_time.has_value()
                               ? std::max(now, *request.options.send_time)
                               : now;
  NotificationRecord record;
  record.tenant_id = request.tenant_id;
  record.notification_id = NewUuid();
  record.target = request.target;
  record.content = request.content;
  record.options = request.options;
  if (request.options.ttl.has_value()) record.expire_time = start + *request.options.ttl;
  record.payload =
      EncodeNotificationPayload(record.notification_id, request.content, start, record.expire_time);
  if (record.payload.size() > options_.max_payload_bytes) {
    metrics_.NotificationAccepted(qos, "rejected", 0);
    return absl::InvalidArgumentError(absl::StrCat(
        "content: the encoded payload is ", record.payload.size(), " bytes; the limit is ",
        options_.max_payload_bytes, " (--max_payload_bytes)"));
  }
  record.request_fingerprint = RequestFingerprint(request);
  outcome.target_count = static_cast<int64_t>(targets->size());

  if (request.validate_only) {
    const size_t shown = std::min(targets->size(), options_.max_preview_targets);
    outcome.preview.assign(targets->begin(), targets->begin() + shown);
    record.create_time = now;
    record.counts.pending = outcome.target_count;
    record.state = request.options.send_time.has_value() && *request.options.send_time > now
                       ? NotificationState::kScheduled
                       : NotificationState::kAccepted;
    outcome.notification = std::move(record);
    metrics_.NotificationAccepted(qos, "validated", 0);
    return outcome;
  }

  HERALD_ASSIGN_OR_RETURN(InsertedNotification inserted,
                          notifications_.InsertNotification(record, *targets));
  HERALD_CRASH_POINT("after_commit");
  outcome.duplicate = inserted.duplicate;
  outcome.notification = std::move(inserted.notification);
  outcome.target_count = outcome.notification.counts.Total();
  if (outcome.duplicate) {
    metrics_.NotificationAccepted(qos, "duplicate", 0);
    outcome.unresolved_device_ids.clear();
  } else {
    metrics_.NotificationAccepted(qos, "accepted", outcome.target_count);
    LogDebug("notification accepted",
             {{"notification_id", outcome.notification.notification_id},
              {"targets", absl::StrCat(outcome.target_count)},
              {"qos", absl::StrCat(qos)}});
    if (wake_workers_) wake_workers_();
  }
  return outcome;
}

}  // namespace herald
