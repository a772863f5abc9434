#include "service/dispatch/notifier.h"

#include <algorithm>
#include <optional>

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
    const NotificationRequest& request, const DevicesById* prefetched,
    std::vector<std::string>* unresolved) {
  std::vector<ResolvedTarget> targets;
  if (request.target.kind == TargetKind::kTopic) {
    if (!TopicWithinPrefix(request.target.values[0], request.topic_prefix)) {
      return TopicOutsidePrefixError("target.topic", request.target.values[0], request.tenant_id,
                                     request.topic_prefix);
    }
    targets.push_back({.device_id = "", .topic = request.target.values[0]});
    return targets;
  }
  std::vector<Device> devices;
  if (prefetched != nullptr && request.target.kind == TargetKind::kDeviceIds) {
    for (const std::string& id : request.target.values) {
      if (auto it = prefetched->find(id); it != prefetched->end()) devices.push_back(it->second);
    }
    // In device id order, as the store answers.
    std::sort(devices.begin(), devices.end(),
              [](const Device& a, const Device& b) { return a.device_id < b.device_id; });
  } else {
    HERALD_ASSIGN_OR_RETURN(devices, devices_.ResolveTargets(request.tenant_id, request.target));
  }
  targets.reserve(devices.size());
  absl::flat_hash_set<std::string> resolved_ids;
  for (const Device& device : devices) {
    if (!resolved_ids.insert(device.device_id).second) continue;
    absl::StatusOr<std::string> topic =
        NotificationTopicFor(device, options_.notification_topic_template);
    // A tenant's template topics go under its prefix; a topic registered
    // with the device was checked against it then (DeviceService), and is
    // checked again in case the device predates the prefix rule.
    if (topic.ok() && device.topic.empty()) {
      topic = TopicUnderPrefix(request.topic_prefix, *topic);
    } else if (topic.ok() && !TopicWithinPrefix(*topic, request.topic_prefix)) {
      topic = TopicOutsidePrefixError("device.topic", *topic, request.tenant_id,
                                      request.topic_prefix);
    }
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

absl::StatusOr<Notifier::Prepared> Notifier::Prepare(const NotificationRequest& request,
                                                     const DevicesById* prefetched) {
  Prepared prepared;
  // The qos label comes from the caller: a value outside 0-2 (refused by
  // validation) is counted as -1, so that invalid requests cannot create
  // one time series per distinct value.
  prepared.qos =
      request.options.qos >= 0 && request.options.qos <= 2 ? request.options.qos : -1;
  const int qos = prepared.qos;
  if (absl::Status valid = ValidateNotificationRequest(request, options_.limits); !valid.ok()) {
    metrics_.NotificationAccepted(qos, "rejected", 0);
    return valid;
  }
  SendOutcome& outcome = prepared.outcome;
  absl::StatusOr<std::vector<ResolvedTarget>> targets =
      Resolve(request, prefetched, &outcome.unresolved_device_ids);
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
  NotificationRecord& record = prepared.record;
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
  // Only a repeat under the same idempotency key is compared with it.
  if (!request.options.idempotency_key.empty()) {
    record.request_fingerprint = RequestFingerprint(request);
  }
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
    prepared.validated_only = true;
    return prepared;
  }
  prepared.targets = *std::move(targets);
  return prepared;
}

absl::StatusOr<SendOutcome> Notifier::Finish(Prepared& prepared,
                                             absl::StatusOr<InsertedNotification> inserted) {
  if (!inserted.ok()) return inserted.status();
  HERALD_CRASH_POINT("after_commit");
  SendOutcome& outcome = prepared.outcome;
  outcome.duplicate = inserted->duplicate;
  outcome.notification = std::move(inserted->notification);
  outcome.target_count = outcome.notification.counts.Total();
  if (outcome.duplicate) {
    metrics_.NotificationAccepted(prepared.qos, "duplicate", 0);
    outcome.unresolved_device_ids.clear();
  } else {
    metrics_.NotificationAccepted(prepared.qos, "accepted", outcome.target_count);
    LogDebug("notification accepted",
             {{"notification_id", outcome.notification.notification_id},
              {"targets", absl::StrCat(outcome.target_count)},
              {"qos", absl::StrCat(prepared.qos)}});
  }
  return std::move(outcome);
}

std::vector<absl::StatusOr<InsertedNotification>> Notifier::Insert(
    const std::vector<Prepared*>& batch) {
  DeliveryHandoff* const handoff = options_.handoff;
  const absl::Time claim_started = absl::Now();
  std::vector<NotificationToInsert> to_insert;
  to_insert.reserve(batch.size());
  for (Prepared* prepared : batch) {
    const std::optional<absl::Time>& send_time = prepared->record.options.send_time;
    const bool due_now = !send_time.has_value() || *send_time <= claim_started;
    const int64_t claim =
        handoff != nullptr && due_now
            ? handoff->ReserveHandoff(static_cast<int64_t>(prepared->targets.size()))
            : 0;
    to_insert.push_back({.notification = &prepared->record,
                         .targets = &prepared->targets,
                         .claim_count = claim,
                         .claim_lease = claim > 0 ? handoff->HandoffLease() : absl::ZeroDuration()});
  }
  std::vector<absl::StatusOr<InsertedNotification>> inserted =
      notifications_.InsertNotifications(to_insert);
  bool left_in_outbox = false;
  for (size_t k = 0; k < batch.size(); ++k) {
    const Prepared& prepared = *batch[k];
    std::vector<ClaimedDelivery> claimed;
    if (inserted[k].ok() && !inserted[k]->duplicate) {
      const std::vector<int64_t>& ids = inserted[k]->claimed_delivery_ids;
      const size_t count = std::min(ids.size(), prepared.targets.size());
      if (ids.size() <= static_cast<size_t>(to_insert[k].claim_count)) {
        const auto payload = std::make_shared<const std::string>(prepared.record.payload);
        claimed.resize(count);
        for (size_t i = 0; i < count; ++i) {
          ClaimedDelivery& delivery = claimed[i];
          delivery.delivery_id = ids[i];
          delivery.notification_id = prepared.record.notification_id;
          delivery.topic = prepared.targets[i].topic;
          delivery.qos = prepared.record.options.qos;
          delivery.retain = prepared.record.options.retain;
          delivery.payload = payload;
          delivery.attempts = 1;
          delivery.accept_time = inserted[k]->notification.create_time;
          delivery.expire_time = prepared.record.expire_time;
        }
      }
      left_in_outbox |= claimed.size() < prepared.targets.size();
    }
    if (to_insert[k].claim_count > 0) {
      handoff->Handoff(std::move(claimed), to_insert[k].claim_count, claim_started);
    }
  }
  if (left_in_outbox && wake_workers_) wake_workers_();
  return inserted;
}

absl::StatusOr<SendOutcome> Notifier::Send(const NotificationRequest& request) {
  absl::StatusOr<Prepared> prepared = Prepare(request);
  if (!prepared.ok()) return prepared.status();
  if (prepared->validated_only) return std::move(prepared->outcome);
  return Finish(*prepared, std::move(Insert({&*prepared})[0]));
}

std::vector<absl::StatusOr<SendOutcome>> Notifier::SendMany(
    const std::vector<NotificationRequest>& requests) {
  std::vector<absl::StatusOr<Prepared>> prepared;
  prepared.reserve(requests.size());
  std::vector<Prepared*> to_insert;
  std::vector<size_t> inserted_index;  // request index of each to_insert entry
  // The device_ids targets of the batch resolve in one query (all requests
  // of a batch are one tenant's), up to the per-request target limit.
  std::optional<DevicesById> prefetched;
  TargetSelector all_ids{.kind = TargetKind::kDeviceIds, .values = {}};
  for (const NotificationRequest& request : requests) {
    if (request.target.kind == TargetKind::kDeviceIds &&
        request.tenant_id == requests[0].tenant_id &&
        ValidateNotificationRequest(request, options_.limits).ok()) {
      all_ids.values.insert(all_ids.values.end(), request.target.values.begin(),
                            request.target.values.end());
    }
  }
  if (all_ids.values.size() > 1 &&
      all_ids.values.size() <= options_.limits.max_targets_per_request) {
    absl::StatusOr<std::vector<Device>> devices =
        devices_.ResolveTargets(requests[0].tenant_id, all_ids);
    // On failure every request resolves on its own (and reports the error).
    if (devices.ok()) {
      prefetched.emplace();
      for (Device& device : *devices) {
        std::string id = device.device_id;
        prefetched->emplace(std::move(id), std::move(device));
      }
    }
  }
  for (size_t i = 0; i < requests.size(); ++i) {
    // The devices looked up are requests[0]'s tenant's only.
    const bool same_tenant = requests[i].tenant_id == requests[0].tenant_id;
    prepared.push_back(
        Prepare(requests[i], prefetched.has_value() && same_tenant ? &*prefetched : nullptr));
  }
  for (size_t i = 0; i < prepared.size(); ++i) {
    if (prepared[i].ok() && !prepared[i]->validated_only) {
      to_insert.push_back(&*prepared[i]);
      inserted_index.push_back(i);
    }
  }
  std::vector<absl::StatusOr<InsertedNotification>> inserted = Insert(to_insert);
  std::vector<absl::StatusOr<SendOutcome>> outcomes(requests.size(),
                                                    absl::InternalError("not sent"));
  for (size_t k = 0; k < inserted_index.size(); ++k) {
    const size_t i = inserted_index[k];
    outcomes[i] = Finish(*prepared[i], std::move(inserted[k]));
  }
  for (size_t i = 0; i < prepared.size(); ++i) {
    if (!prepared[i].ok()) {
      outcomes[i] = prepared[i].status();
    } else if (prepared[i]->validated_only) {
      outcomes[i] = std::move(prepared[i]->outcome);
    }
  }
  return outcomes;
}

}  // namespace herald
