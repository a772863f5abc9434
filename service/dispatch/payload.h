// The bytes Herald publishes for a notification (PRODUCT.md section 2), and
// the fingerprint that tells a retried request from a different one under
// the same idempotency key.
//
//   std::string json = EncodeNotificationPayload(id, request.content, now, expire_time);
//   std::string fingerprint = RequestFingerprint(request);
#ifndef HERALD_SERVICE_DISPATCH_PAYLOAD_H_
#define HERALD_SERVICE_DISPATCH_PAYLOAD_H_

#include <optional>
#include <string>

#include "absl/time/time.h"
#include "service/core/types.h"

namespace herald {

// {"id","title","body","data","priority","sent_at"[,"expires_at"]} as UTF-8
// JSON; times in RFC 3339 UTC.
std::string EncodeNotificationPayload(const std::string& notification_id,
                                      const NotificationContent& content, absl::Time sent_at,
                                      std::optional<absl::Time> expires_at);

// A stable digest of everything in the request that affects what is sent
// (target, content, options; not validate_only). Equal requests give equal
// fingerprints across processes and versions of the same format.
std::string RequestFingerprint(const NotificationRequest& request);

std::string FormatRfc3339(absl::Time time);

}  // namespace herald

#endif  // HERALD_SERVICE_DISPATCH_PAYLOAD_H_
