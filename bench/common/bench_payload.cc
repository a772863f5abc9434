// The benchmark's payload conventions (bench_payload.h).
#include "bench/common/bench_payload.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace herald::bench {

std::string DeviceId(int64_t index) { return absl::StrFormat("dev-%06d", index); }

std::string NotificationTopic(int64_t device_index) {
  return absl::StrCat("devices/", DeviceId(device_index), "/notifications");
}

std::string HeraldLikePayload(const std::string& key, int64_t start_ns) {
  // Same fields and order as Protobuf's JSON printer gives Herald's Struct
  // (map keys sorted); the id stands in for Herald's random UUID.
  return absl::StrCat(R"({"body":")", kBody, R"(","data":{")", kKeyKey, R"(":")", key,
                      R"(",")", kStartKey, R"(":")", start_ns,
                      R"("},"id":"6f1c2a9e-8d3b-4c5e-9f0a-1b2c3d4e5f60",)",
                      R"("priority":"normal","sent_at":"2025-01-01T00:00:00.000Z","title":")",
                      kTitle, R"("})");
}

}  // namespace herald::bench
