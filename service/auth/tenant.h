// Tenants, the callers acting for them, and their API keys (issue 6).
//
// A tenant owns devices, notifications, commands and statistics (every row
// carries its tenant_id) and a topic prefix: one topic level under which all
// of its MQTT topics live. A tenant with the prefix "acme" publishes to
// "acme/devices/sensor-1/notifications" (the configured template, under the
// prefix), may target raw topics only under "acme/", and its devices answer
// and report presence under "acme/" too. One level, so that a single
// wildcard subscription ("+/devices/+/responses") serves every tenant.
//
// The tenant "default" has the empty prefix: the whole topic space. It is
// the operator's tenant (and the only one when authentication is off), so
// single-tenant deployments keep their topics unchanged.
#ifndef HERALD_SERVICE_AUTH_TENANT_H_
#define HERALD_SERVICE_AUTH_TENANT_H_

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "service/auth/api_key.h"
#include "service/core/topic.h"  // TopicWithinPrefix, TopicUnderPrefix

namespace herald {

// Who a call acts for, as established by its API key (or the default tenant
// with every scope when authentication is off).
struct Caller {
  std::string tenant_id;
  std::string topic_prefix;  // "" = unrestricted
  std::string key_id;        // "" when authentication is off
  ScopeSet scopes;
};

// An API key as stored: never the secret, only its SHA-256.
struct ApiKeyRecord {
  std::string key_id;
  std::string tenant_id;
  std::string topic_prefix;  // the tenant's, joined in when read
  std::string name;          // what the key is for, e.g. "billing-backend"
  ScopeSet scopes;
  std::string secret_sha256;
  absl::Time create_time;
  std::optional<absl::Time> revoke_time;
};

// Tenant ids: 1-64 characters of [a-z0-9_-], starting with a letter or
// digit. kInvalidArgument naming `field`.
absl::Status ValidateTenantId(absl::string_view tenant_id, absl::string_view field);

// Topic prefixes of tenants other than the default: one topic level of 1-64
// characters of [A-Za-z0-9_.-] (no '/', wildcards or '$'). kInvalidArgument
// naming `field`.
absl::Status ValidateTenantTopicPrefix(absl::string_view prefix, absl::string_view field);

}  // namespace herald

#endif  // HERALD_SERVICE_AUTH_TENANT_H_
