// MQTT topic filters, as MqttProvider needs them: validating the filters
// given to Subscribe, matching the topic of an incoming message against them
// to find its handlers, and the cheap checks a topic name must pass before it
// is published (a wildcard in a PUBLISH makes the broker drop the whole
// connection, and with it every publish in flight).
//
// Matching follows MQTT 3.1.1 / 5 section 4.7: '+' matches exactly one level,
// '#' (last level only) matches the parent and any number of levels below,
// and a filter starting with a wildcard does not match topics starting with
// '$'. A shared subscription "$share/GROUP/FILTER" receives the messages of
// FILTER, so it is matched as FILTER.
//
//   if (TopicFilterMatches(StripSharedSubscription("$share/herald/devices/+/responses"),
//                          "devices/s1/responses")) { ... }
//   absl::Status ok = ValidateTopicFilter("devices/+/status/#");
//
// Pure functions: thread-safe.
#ifndef HERALD_PROVIDERS_MQTT_TOPIC_FILTER_H_
#define HERALD_PROVIDERS_MQTT_TOPIC_FILTER_H_

#include <string_view>

#include "absl/status/status.h"

namespace herald {

// OK if `filter` is a valid subscription filter: 1 to 65,535 bytes without
// NUL, '+' and '#' only as whole levels, '#' only last; "$share/GROUP/F" with
// a non-empty GROUP free of wildcards and '/' and a valid F. Otherwise
// kInvalidArgument naming the filter and the rule. UTF-8 validity is left to
// the MQTT client library.
absl::Status ValidateTopicFilter(std::string_view filter);

// FILTER for "$share/GROUP/FILTER"; `filter` unchanged otherwise.
std::string_view StripSharedSubscription(std::string_view filter);

// Whether `topic` (a topic name, no wildcards) matches `filter` (a valid
// filter without the $share prefix).
bool TopicFilterMatches(std::string_view filter, std::string_view topic);

}  // namespace herald

#endif  // HERALD_PROVIDERS_MQTT_TOPIC_FILTER_H_
