#include "service/api/notification_service.h"

#include <algorithm>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "service/api/call_deadline.h"
#include "service/api/convert.h"
#include "service/api/grpc_status.h"

namespace herald::api {
namespace {

constexpr int kDefaultDeliveryPageSize = 100;
constexpr int kDefaultListPageSize = 50;
constexpr int kMaxPageSize = 1000;
// Deliveries a watch follows one by one; beyond this, only the totals.
constexpr int kMaxWatchedDeliveries = 1000;

absl::Status ValidateNotificationId(const std::string& id) {
  if (id.empty()) return absl::InvalidArgumentError("notification_id: is required");
  if (id.size() > 64) {
    return absl::InvalidArgumentError("notification_id: is not a notification id (too long)");
  }
  return absl::OkStatus();
}

absl::Status ValidatePageSize(int page_size, absl::string_view field, int default_size) {
  if (page_size < 0 || page_size > kMaxPageSize) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": must be between 0 and ", kMaxPageSize,
                                                   " (0 means ", default_size, ")"));
  }
  return absl::OkStatus();
}

bool IsSettled(NotificationState state) {
  return state != NotificationState::kScheduled && state != NotificationState::kAccepted &&
         state != NotificationState::kDelivering;
}

}  // namespace

absl::StatusOr<NotificationRequest> NotificationServiceImpl::Convert(
    const Caller& caller, const v1::SendNotificationRequest& request) {
  absl::StatusOr<NotificationRequest> converted =
      NotificationRequestFromProto(request, caller.tenant_id);
  if (converted.ok()) converted->topic_prefix = caller.topic_prefix;
  return converted;
}

void NotificationServiceImpl::FillResponse(const SendOutcome& sent, bool validate_only,
                                           v1::SendNotificationResponse* response) {
  response->set_notification_id(validate_only ? "" : sent.notification.notification_id);
  response->set_target_count(sent.target_count);
  for (const std::string& id : sent.unresolved_device_ids) response->add_unresolved_device_ids(id);
  response->set_state(NotificationStateToProto(sent.notification.state));
  response->set_duplicate(sent.duplicate);
  for (const ResolvedTarget& target : sent.preview) {
    v1::ResolvedTarget* out = response->add_targets();
    out->set_device_id(target.device_id);
    out->set_topic(target.topic);
  }
}

grpc::ServerUnaryReactor* NotificationServiceImpl::SendNotification(
    grpc::CallbackServerContext* context, const v1::SendNotificationRequest* request,
    v1::SendNotificationResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::StatusOr<Caller> caller = guard_.Admit(context, Scope::kNotify);
  if (!caller.ok()) {
    reactor->Finish(ToGrpcStatus(caller.status()));
    return reactor;
  }
  absl::StatusOr<NotificationRequest> converted = Convert(*caller, *request);
  if (!converted.ok()) {
    reactor->Finish(ToGrpcStatus(converted.status()));
    return reactor;
  }
  // `request` and `response` stay valid until Finish.
  const bool validate_only = request->validate_only();
  intake_.Submit(
      *std::move(converted),
      [reactor, response, validate_only](absl::StatusOr<SendOutcome> sent) {
        if (!sent.ok()) {
          reactor->Finish(ToGrpcStatus(sent.status()));
          return;
        }
        FillResponse(*sent, validate_only, response);
        reactor->Finish(grpc::Status::OK);
      },
      DeadlineOf(*context));
  return reactor;
}

grpc::Status NotificationServiceImpl::SendNotifications(
    grpc::ServerContext* context, const v1::SendNotificationsRequest* request,
    v1::SendNotificationsResponse* response) {
  // Each entry is a notification: it costs one unit of the rate limit.
  absl::StatusOr<Caller> caller =
      guard_.Admit(context, Scope::kNotify, std::max(1, request->requests_size()));
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  if (request->requests_size() == 0) {
    return ToGrpcStatus(absl::InvalidArgumentError("requests: must hold at least one request"));
  }
  if (request->requests_size() > options_.max_batch) {
    return ToGrpcStatus(absl::InvalidArgumentError(
        absl::StrCat("requests: at most ", options_.max_batch, " per call (got ",
                     request->requests_size(), "); split the batch")));
  }
  // Entries that convert are sent together (one or two commits for the
  // batch); the others get their conversion error.
  std::vector<NotificationRequest> converted;
  std::vector<int> converted_index;
  std::vector<absl::Status> statuses(request->requests_size());
  for (int i = 0; i < request->requests_size(); ++i) {
    absl::StatusOr<NotificationRequest> entry = Convert(*caller, request->requests(i));
    if (entry.ok()) {
      converted.push_back(*std::move(entry));
      converted_index.push_back(i);
    } else {
      statuses[i] = entry.status();
    }
  }
  std::vector<absl::StatusOr<SendOutcome>> sent = notifier_.SendMany(converted);
  for (int i = 0; i < request->requests_size(); ++i) response->add_results();
  for (size_t k = 0; k < sent.size(); ++k) {
    const int i = converted_index[k];
    if (!sent[k].ok()) {
      statuses[i] = sent[k].status();
      continue;
    }
    FillResponse(*sent[k], request->requests(i).validate_only(),
                 response->mutable_results(i)->mutable_response());
  }
  int unavailable = 0;
  for (int i = 0; i < request->requests_size(); ++i) {
    v1::SendNotificationsResponse::Result* result = response->mutable_results(i);
    result->set_code(static_cast<int32_t>(statuses[i].code()));
    if (!statuses[i].ok()) {
      result->set_message(std::string(statuses[i].message()));
      result->clear_response();
    }
    unavailable += absl::IsUnavailable(statuses[i]) ? 1 : 0;
  }
  // Nothing could be stored: the call as a whole is UNAVAILABLE, so that
  // retry policies see it. (A partial failure is reported per entry.)
  if (unavailable == request->requests_size()) {
    return ToGrpcStatus(absl::UnavailableError(absl::StrCat(
        "requests: none was accepted: ", statuses[0].message())));
  }
  return grpc::Status::OK;
}

grpc::Status NotificationServiceImpl::GetNotification(grpc::ServerContext* context,
                                                      const v1::GetNotificationRequest* request,
                                                      v1::Notification* response) {
  absl::StatusOr<Caller> caller = guard_.Admit(context, Scope::kNotify);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  if (absl::Status valid = ValidateNotificationId(request->notification_id()); !valid.ok()) {
    return ToGrpcStatus(valid);
  }
  if (absl::Status valid = ValidatePageSize(request->delivery_page_size(), "delivery_page_size",
                                            kDefaultDeliveryPageSize);
      !valid.ok()) {
    return ToGrpcStatus(valid);
  }
  const std::string& tenant = caller->tenant_id;
  absl::StatusOr<NotificationRecord> record =
      store_.GetNotification(tenant, request->notification_id());
  if (!record.ok()) return ToGrpcStatus(record.status());
  NotificationToProto(*record, response);
  const int page_size = request->delivery_page_size() == 0 ? kDefaultDeliveryPageSize
                                                           : request->delivery_page_size();
  absl::StatusOr<Page<DeliveryRecord>> deliveries = store_.ListDeliveries(
      tenant, request->notification_id(), page_size, request->delivery_page_token());
  if (!deliveries.ok()) {
    if (absl::IsInvalidArgument(deliveries.status())) {
      return ToGrpcStatus(absl::InvalidArgumentError(
          absl::StrCat("delivery_", deliveries.status().message())));
    }
    return ToGrpcStatus(deliveries.status());
  }
  for (const DeliveryRecord& delivery : deliveries->items) {
    DeliveryToProto(delivery, response->add_deliveries());
  }
  response->set_next_delivery_page_token(deliveries->next_page_token);
  return grpc::Status::OK;
}

grpc::Status NotificationServiceImpl::ListNotifications(
    grpc::ServerContext* context, const v1::ListNotificationsRequest* request,
    v1::ListNotificationsResponse* response) {
  absl::StatusOr<Caller> caller = guard_.Admit(context, Scope::kNotify);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  if (absl::Status valid =
          ValidatePageSize(request->page_size(), "page_size", kDefaultListPageSize);
      !valid.ok()) {
    return ToGrpcStatus(valid);
  }
  const int page_size = request->page_size() == 0 ? kDefaultListPageSize : request->page_size();
  absl::StatusOr<Page<NotificationRecord>> page =
      store_.ListNotifications(caller->tenant_id, page_size, request->page_token());
  if (!page.ok()) return ToGrpcStatus(page.status());
  for (const NotificationRecord& record : page->items) {
    NotificationToProto(record, response->add_notifications());
  }
  response->set_next_page_token(page->next_page_token);
  return grpc::Status::OK;
}

grpc::Status NotificationServiceImpl::WatchNotification(
    grpc::ServerContext* context, const v1::WatchNotificationRequest* request,
    grpc::ServerWriter<v1::NotificationEvent>* writer) {
  absl::StatusOr<Caller> caller = guard_.Admit(context, Scope::kNotify);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  if (absl::Status valid = ValidateNotificationId(request->notification_id()); !valid.ok()) {
    return ToGrpcStatus(valid);
  }
  const std::string& tenant = caller->tenant_id;
  // delivery id -> (state, attempts) as last sent to the client.
  std::map<int64_t, std::pair<DeliveryState, int>> seen;
  bool first = true;
  DeliveryStateCounts last_counts;
  while (!context->IsCancelled()) {
    absl::StatusOr<NotificationRecord> record =
        store_.GetNotification(tenant, request->notification_id());
    if (!record.ok()) return ToGrpcStatus(record.status());
    const bool changed = first || record->counts.pending != last_counts.pending ||
                         record->counts.pending_attempted != last_counts.pending_attempted ||
                         record->counts.Succeeded() != last_counts.Succeeded();
    if (changed) {
      v1::NotificationEvent event;
      NotificationToProto(*record, event.mutable_notification());
      absl::StatusOr<Page<DeliveryRecord>> deliveries = store_.ListDeliveries(
          tenant, request->notification_id(), kMaxWatchedDeliveries, "");
      if (!deliveries.ok()) return ToGrpcStatus(deliveries.status());
      for (const DeliveryRecord& delivery : deliveries->items) {
        auto& last = seen[delivery.delivery_id];
        if (first || last != std::make_pair(delivery.state, delivery.attempts)) {
          DeliveryToProto(delivery, event.add_changed_deliveries());
          last = {delivery.state, delivery.attempts};
        }
      }
      if (!writer->Write(event)) return grpc::Status::OK;  // the client went away
      first = false;
      last_counts = record->counts;
    }
    if (IsSettled(record->state)) return grpc::Status::OK;
    absl::SleepFor(options_.watch_poll_interval);
  }
  return grpc::Status(grpc::StatusCode::CANCELLED, "the client cancelled the watch");
}

grpc::Status NotificationServiceImpl::CancelNotification(
    grpc::ServerContext* context, const v1::CancelNotificationRequest* request,
    v1::Notification* response) {
  absl::StatusOr<Caller> caller = guard_.Admit(context, Scope::kNotify);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  if (absl::Status valid = ValidateNotificationId(request->notification_id()); !valid.ok()) {
    return ToGrpcStatus(valid);
  }
  const std::string& tenant = caller->tenant_id;
  absl::StatusOr<int64_t> cancelled =
      store_.CancelNotification(tenant, request->notification_id());
  if (!cancelled.ok()) return ToGrpcStatus(cancelled.status());
  absl::StatusOr<NotificationRecord> record =
      store_.GetNotification(tenant, request->notification_id());
  if (!record.ok()) return ToGrpcStatus(record.status());
  NotificationToProto(*record, response);
  return grpc::Status::OK;
}

}  // namespace herald::api
