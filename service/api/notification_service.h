// herald.v1.NotificationService: send notifications (one or a batch), read
// their state and per-target deliveries, list, watch and cancel them. The
// sending itself is the Notifier's; this class translates and validates.
// SendNotification is a callback (asynchronous) method: it hands the request
// to the NotificationIntake and returns its thread to gRPC, so that
// concurrent single calls are stored together rather than each blocking a
// thread.
//
//   NotificationServiceImpl notifications(notifier, intake, notification_store, guard,
//                                         {.max_batch = 500});
//   builder.RegisterService(&notifications);
#ifndef HERALD_SERVICE_API_NOTIFICATION_SERVICE_H_
#define HERALD_SERVICE_API_NOTIFICATION_SERVICE_H_

#include "service/api/call_guard.h"
#include "absl/time/time.h"
#include "herald/v1/notification.grpc.pb.h"
#include "service/core/notification_store.h"
#include "service/dispatch/notification_intake.h"
#include "service/dispatch/notifier.h"

namespace herald::api {

struct NotificationServiceOptions {
  int max_batch = 500;  // notifications per SendNotifications call
  absl::Duration watch_poll_interval = absl::Milliseconds(200);
};

// Thread-safe.
class NotificationServiceImpl final
    : public v1::NotificationService::WithCallbackMethod_SendNotification<
          v1::NotificationService::Service> {
 public:
  NotificationServiceImpl(Notifier& notifier, NotificationIntake& intake, NotificationStore& store,
                          CallGuard& guard, NotificationServiceOptions options)
      : notifier_(notifier),
        intake_(intake),
        store_(store),
        guard_(guard),
        options_(options) {}

  grpc::ServerUnaryReactor* SendNotification(grpc::CallbackServerContext* context,
                                             const v1::SendNotificationRequest* request,
                                             v1::SendNotificationResponse* response) override;
  grpc::Status SendNotifications(grpc::ServerContext* context,
                                 const v1::SendNotificationsRequest* request,
                                 v1::SendNotificationsResponse* response) override;
  grpc::Status GetNotification(grpc::ServerContext* context,
                               const v1::GetNotificationRequest* request,
                               v1::Notification* response) override;
  grpc::Status ListNotifications(grpc::ServerContext* context,
                                 const v1::ListNotificationsRequest* request,
                                 v1::ListNotificationsResponse* response) override;
  grpc::Status WatchNotification(grpc::ServerContext* context,
                                 const v1::WatchNotificationRequest* request,
                                 grpc::ServerWriter<v1::NotificationEvent>* writer) override;
  grpc::Status CancelNotification(grpc::ServerContext* context,
                                  const v1::CancelNotificationRequest* request,
                                  v1::Notification* response) override;

 private:
  static absl::StatusOr<NotificationRequest> Convert(const Caller& caller,
                                                     const v1::SendNotificationRequest& request);
  static void FillResponse(const SendOutcome& sent, bool validate_only,
                           v1::SendNotificationResponse* response);

  Notifier& notifier_;
  NotificationIntake& intake_;
  NotificationStore& store_;
  CallGuard& guard_;
  const NotificationServiceOptions options_;
};

}  // namespace herald::api

#endif  // HERALD_SERVICE_API_NOTIFICATION_SERVICE_H_
