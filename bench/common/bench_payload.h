// What the benchmark puts in a notification, shared by the load generator
// (which sends it through Herald) and the bare publisher (which builds the
// same JSON itself), so both put the same bytes on the wire.
//
// (char arrays rather than string_views: Debian's Abseil has its own
// string_view, which absl::StrCat takes and std::string_view is not.)
//
// Every message carries two entries in its data map (a command: in its
// params): kStartKey, the sender's MonotonicNs() when the RPC (or bare
// publish) started, and kKeyKey, a key unique to the notification within
// the run. The subscriber reads both back from the payload to compute the
// RPC-start-to-receipt latency and to tell duplicates (same topic and key)
// from distinct messages.
//
//   request.mutable_content()->set_title(kTitle);
//   (*request.mutable_content()->mutable_data())[std::string(kStartKey)] = absl::StrCat(now);
#ifndef HERALD_BENCH_COMMON_BENCH_PAYLOAD_H_
#define HERALD_BENCH_COMMON_BENCH_PAYLOAD_H_

#include <cstdint>
#include <string>

namespace herald::bench {

inline constexpr char kStartKey[] = "bench_t";
inline constexpr char kKeyKey[] = "bench_k";

// With Herald's envelope (id, priority, sent_at) and the two bench entries
// these give a payload of about 270 bytes (the subscriber reports the mean
// of what it received, for Herald and the bare publisher alike).
inline constexpr char kTitle[] = "Door opened";
inline constexpr char kBody[] =
    "The front door was opened at 07:42 while the alarm was armed; open the app to review.";

// The devices the registry is seeded with: dev-000000, dev-000001, ...
std::string DeviceId(int64_t index);

// Herald's default notification topic for a device
// (--notification_topic_template "devices/{device_id}/notifications").
std::string NotificationTopic(int64_t device_index);

// The JSON that Herald publishes for a notification with kTitle, kBody and
// the two bench entries (service/dispatch/payload.cc: id, title, body,
// data, priority, sent_at; a 36-character UUID as id), for the bare
// publisher to send the same bytes.
std::string HeraldLikePayload(const std::string& key, int64_t start_ns);

}  // namespace herald::bench

#endif  // HERALD_BENCH_COMMON_BENCH_PAYLOAD_H_
