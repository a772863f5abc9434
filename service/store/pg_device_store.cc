#include "service/store/pg_device_store.h"

#include <algorithm>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "service/core/json_text.h"
#include "service/core/page_token.h"
#include "service/store/pg_array.h"
#include "service/store/pg_session.h"

namespace herald {
namespace {

constexpr char kDevicesList[] = "devices";

// The prepared statements, built once (the column list is shared).
struct DeviceStatements {
  PgStatement create, get, list, update, remove, resolve_ids, resolve_owners, resolve_groups,
      update_presence;
};

const DeviceStatements& Statements() {
  static const DeviceStatements* const statements = [] {
    const std::string columns = absl::StrCat(
        "tenant_id, device_id, owner_id, platform, topic, groups, ", StringMapKeysSql("metadata"),
        " AS metadata_keys, ", StringMapValuesSql("metadata"),
        " AS metadata_values, enabled, online, ", MicrosSql("last_seen_time"), " AS last_seen_us, ",
        MicrosSql("create_time"), " AS create_us, ", MicrosSql("update_time"), " AS update_us");
    // A resolved device carries what its notification topic is built from:
    // its own topic, or the template's fields (metadata only when it has no
    // topic of its own). Groups, presence and times are not read.
    const std::string resolve_columns = absl::StrCat(
        "tenant_id, device_id, owner_id, platform, topic, CASE WHEN topic = '' THEN ",
        StringMapKeysSql("metadata"), " ELSE '{}' END AS metadata_keys, CASE WHEN topic = ''",
        " THEN ", StringMapValuesSql("metadata"), " ELSE '{}' END AS metadata_values, enabled");
    const auto resolve = [&](const std::string& name, const std::string& condition) {
      return PgStatement{name, absl::StrCat("SELECT ", resolve_columns,
                                            " FROM devices WHERE tenant_id = $1 AND enabled AND ",
                                            condition, " ORDER BY device_id")};
    };
    return new DeviceStatements{
        .create = {"herald_create_device",
                   absl::StrCat("INSERT INTO devices (tenant_id, device_id, owner_id, platform, "
                                "topic, groups, metadata, enabled, online, last_seen_time) "
                                "VALUES ($1, $2, $3, $4, $5, $6::text[], "
                                "jsonb_object($7::text[], $8::text[]), $9::bool, $10::bool, ",
                                TimestampFromMicrosSql("$11"), ") RETURNING ", columns)},
        .get = {"herald_get_device",
                absl::StrCat("SELECT ", columns,
                             " FROM devices WHERE tenant_id = $1 AND device_id = $2")},
        .list = {"herald_list_devices",
                 absl::StrCat("SELECT ", columns,
                              " FROM devices WHERE tenant_id = $1 AND device_id > $2"
                              " AND ($3::text IS NULL OR owner_id = $3)"
                              " AND ($4::text IS NULL OR groups @> ARRAY[$4::text])"
                              " AND ($5::text IS NULL OR platform = $5)"
                              " AND ($6::bool IS NULL OR online = $6)"
                              " ORDER BY device_id LIMIT $7")},
        .update = {"herald_update_device",
                   absl::StrCat("UPDATE devices SET"
                                " owner_id = CASE WHEN $3::bool THEN $4::text ELSE owner_id END,"
                                " platform = CASE WHEN $5::bool THEN $6::text ELSE platform END,"
                                " topic = CASE WHEN $7::bool THEN $8::text ELSE topic END,"
                                " groups = CASE WHEN $9::bool THEN $10::text[] ELSE groups END,"
                                " metadata = CASE WHEN $11::bool"
                                " THEN jsonb_object($12::text[], $13::text[]) ELSE metadata END,"
                                " enabled = CASE WHEN $14::bool THEN $15::bool ELSE enabled END,"
                                " update_time = now()"
                                " WHERE tenant_id = $1 AND device_id = $2 RETURNING ",
                                columns)},
        .remove = {"herald_delete_device",
                   "DELETE FROM devices WHERE tenant_id = $1 AND device_id = $2"},
        .resolve_ids = resolve("herald_resolve_device_ids", "device_id = ANY($2::text[])"),
        .resolve_owners = resolve("herald_resolve_owner_ids", "owner_id = ANY($2::text[])"),
        .resolve_groups = resolve("herald_resolve_groups", "groups && $2::text[]"),
        // The batch arrives as parallel arrays; an update applies only if the
        // device has the values its topic named and was not seen later.
        .update_presence =
            {"herald_update_presence",
             absl::StrCat("UPDATE devices AS d SET online = u.online, last_seen_time = ",
                          TimestampFromMicrosSql("u.seen_us"),
                          " FROM unnest($2::text[], $3::bool[], $4::int8[], $5::text[],"
                          " $6::text[], $7::text[])"
                          " AS u(device_id, online, seen_us, owner_id, platform, metadata)"
                          " WHERE d.tenant_id = $1 AND d.device_id = u.device_id"
                          " AND (u.owner_id = '' OR d.owner_id = u.owner_id)"
                          " AND (u.platform = '' OR d.platform = u.platform)"
                          " AND d.metadata @> u.metadata::jsonb"
                          " AND (d.last_seen_time IS NULL OR d.last_seen_time <= ",
                          TimestampFromMicrosSql("u.seen_us"), ") RETURNING d.device_id")},
    };
  }();
  return *statements;
}

// A row of the resolve statements (see resolve_columns): what a device's
// topic is built from.
Device ResolvedDeviceOf(const pqxx::row& row) {
  Device device;
  device.tenant_id = TextOf(row["tenant_id"]);
  device.device_id = TextOf(row["device_id"]);
  device.owner_id = TextOf(row["owner_id"]);
  device.platform = TextOf(row["platform"]);
  device.topic = TextOf(row["topic"]);
  device.metadata = StringMapOf(row["metadata_keys"], row["metadata_values"]);
  device.enabled = row["enabled"].as<bool>();
  return device;
}

// A row of `columns`: the whole device.
Device DeviceOf(const pqxx::row& row) {
  Device device = ResolvedDeviceOf(row);
  device.groups = TextArrayOf(row["groups"]);
  device.online = row["online"].as<bool>();
  device.last_seen_time = OptionalTimeOf(row["last_seen_us"]);
  device.create_time = TimeOf(row["create_us"]);
  device.update_time = TimeOf(row["update_us"]);
  return device;
}

std::optional<std::string> OptionalText(const std::string& value) {
  if (value.empty()) return std::nullopt;
  return value;
}

absl::Status DeviceNotFound(const std::string& device_id) {
  return absl::NotFoundError(absl::StrCat("device_id: no device \"", device_id, "\""));
}

// A JSON object of strings, e.g. {"home_id":"abc"}.
std::string JsonObjectOf(const std::map<std::string, std::string>& map) {
  std::string json = "{";
  for (const auto& [key, value] : map) {
    if (json.size() > 1) json.push_back(',');
    absl::StrAppend(&json, "\"", JsonEscape(key), "\":\"", JsonEscape(value), "\"");
  }
  json.push_back('}');
  return json;
}

}  // namespace

PgDeviceStore::PgDeviceStore(PgConnectionPool* pool, QueryObserver* observer)
    : pool_(pool), observer_(observer) {}

absl::StatusOr<Device> PgDeviceStore::CreateDevice(const Device& device) {
  // Autocommit: if the reply is lost the insert may have happened, and a
  // retry would report kAlreadyExists for our own row, so never retry.
  return RunPgOperation(*pool_, observer_, "create_device", PgRetry::kNever,
                        [&](PgSession& session) -> absl::StatusOr<Device> {
                          pqxx::nontransaction tx(session.connection());
                          try {
                            const pqxx::row row = tx.exec_prepared1(
                                session.Prepare(Statements().create), device.tenant_id,
                                device.device_id, device.owner_id, device.platform, device.topic,
                                PgTextArrayLiteral(device.groups), MapKeysLiteral(device.metadata),
                                MapValuesLiteral(device.metadata), device.enabled, device.online,
                                MicrosOf(device.last_seen_time));
                            return DeviceOf(row);
                          } catch (const pqxx::unique_violation&) {
                            return absl::AlreadyExistsError(absl::StrCat(
                                "device_id: device \"", device.device_id, "\" already exists"));
                          }
                        });
}

absl::StatusOr<Device> PgDeviceStore::GetDevice(const std::string& tenant_id,
                                                const std::string& device_id) {
  return RunPgOperation(*pool_, observer_, "get_device", PgRetry::kOnLostConnection,
                        [&](PgSession& session) -> absl::StatusOr<Device> {
                          pqxx::nontransaction tx(session.connection());
                          const pqxx::result rows = tx.exec_prepared(
                              session.Prepare(Statements().get), tenant_id, device_id);
                          if (rows.empty()) return DeviceNotFound(device_id);
                          return DeviceOf(rows[0]);
                        });
}

absl::StatusOr<Page<Device>> PgDeviceStore::ListDevices(const std::string& tenant_id,
                                                        const DeviceFilter& filter, int page_size,
                                                        const std::string& page_token) {
  std::string after;
  if (!page_token.empty()) {
    absl::StatusOr<std::string> position = DecodePageToken(kDevicesList, page_token);
    if (!position.ok()) return position.status();
    after = *std::move(position);
  }
  const int limit = EffectivePageSize(page_size);
  return RunPgOperation(
      *pool_, observer_, "list_devices", PgRetry::kOnLostConnection,
      [&](PgSession& session) -> absl::StatusOr<Page<Device>> {
        pqxx::nontransaction tx(session.connection());
        // One row more than the page tells whether another page follows, so
        // the last page carries no token.
        const pqxx::result rows = tx.exec_prepared(
            session.Prepare(Statements().list), tenant_id, after, OptionalText(filter.owner_id),
            OptionalText(filter.group), OptionalText(filter.platform), filter.online, limit + 1);
        Page<Device> page;
        const int count = std::min<int>(static_cast<int>(rows.size()), limit);
        page.items.reserve(count);
        for (int i = 0; i < count; ++i) page.items.push_back(DeviceOf(rows[i]));
        if (static_cast<int>(rows.size()) > limit) {
          page.next_page_token = EncodePageToken(kDevicesList, page.items.back().device_id);
        }
        return page;
      });
}

absl::StatusOr<Device> PgDeviceStore::UpdateDevice(const Device& device,
                                                   const std::vector<DeviceField>& mask) {
  if (mask.empty()) return GetDevice(device.tenant_id, device.device_id);
  const auto in_mask = [&](DeviceField field) {
    return std::find(mask.begin(), mask.end(), field) != mask.end();
  };
  // Idempotent (it sets fields to given values), so a retry is harmless.
  return RunPgOperation(
      *pool_, observer_, "update_device", PgRetry::kOnLostConnection,
      [&](PgSession& session) -> absl::StatusOr<Device> {
        pqxx::nontransaction tx(session.connection());
        const pqxx::result rows = tx.exec_prepared(
            session.Prepare(Statements().update), device.tenant_id, device.device_id,
            in_mask(DeviceField::kOwnerId), device.owner_id, in_mask(DeviceField::kPlatform),
            device.platform, in_mask(DeviceField::kTopic), device.topic,
            in_mask(DeviceField::kGroups), PgTextArrayLiteral(device.groups),
            in_mask(DeviceField::kMetadata), MapKeysLiteral(device.metadata),
            MapValuesLiteral(device.metadata), in_mask(DeviceField::kEnabled), device.enabled);
        if (rows.empty()) return DeviceNotFound(device.device_id);
        return DeviceOf(rows[0]);
      });
}

absl::Status PgDeviceStore::DeleteDevice(const std::string& tenant_id,
                                         const std::string& device_id) {
  // Not retried: a lost reply may hide a successful delete, and the retry
  // would then report kNotFound.
  return RunPgOperation(
      *pool_, observer_, "delete_device", PgRetry::kNever, [&](PgSession& session) -> absl::Status {
        pqxx::nontransaction tx(session.connection());
        const pqxx::result result =
            tx.exec_prepared(session.Prepare(Statements().remove), tenant_id, device_id);
        if (result.affected_rows() == 0) return DeviceNotFound(device_id);
        return absl::OkStatus();
      });
}

absl::StatusOr<std::vector<Device>> PgDeviceStore::ResolveTargets(const std::string& tenant_id,
                                                                  const TargetSelector& target) {
  const PgStatement* statement = nullptr;
  switch (target.kind) {
    case TargetKind::kDeviceIds: statement = &Statements().resolve_ids; break;
    case TargetKind::kOwnerIds: statement = &Statements().resolve_owners; break;
    case TargetKind::kGroups: statement = &Statements().resolve_groups; break;
    case TargetKind::kTopic:
      return absl::InvalidArgumentError(
          "target: a raw topic names no devices; publish to it without resolving");
  }
  if (target.values.empty()) return std::vector<Device>();
  if (target.kind == TargetKind::kDeviceIds) return ResolveDeviceIds(tenant_id, target.values);
  const std::string values = PgTextArrayLiteral(target.values);
  return RunPgOperation(*pool_, observer_, "resolve_targets", PgRetry::kOnLostConnection,
                        [&](PgSession& session) -> absl::StatusOr<std::vector<Device>> {
                          pqxx::nontransaction tx(session.connection());
                          const pqxx::result rows =
                              tx.exec_prepared(session.Prepare(*statement), tenant_id, values);
                          std::vector<Device> devices;
                          devices.reserve(rows.size());
                          for (const pqxx::row& row : rows) {
                            devices.push_back(ResolvedDeviceOf(row));
                          }
                          return devices;
                        });
}

absl::StatusOr<std::vector<Device>> PgDeviceStore::ResolveDeviceIds(
    const std::string& tenant_id, const std::vector<std::string>& ids) {
  constexpr int kMaxRunningResolves = 2;
  constexpr size_t kMaxIdsPerQuery = 10000;
  PendingResolve mine{.tenant_id = &tenant_id, .device_ids = &ids, .result = std::nullopt};
  absl::MutexLock lock(&resolve_mu_);
  resolve_queue_.push_back(&mine);
  while (!mine.result.has_value()) {
    if (running_resolves_ < kMaxRunningResolves && !resolve_queue_.empty()) {
      // Lead a query: the front entry's tenant, as many ids as fit.
      std::vector<PendingResolve*> batch;
      size_t id_count = 0;
      const std::string& tenant = *resolve_queue_.front()->tenant_id;
      for (auto it = resolve_queue_.begin(); it != resolve_queue_.end();) {
        PendingResolve* entry = *it;
        if (*entry->tenant_id != tenant ||
            (!batch.empty() && id_count + entry->device_ids->size() > kMaxIdsPerQuery)) {
          ++it;
          continue;
        }
        batch.push_back(entry);
        id_count += entry->device_ids->size();
        it = resolve_queue_.erase(it);
      }
      ++running_resolves_;
      resolve_mu_.Unlock();
      ResolveBatch(batch);
      resolve_mu_.Lock();
      --running_resolves_;
      resolve_done_.SignalAll();
      continue;
    }
    resolve_done_.Wait(&resolve_mu_);
  }
  return *std::move(mine.result);
}

void PgDeviceStore::ResolveBatch(const std::vector<PendingResolve*>& batch) {
  std::vector<std::string> all_ids;
  for (const PendingResolve* entry : batch) {
    all_ids.insert(all_ids.end(), entry->device_ids->begin(), entry->device_ids->end());
  }
  const std::string values = PgTextArrayLiteral(all_ids);
  absl::StatusOr<std::vector<Device>> devices = RunPgOperation(
      *pool_, observer_, "resolve_targets", PgRetry::kOnLostConnection,
      [&](PgSession& session) -> absl::StatusOr<std::vector<Device>> {
        pqxx::nontransaction tx(session.connection());
        const pqxx::result rows = tx.exec_prepared(session.Prepare(Statements().resolve_ids),
                                                   *batch.front()->tenant_id, values);
        std::vector<Device> found;
        found.reserve(rows.size());
        for (const pqxx::row& row : rows) found.push_back(ResolvedDeviceOf(row));
        return found;
      });
  if (batch.size() == 1 || !devices.ok()) {
    for (PendingResolve* entry : batch) entry->result = devices;
    return;
  }
  // Each entry gets its own devices, in device id order (the query's).
  for (PendingResolve* entry : batch) {
    const absl::flat_hash_set<std::string> wanted(entry->device_ids->begin(),
                                                  entry->device_ids->end());
    std::vector<Device> own;
    for (const Device& device : *devices) {
      if (wanted.contains(device.device_id)) own.push_back(device);
    }
    entry->result = std::move(own);
  }
}

absl::StatusOr<std::vector<std::string>> PgDeviceStore::UpdatePresence(
    const std::string& tenant_id, const std::vector<PresenceUpdate>& updates) {
  if (updates.empty()) return std::vector<std::string>();
  std::vector<std::string> ids, owners, platforms, metadata;
  std::string online = "{";
  std::string seen = "{";
  for (const PresenceUpdate& update : updates) {
    ids.push_back(update.device_id);
    owners.push_back(update.expected_owner_id);
    platforms.push_back(update.expected_platform);
    metadata.push_back(JsonObjectOf(update.expected_metadata));
    if (online.size() > 1) {
      online.push_back(',');
      seen.push_back(',');
    }
    online.push_back(update.online ? 't' : 'f');
    absl::StrAppend(&seen, absl::ToUnixMicros(update.seen_time));
  }
  online.push_back('}');
  seen.push_back('}');
  const std::string ids_literal = PgTextArrayLiteral(ids);
  const std::string owners_literal = PgTextArrayLiteral(owners);
  const std::string platforms_literal = PgTextArrayLiteral(platforms);
  const std::string metadata_literal = PgTextArrayLiteral(metadata);
  // Idempotent (it sets values, and only newer ones): safe to retry.
  return RunPgOperation(
      *pool_, observer_, "update_presence", PgRetry::kOnLostConnection,
      [&](PgSession& session) -> absl::StatusOr<std::vector<std::string>> {
        pqxx::nontransaction tx(session.connection());
        const pqxx::result rows = tx.exec_prepared(
            session.Prepare(Statements().update_presence), tenant_id, ids_literal, online, seen,
            owners_literal, platforms_literal, metadata_literal);
        std::vector<std::string> changed;
        changed.reserve(rows.size());
        for (const pqxx::row& row : rows) changed.push_back(TextOf(row[0]));
        return changed;
      });
}

}  // namespace herald
