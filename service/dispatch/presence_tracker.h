// PresenceTracker: keeps each device's `online` and `last_seen_time` from
// the messages devices publish on their presence topics (usually a retained
// Last Will: {"online": false} when the connection drops, {"online": true}
// once connected), so that GetDevice/ListDevices show them and SendCommand
// can refuse a device known to be offline.
//
// It subscribes to the presence template's filter (a plain subscription,
// not a shared one: MQTT 5 sends no retained messages to shared
// subscriptions, and the retained Last Will is the state of a device that
// went away while Herald was not looking). Each message is mapped to its
// device with TopicPattern (the {device_id} level, plus any {owner_id},
// {platform} or {meta.KEY} levels that the device must match) and parsed
// with ParsePresencePayload. last_seen_time is the time Herald received the
// message (device clocks are not trusted).
//
// Updates are written in batches by a thread of its own, never on the MQTT
// callback: per device only the latest update waits to be written, so a
// burst of retained messages after a reconnect costs one round trip per
// batch. A failed write is retried with backoff. Every replica receives and
// writes every presence message; the store applies an update only if it is
// not older than what it holds, so the replicas agree.
//
//   PresenceTracker presence(device_store, provider, metrics,
//                            {.topic_template = config.presence_topic_template});
//   HERALD_RETURN_IF_ERROR(presence.Start());
//   ...
//   presence.Stop();  // writes what is queued, within a bounded time
//
// Thread-safe.
#ifndef HERALD_SERVICE_DISPATCH_PRESENCE_TRACKER_H_
#define HERALD_SERVICE_DISPATCH_PRESENCE_TRACKER_H_

#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "providers/provider.h"
#include "service/core/device_store.h"
#include "service/core/topic.h"
#include "service/core/topic_pattern.h"
#include "service/core/types.h"
#include "service/dispatch/log_limiter.h"
#include "service/metrics/herald_metrics.h"

namespace herald {

struct PresenceOptions {
  // Whose devices the presence topics name; with `tenant_for_prefix`, the
  // tenant of topics without a prefix.
  std::string tenant_id = kDefaultTenant;
  // Set when tenants other than the default can exist: the tracker also
  // subscribes every tenant's presence topics ("+/<filter>", see
  // service/auth/tenant.h) and asks this function which tenant has the
  // topic's first level as its prefix (kNotFound: none). Called from the
  // writer thread only; answers are cached for tenant_cache_ttl.
  std::function<absl::StatusOr<std::string>(const std::string& prefix)> tenant_for_prefix;
  absl::Duration tenant_cache_ttl = absl::Minutes(1);
  std::string topic_template = kDefaultPresenceTopicTemplate;
  size_t max_queued_devices = 100000;  // devices with an update waiting to be written
  size_t batch_size = 500;             // updates per database round trip
  absl::Duration retry_min = absl::Milliseconds(500);  // after a failed write; doubles
  absl::Duration retry_max = absl::Seconds(30);
  absl::Duration stop_timeout = absl::Seconds(2);  // Stop's last attempt to write the queue
};

class PresenceTracker {
 public:
  // The store, provider and metrics must outlive the tracker.
  PresenceTracker(DeviceStore& devices, Provider& provider, HeraldMetrics& metrics,
                  PresenceOptions options);
  // Stops.
  ~PresenceTracker();

  PresenceTracker(const PresenceTracker&) = delete;
  PresenceTracker& operator=(const PresenceTracker&) = delete;

  // Starts the writer and subscribes (QoS 1). kInvalidArgument for a
  // template without {device_id} or that TopicPattern refuses; the
  // provider's error if it refuses the subscription. Call once.
  absl::Status Start();

  // Stops taking messages, tries once more (up to stop_timeout) to write
  // what is queued, and stops the writer. Idempotent.
  void Stop();

  // The subscription's handler (public for tests). Never blocks.
  void HandleMessage(const IncomingMessage& message);

  // Waits until nothing is queued or being written; false after `timeout`.
  // For tests and shutdown.
  bool AwaitIdle(absl::Duration timeout);

  // The subscription filter, e.g. "devices/+/status/online" (after Start).
  std::string subscription_filter() const;

 private:
  // A presence update waiting to be written, and the topic prefix it came
  // under ("" for the default topic space).
  struct Queued {
    std::string topic_prefix;
    PresenceUpdate update;
  };

  void WriteLoop();
  // Writes `batch`; returns the updates to retry (the database failed).
  std::vector<Queued> WriteBatch(std::vector<Queued> batch);
  // The tenant of a prefix, cached; nullopt: no such tenant.
  absl::StatusOr<std::optional<std::string>> TenantForPrefix(const std::string& prefix);

  DeviceStore& devices_;
  Provider& provider_;
  HeraldMetrics& metrics_;
  const PresenceOptions options_;
  std::optional<TopicPattern> pattern_;  // set by Start, before the subscription
  std::vector<std::string> filters_;     // set by Start
  // The writer thread's cache of TenantForPrefix answers.
  struct CachedTenant {
    std::optional<std::string> tenant_id;
    absl::Time fetched;
  };
  absl::flat_hash_map<std::string, CachedTenant> tenants_;
  // Warnings about malformed messages: at most 20 lines per 10 s.
  LogLimiter device_warnings_{20, absl::Seconds(10)};

  mutable absl::Mutex mu_;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  // The latest update per device (keyed by prefix and device id), waiting to
  // be written.
  absl::flat_hash_map<std::string, Queued> queued_ ABSL_GUARDED_BY(mu_);
  std::thread writer_;
};

}  // namespace herald

#endif  // HERALD_SERVICE_DISPATCH_PRESENCE_TRACKER_H_
