#include "service/store/pg_notification_store.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "service/core/page_token.h"
#include "service/store/pg_array.h"
#include "service/store/pg_session.h"

namespace herald {
namespace {

constexpr char kNotificationsList[] = "notifications";
constexpr char kOnKeyConflict[] =
    " ON CONFLICT (tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING";
constexpr char kDeliveriesList[] = "deliveries";

// Delivery states as stored; they are DeliveryStateName's values (the
// integration tests check that they agree). A lookup by notification id
// also names the tenant, which the notifications list index leads with:
// planned for an empty table, that index looks as cheap as the primary key
// and then reads all of the tenant's rows, so such lookups, like the
// statements whose plan depends on a table's size, are planned on each
// call (PgStatement::plan_each_call).
struct NotificationStatements {
  PgStatement insert_notification, insert_notification_unkeyed, insert_deliveries,
      insert_with_deliveries, claimed_at_insert, get_by_idempotency_key, get, list,
      list_deliveries, cancel, claim, extend_leases, finish_deliveries, record_outcomes, stats,
      backlog;
};

const NotificationStatements& Statements() {
  static const NotificationStatements* const statements = [] {
    // A notification row `n` with its delivery counts `c` (see kFromWithCounts).
    const std::string columns = absl::StrCat(
        "n.tenant_id, n.notification_id, n.target_kind, n.target_values, n.title, n.body, ",
        StringMapKeysSql("n.data"), " AS data_keys, ", StringMapValuesSql("n.data"),
        " AS data_values, n.priority, n.qos, n.retain, ", MicrosSql("n.ttl"), " AS ttl_us, ",
        MicrosSql("n.send_time"), " AS send_us, ", MicrosSql("n.expire_time"),
        " AS expire_us, n.idempotency_key, n.request_fingerprint, n.payload, ",
        MicrosSql("n.create_time"),
        " AS create_us, coalesce(n.send_time > now(), false) AS scheduled, c.*");
    const std::string from_with_counts =
        " FROM notifications n CROSS JOIN LATERAL (SELECT"
        " count(*) FILTER (WHERE d.state = 'pending') AS pending,"
        " count(*) FILTER (WHERE d.state = 'pending' AND d.attempts > 0) AS pending_attempted,"
        " count(*) FILTER (WHERE d.state = 'delivered') AS delivered,"
        " count(*) FILTER (WHERE d.state = 'no_subscriber') AS no_subscriber,"
        " count(*) FILTER (WHERE d.state = 'received') AS received,"
        " count(*) FILTER (WHERE d.state = 'failed') AS failed,"
        " count(*) FILTER (WHERE d.state = 'expired') AS expired,"
        " count(*) FILTER (WHERE d.state = 'cancelled') AS cancelled"
        " FROM deliveries d WHERE d.notification_id = n.notification_id) AS c";
    // Only a notification with an idempotency key can conflict: the others
    // take the plain INSERT, which spares PostgreSQL the speculative
    // insertion of ON CONFLICT (a check of the arbiter index and one more
    // WAL record per row; 516 against 388 records for 128 notifications).
    const std::string insert_into =
        "INSERT INTO notifications (notification_id, tenant_id, target_kind, target_values,"
        " title, body, data, priority, qos, retain, ttl, send_time, expire_time,"
        " idempotency_key, request_fingerprint, payload)";
    const std::string insert_one = absl::StrCat(
        insert_into,
        " VALUES ($1, $2, $3, $4::text[], $5, $6, jsonb_object($7::text[], $8::text[]),"
        " $9, $10::int2, $11::bool, ",
        IntervalFromMicrosSql("$12"), ", ", TimestampFromMicrosSql("$13"), ", ",
        TimestampFromMicrosSql("$14"), ", $15, $16, $17::bytea)");
    // Several notifications as rows `u` of parallel arrays $1-$17, one per
    // column, in the order of the batch (`position`); a text array element
    // holds a whole text[] literal (targets, data keys and values) and the
    // payload is hex.
    const std::string notification_rows =
        "unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],"
        " $6::text[], $7::text[], $8::text[], $9::text[], $10::int2[], $11::bool[],"
        " $12::int8[], $13::int8[], $14::int8[], $15::text[], $16::text[], $17::text[])"
        " WITH ORDINALITY AS u(id, tenant, kind, target_values, title, body, data_keys,"
        " data_values, priority, qos, retain, ttl_us, send_us, expire_us,"
        " idempotency_key, fingerprint, payload, position)";
    const std::string notification_values = absl::StrCat(
        "SELECT u.id, u.tenant, u.kind, u.target_values::text[], u.title, u.body,"
        " jsonb_object(u.data_keys::text[], u.data_values::text[]), u.priority, u.qos,"
        " u.retain, ",
        IntervalFromMicrosSql("u.ttl_us"), ", ", TimestampFromMicrosSql("u.send_us"), ", ",
        TimestampFromMicrosSql("u.expire_us"),
        ", u.idempotency_key, u.fingerprint, decode(u.payload, 'hex')");
    const std::string returned = absl::StrCat(
        MicrosSql("create_time"), " AS create_us, coalesce(send_time > now(), false) AS scheduled");
    const std::string insert_deliveries_into =
        "INSERT INTO deliveries (tenant_id, notification_id, device_id, topic, qos, retain,"
        " attempts, last_attempt_time, next_attempt_time, expire_time)";
    return new NotificationStatements{
        .insert_notification = {"herald_insert_notification",
                                absl::StrCat(insert_one, kOnKeyConflict, " RETURNING ", returned)},
        .insert_notification_unkeyed = {"herald_insert_notification_unkeyed",
                                        absl::StrCat(insert_one, " RETURNING ", returned)},
        // The targets arrive as two parallel arrays, the notification's own
        // columns as parameters: the statement reads no table, so its plan
        // cannot go stale as the notifications table grows from empty. The
        // first $4 deliveries are claimed as the claim statement would (an
        // attempt counted, leased until now() + $5); returns their ids in
        // target order (identity values are drawn in the order of the rows
        // inserted).
        .insert_deliveries =
            {"herald_insert_deliveries",
             absl::StrCat(
                 "WITH inserted AS (", insert_deliveries_into,
                 " SELECT $6, $1, t.device_id, t.topic, $7::int2, $8::bool,"
                 " CASE WHEN t.position <= $4 THEN 1 ELSE 0 END,"
                 " CASE WHEN t.position <= $4 THEN now() END,"
                 " CASE WHEN t.position <= $4 THEN now() + ",
                 IntervalFromMicrosSql("$5"), " ELSE coalesce(", TimestampFromMicrosSql("$9"),
                 ", now()) END, ", TimestampFromMicrosSql("$10"),
                 " FROM unnest($2::text[], $3::text[]) WITH ORDINALITY"
                 " AS t(device_id, topic, position)"
                 " ORDER BY t.position"
                 " RETURNING delivery_id, attempts)"
                 " SELECT delivery_id FROM inserted WHERE attempts > 0 ORDER BY delivery_id")},
        // Notifications and their deliveries in one statement, so in one
        // round trip and one transaction without BEGIN and COMMIT: the
        // notification rows ($1-$17, see notification_rows), then
        // per delivery the position (from 1) of its notification, device,
        // topic and whether to claim it (lease $22 microseconds). Any
        // conflict (a taken idempotency key, or a notification id that a
        // lost attempt of the same call stored) skips the notification and
        // its deliveries, so running it again stores nothing twice. Returns
        // one row per stored notification (delivery_id NULL) and one per
        // claimed delivery, in delivery id order.
        .insert_with_deliveries =
            {"herald_insert_with_deliveries",
             absl::StrCat(
                 "WITH u AS (SELECT * FROM ", notification_rows, "),"
                 " notified AS (", insert_into, " ", notification_values,
                 " FROM u ORDER BY u.position ON CONFLICT DO NOTHING RETURNING notification_id, ",
                 returned, "),"
                 " delivered AS (", insert_deliveries_into,
                 " SELECT u.tenant, u.id, t.device_id, t.topic, u.qos, u.retain,"
                 " CASE WHEN t.claim THEN 1 ELSE 0 END, CASE WHEN t.claim THEN now() END,"
                 " CASE WHEN t.claim THEN now() + ",
                 IntervalFromMicrosSql("$22"), " ELSE coalesce(",
                 TimestampFromMicrosSql("u.send_us"), ", now()) END, ",
                 TimestampFromMicrosSql("u.expire_us"),
                 " FROM unnest($18::int8[], $19::text[], $20::text[], $21::bool[])"
                 " WITH ORDINALITY AS t(k, device_id, topic, claim, position)"
                 " JOIN u ON u.position = t.k JOIN notified ON notified.notification_id = u.id"
                 " ORDER BY t.position RETURNING delivery_id, notification_id, attempts)"
                 " SELECT notification_id, create_us, scheduled, NULL::int8 AS delivery_id"
                 " FROM notified UNION ALL"
                 " SELECT notification_id, NULL::int8, NULL::bool, delivery_id FROM delivered"
                 " WHERE attempts > 0 ORDER BY delivery_id NULLS FIRST")},
        // A notification's deliveries that its insert claimed and nobody has
        // recorded yet, in target order.
        .claimed_at_insert = {"herald_claimed_at_insert",
                              "SELECT delivery_id FROM deliveries WHERE notification_id = $1"
                              " AND state = 'pending' AND attempts > 0 ORDER BY delivery_id"},
        .get_by_idempotency_key = {"herald_get_notification_by_idempotency_key",
                                   absl::StrCat("SELECT ", columns, from_with_counts,
                                                " WHERE n.tenant_id = $1"
                                                " AND n.idempotency_key = $2")},
        .get = {"herald_get_notification",
                absl::StrCat("SELECT ", columns, from_with_counts,
                             " WHERE n.tenant_id = $1 AND n.notification_id = $2"),
                /*plan_each_call=*/true},
        .list = {"herald_list_notifications",
                 absl::StrCat("SELECT ", columns, from_with_counts,
                              " WHERE n.tenant_id = $1 AND ($2::int8 IS NULL OR"
                              " (n.create_time, n.notification_id) < (",
                              TimestampFromMicrosSql("$2"),
                              ", $3::text))"
                              " ORDER BY n.create_time DESC, n.notification_id DESC LIMIT $4")},
        // One row per delivery; a single row of NULLs when the notification
        // has none after the position; no row when it does not exist.
        .list_deliveries =
            {"herald_list_deliveries",
             absl::StrCat("SELECT d.delivery_id, d.device_id, d.topic, d.qos, d.state,"
                          " d.attempts, d.last_error, ",
                          MicrosSql("d.last_attempt_time"), " AS last_attempt_us, ",
                          MicrosSql("d.complete_time"),
                          " AS complete_us"
                          " FROM notifications n LEFT JOIN LATERAL (SELECT * FROM deliveries x"
                          " WHERE x.notification_id = n.notification_id AND x.delivery_id > $3"
                          " ORDER BY x.delivery_id LIMIT $4) AS d ON true"
                          " WHERE n.tenant_id = $1 AND n.notification_id = $2"
                          " ORDER BY d.delivery_id"),
             /*plan_each_call=*/true},
        // Locks in delivery id order, so that concurrent cancels cannot
        // deadlock each other.
        .cancel = {"herald_cancel_notification",
                   "WITH n AS (SELECT notification_id FROM notifications"
                   " WHERE tenant_id = $1 AND notification_id = $2),"
                   " locked AS (SELECT d.delivery_id FROM deliveries d JOIN n USING"
                   " (notification_id) WHERE d.state = 'pending' ORDER BY d.delivery_id"
                   " FOR UPDATE OF d),"
                   " cancelled AS (UPDATE deliveries d SET state = 'cancelled',"
                   " complete_time = now() FROM locked"
                   " WHERE d.delivery_id = locked.delivery_id AND d.state = 'pending'"
                   " RETURNING 1)"
                   " SELECT (SELECT count(*) FROM n) AS found,"
                   " (SELECT count(*) FROM cancelled) AS cancelled",
                   /*plan_each_call=*/true},
        // Due rows, oldest first, skipping those another worker is claiming.
        // Expired ones are completed here and not handed out; the others
        // count an attempt and are leased until now() + $2.
        .claim =
            {"herald_claim_deliveries",
             absl::StrCat(
                 "WITH due AS (SELECT delivery_id FROM deliveries"
                 " WHERE state = 'pending' AND next_attempt_time <= now()"
                 " ORDER BY next_attempt_time LIMIT $1 FOR UPDATE SKIP LOCKED),"
                 " claimed AS (UPDATE deliveries d SET"
                 " state = CASE WHEN d.expire_time <= now() THEN 'expired' ELSE 'pending' END,"
                 " complete_time = CASE WHEN d.expire_time <= now() THEN now() END,"
                 " last_error = CASE WHEN d.expire_time <= now() THEN coalesce(d.last_error,"
                 " 'expired: its ttl passed before it could be delivered')"
                 " ELSE d.last_error END,"
                 " attempts = CASE WHEN d.expire_time <= now() THEN d.attempts"
                 " ELSE d.attempts + 1 END,"
                 " last_attempt_time = CASE WHEN d.expire_time <= now() THEN d.last_attempt_time"
                 " ELSE now() END,"
                 " next_attempt_time = CASE WHEN d.expire_time <= now() THEN d.next_attempt_time"
                 " ELSE now() + ",
                 IntervalFromMicrosSql("$2"),
                 " END"
                 " FROM due WHERE d.delivery_id = due.delivery_id"
                 " RETURNING d.delivery_id, d.notification_id, d.topic, d.qos, d.retain,"
                 " d.attempts, d.expire_time, d.state)"
                 " SELECT c.delivery_id, c.notification_id, c.topic, c.qos, c.retain, n.payload,"
                 " c.attempts, ",
                 MicrosSql("n.create_time"), " AS accept_us, ", MicrosSql("c.expire_time"),
                 " AS expire_us"
                 " FROM claimed c JOIN notifications n ON n.notification_id = c.notification_id"
                 " WHERE c.state = 'pending' ORDER BY c.delivery_id"),
             /*plan_each_call=*/true},
        // extend_leases and record_outcomes touch rows by primary key. They
        // are planned on each call (with the array's real length and the
        // table's real size), and their pending check is written so that
        // the partial due index cannot serve it: planned from statistics
        // taken while few deliveries were pending, the due index looks
        // cheapest and then reads every pending row of a large fan-out on
        // each call.
        .extend_leases = {"herald_extend_leases",
                          absl::StrCat("UPDATE deliveries SET next_attempt_time = now() + ",
                                       IntervalFromMicrosSql("$2"),
                                       " WHERE delivery_id = ANY($1::int8[])"
                                       " AND state || '' = 'pending'"),
                          /*plan_each_call=*/true},
        // The common outcome: pending deliveries that reached one final
        // state without an error. Naming the rows with = ANY, rather than
        // joining an array, leaves the planner only the primary key to
        // find them with (a medium-sized table looked cheaper to read whole
        // than to probe 700 times).
        .finish_deliveries = {"herald_finish_deliveries",
                              "UPDATE deliveries SET state = $2, complete_time = now()"
                              " WHERE delivery_id = ANY($1::int8[])"
                              " AND state || '' = 'pending'",
                              /*plan_each_call=*/true},
        .record_outcomes = {"herald_record_outcomes",
                            absl::StrCat(
                                "UPDATE deliveries d SET state = o.state,"
                                " complete_time = CASE WHEN o.state = 'pending' THEN NULL"
                                " ELSE now() END,"
                                " next_attempt_time = CASE WHEN o.state = 'pending' THEN now() + ",
                                IntervalFromMicrosSql("o.retry_us"),
                                " ELSE d.next_attempt_time END,"
                                " last_error = coalesce(nullif(o.error, ''), d.last_error)"
                                " FROM unnest($1::int8[], $2::text[], $3::int8[], $4::text[])"
                                " AS o(delivery_id, state, retry_us, error)"
                                " WHERE d.delivery_id = o.delivery_id"
                                " AND d.state || '' = 'pending'"),
                            /*plan_each_call=*/true},
        .stats = {"herald_get_stats",
                  absl::StrCat(
                      "WITH g AS (SELECT qos, provider,"
                      " count(*) FILTER (WHERE attempts > 0) AS sent,"
                      " count(*) FILTER (WHERE state IN ('delivered', 'no_subscriber',"
                      " 'received')) AS succeeded,"
                      " count(*) FILTER (WHERE state = 'failed') AS failed,"
                      " count(*) FILTER (WHERE state = 'expired') AS expired,"
                      " count(*) FILTER (WHERE state = 'cancelled') AS cancelled,"
                      " count(*) FILTER (WHERE state = 'pending') AS pending,"
                      " max(last_attempt_time) AS last_sent"
                      " FROM deliveries WHERE tenant_id = $1 GROUP BY qos, provider)"
                      " SELECT g.qos, g.provider, g.sent, g.succeeded, g.failed, g.expired,"
                      " g.cancelled, g.pending, ",
                      MicrosSql("g.last_sent"),
                      " AS last_sent_us,"
                      " (SELECT count(*) FROM notifications WHERE tenant_id = $1)"
                      " AS notifications,"
                      " (SELECT count(*) FROM devices WHERE tenant_id = $1) AS devices"
                      " FROM (SELECT 1) AS one LEFT JOIN g ON true")},
        .backlog = {"herald_count_backlog",
                    "SELECT count(*) FROM deliveries WHERE state = 'pending'"},
    };
  }();
  return *statements;
}

std::optional<Priority> PriorityFromName(std::string_view name) {
  for (Priority priority :
       {Priority::kLow, Priority::kNormal, Priority::kHigh, Priority::kUrgent}) {
    if (PriorityName(priority) == name) return priority;
  }
  return std::nullopt;
}

std::optional<std::string> OptionalText(const std::string& value) {
  if (value.empty()) return std::nullopt;
  return value;
}

DeliveryState DeliveryStateOf(const pqxx::field& field) {
  const std::optional<DeliveryState> state = DeliveryStateFromName(field.c_str());
  if (!state.has_value()) {
    throw pqxx::conversion_error(
        absl::StrCat("column ", field.name(), ": unknown delivery state \"", field.c_str(), "\""));
  }
  return *state;
}

DeliveryStateCounts CountsOf(const pqxx::row& row) {
  DeliveryStateCounts counts;
  counts.pending = row["pending"].as<int64_t>();
  counts.pending_attempted = row["pending_attempted"].as<int64_t>();
  counts.delivered = row["delivered"].as<int64_t>();
  counts.no_subscriber = row["no_subscriber"].as<int64_t>();
  counts.received = row["received"].as<int64_t>();
  counts.failed = row["failed"].as<int64_t>();
  counts.expired = row["expired"].as<int64_t>();
  counts.cancelled = row["cancelled"].as<int64_t>();
  return counts;
}

NotificationRecord NotificationOf(const pqxx::row& row) {
  NotificationRecord record;
  record.tenant_id = TextOf(row["tenant_id"]);
  record.notification_id = TextOf(row["notification_id"]);
  const std::optional<TargetKind> kind = TargetKindFromName(row["target_kind"].c_str());
  if (!kind.has_value()) {
    throw pqxx::conversion_error(
        absl::StrCat("column target_kind: unknown kind \"", row["target_kind"].c_str(), "\""));
  }
  record.target.kind = *kind;
  record.target.values = TextArrayOf(row["target_values"]);
  record.content.title = TextOf(row["title"]);
  record.content.body = TextOf(row["body"]);
  record.content.data = StringMapOf(row["data_keys"], row["data_values"]);
  const std::optional<Priority> priority = PriorityFromName(row["priority"].c_str());
  if (!priority.has_value()) {
    throw pqxx::conversion_error(
        absl::StrCat("column priority: unknown priority \"", row["priority"].c_str(), "\""));
  }
  record.content.priority = *priority;
  record.options.qos = row["qos"].as<int>();
  record.options.retain = row["retain"].as<bool>();
  if (!row["ttl_us"].is_null()) {
    record.options.ttl = absl::Microseconds(row["ttl_us"].as<int64_t>());
  }
  record.options.send_time = OptionalTimeOf(row["send_us"]);
  record.options.idempotency_key = TextOf(row["idempotency_key"]);
  record.expire_time = OptionalTimeOf(row["expire_us"]);
  record.request_fingerprint = TextOf(row["request_fingerprint"]);
  record.payload = BytesOf(row["payload"]);
  record.create_time = TimeOf(row["create_us"]);
  record.counts = CountsOf(row);
  record.state = DeriveNotificationState(record.counts, row["scheduled"].as<bool>());
  return record;
}

DeliveryRecord DeliveryOf(const pqxx::row& row) {
  DeliveryRecord delivery;
  delivery.delivery_id = row["delivery_id"].as<int64_t>();
  delivery.device_id = TextOf(row["device_id"]);
  delivery.topic = TextOf(row["topic"]);
  delivery.qos = row["qos"].as<int>();
  delivery.state = DeliveryStateOf(row["state"]);
  delivery.attempts = row["attempts"].as<int>();
  delivery.last_error = TextOf(row["last_error"]);
  delivery.last_attempt_time = OptionalTimeOf(row["last_attempt_us"]);
  delivery.complete_time = OptionalTimeOf(row["complete_us"]);
  return delivery;
}

ClaimedDelivery ClaimedOf(const pqxx::row& row) {
  ClaimedDelivery claimed;
  claimed.delivery_id = row["delivery_id"].as<int64_t>();
  claimed.notification_id = TextOf(row["notification_id"]);
  claimed.topic = TextOf(row["topic"]);
  claimed.qos = row["qos"].as<int>();
  claimed.retain = row["retain"].as<bool>();
  claimed.payload = std::make_shared<const std::string>(BytesOf(row["payload"]));
  claimed.attempts = row["attempts"].as<int>();
  claimed.accept_time = TimeOf(row["accept_us"]);
  claimed.expire_time = OptionalTimeOf(row["expire_us"]);
  return claimed;
}

DeliveryTotals TotalsOf(const pqxx::row& row) {
  DeliveryTotals totals;
  totals.sent = row["sent"].as<int64_t>();
  totals.succeeded = row["succeeded"].as<int64_t>();
  totals.failed = row["failed"].as<int64_t>();
  totals.expired = row["expired"].as<int64_t>();
  totals.cancelled = row["cancelled"].as<int64_t>();
  totals.pending = row["pending"].as<int64_t>();
  return totals;
}

void Add(const DeliveryTotals& from, DeliveryTotals* to) {
  to->sent += from.sent;
  to->succeeded += from.succeeded;
  to->failed += from.failed;
  to->expired += from.expired;
  to->cancelled += from.cancelled;
  to->pending += from.pending;
}

absl::Status NotificationNotFound(const std::string& notification_id) {
  return absl::NotFoundError(
      absl::StrCat("notification_id: no notification \"", notification_id, "\""));
}

// A list position "<create time in µs>/<notification id>".
std::string NotificationPosition(const NotificationRecord& record) {
  return absl::StrCat(absl::ToUnixMicros(record.create_time), "/", record.notification_id);
}

absl::Status InvalidPosition() {
  return absl::InvalidArgumentError(
      "page_token: not a token issued by this list method; pass the next_page_token of the "
      "previous response, or an empty token for the first page");
}

std::string Int64ArrayLiteral(const std::vector<int64_t>& values) {
  std::string out = "{";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out.push_back(',');
    absl::StrAppend(&out, values[i]);
  }
  out.push_back('}');
  return out;
}

}  // namespace

PgNotificationStore::PgNotificationStore(PgConnectionPool* pool, QueryObserver* observer,
                                         int max_insert_batches)
    : pool_(pool), observer_(observer), max_insert_batches_(std::max(1, max_insert_batches)) {}

namespace {

// Inserts one notification and its deliveries inside `tx`. A reused
// idempotency key is a result (the earlier notification, or
// kFailedPrecondition), not an exception, so the transaction stays usable
// for the rest of a batch.
absl::StatusOr<InsertedNotification> InsertOne(PgSession& session, pqxx::work& tx,
                                               const NotificationRecord& notification,
                                               const std::vector<ResolvedTarget>& targets,
                                               int64_t claim_count, absl::Duration claim_lease) {
  const NotificationStatements& statements = Statements();
  const pqxx::binarystring payload(notification.payload.data(), notification.payload.size());
  const pqxx::result inserted = tx.exec_prepared(
      session.Prepare(notification.options.idempotency_key.empty()
                          ? statements.insert_notification_unkeyed
                          : statements.insert_notification),
      notification.notification_id,
      notification.tenant_id, std::string(TargetKindName(notification.target.kind)),
      PgTextArrayLiteral(notification.target.values), notification.content.title,
      notification.content.body, MapKeysLiteral(notification.content.data),
      MapValuesLiteral(notification.content.data),
      std::string(PriorityName(notification.content.priority)), notification.options.qos,
      notification.options.retain, MicrosOf(notification.options.ttl),
      MicrosOf(notification.options.send_time), MicrosOf(notification.expire_time),
      OptionalText(notification.options.idempotency_key), notification.request_fingerprint,
      payload);

  if (inserted.empty()) {
    // The idempotency key is taken (ON CONFLICT waited for the other
    // transaction to commit, so its row is visible to this statement).
    const pqxx::result existing =
        tx.exec_prepared(session.Prepare(statements.get_by_idempotency_key),
                         notification.tenant_id, notification.options.idempotency_key);
    if (existing.empty()) {
      return absl::AbortedError(
          "insert_notification: the notification holding this idempotency_key vanished; "
          "retry the request");
    }
    NotificationRecord earlier = NotificationOf(existing[0]);
    if (earlier.request_fingerprint != notification.request_fingerprint) {
      return absl::FailedPreconditionError(
          absl::StrCat("idempotency_key: already used by notification ",
                       earlier.notification_id, " with different content"));
    }
    return InsertedNotification{.notification = std::move(earlier), .duplicate = true};
  }

  std::vector<int64_t> claimed;
  if (!targets.empty()) {
    std::vector<std::string> device_ids;
    std::vector<std::string> topics;
    device_ids.reserve(targets.size());
    topics.reserve(targets.size());
    for (const ResolvedTarget& target : targets) {
      device_ids.push_back(target.device_id);
      topics.push_back(target.topic);
    }
    claim_count = std::clamp<int64_t>(claim_count, 0, static_cast<int64_t>(targets.size()));
    const pqxx::result ids = tx.exec_prepared(
        session.Prepare(statements.insert_deliveries), notification.notification_id,
        PgTextArrayLiteral(device_ids), PgTextArrayLiteral(topics), claim_count,
        std::max<int64_t>(0, absl::ToInt64Microseconds(claim_lease)), notification.tenant_id,
        notification.options.qos, notification.options.retain,
        MicrosOf(notification.options.send_time), MicrosOf(notification.expire_time));
    claimed.reserve(ids.size());
    for (const pqxx::row& row : ids) claimed.push_back(row[0].as<int64_t>());
  }
  InsertedNotification result;
  result.claimed_delivery_ids = std::move(claimed);
  result.notification = notification;
  result.notification.create_time = TimeOf(inserted[0]["create_us"]);
  result.notification.counts = DeliveryStateCounts{};
  result.notification.counts.pending = static_cast<int64_t>(targets.size());
  result.notification.counts.pending_attempted =
      static_cast<int64_t>(result.claimed_delivery_ids.size());
  result.notification.state =
      DeriveNotificationState(result.notification.counts, inserted[0]["scheduled"].as<bool>());
  return result;
}

// A one-dimensional array literal of any element type from already
// formatted elements; std::nullopt becomes NULL.
template <typename T, typename Format>
std::string ArrayLiteral(const std::vector<T>& values, Format format) {
  std::string out = "{";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out.push_back(',');
    format(values[i], &out);
  }
  out.push_back('}');
  return out;
}

void AppendText(const std::string& value, std::string* out) { AppendPgArrayElement(value, out); }

void AppendOptionalText(const std::optional<std::string>& value, std::string* out) {
  if (value.has_value()) {
    AppendPgArrayElement(*value, out);
  } else {
    out->append("NULL");
  }
}

void AppendOptionalInt(const std::optional<int64_t>& value, std::string* out) {
  if (value.has_value()) {
    absl::StrAppend(out, *value);
  } else {
    out->append("NULL");
  }
}

std::string HexOf(const std::string& bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(bytes.size() * 2);
  for (const unsigned char byte : bytes) {
    hex.push_back(kDigits[byte >> 4]);
    hex.push_back(kDigits[byte & 0xf]);
  }
  return hex;
}

// Inserts notifications and their deliveries with one autocommit statement
// (insert_with_deliveries): what InsertOne does for each, without a round
// trip per notification nor BEGIN and COMMIT. Entry i's result is empty when
// the statement stored nothing for it (a conflict: see StoredEarlier).
std::vector<std::optional<InsertedNotification>> InsertTogether(
    PgSession& session, pqxx::nontransaction& tx,
    const std::vector<NotificationToInsert>& entries) {
  std::vector<std::string> ids, tenants, kinds, target_values, titles, bodies, data_keys,
      data_values, priorities, fingerprints, payloads;
  std::vector<std::optional<std::string>> idempotency_keys;
  std::vector<int64_t> qos;
  std::vector<bool> retain;
  std::vector<std::optional<int64_t>> ttls, send_times, expire_times;
  // Per delivery: the position (from 1) of its notification, its device,
  // topic and whether it is claimed.
  std::vector<int64_t> positions;
  std::vector<std::string> device_ids, topics;
  std::vector<bool> claims;
  absl::Duration lease = absl::ZeroDuration();
  for (const NotificationToInsert& entry : entries) {
    const NotificationRecord& notification = *entry.notification;
    ids.push_back(notification.notification_id);
    tenants.push_back(notification.tenant_id);
    kinds.emplace_back(TargetKindName(notification.target.kind));
    target_values.push_back(PgTextArrayLiteral(notification.target.values));
    titles.push_back(notification.content.title);
    bodies.push_back(notification.content.body);
    data_keys.push_back(MapKeysLiteral(notification.content.data));
    data_values.push_back(MapValuesLiteral(notification.content.data));
    priorities.emplace_back(PriorityName(notification.content.priority));
    qos.push_back(notification.options.qos);
    retain.push_back(notification.options.retain);
    ttls.push_back(MicrosOf(notification.options.ttl));
    send_times.push_back(MicrosOf(notification.options.send_time));
    expire_times.push_back(MicrosOf(notification.expire_time));
    idempotency_keys.push_back(OptionalText(notification.options.idempotency_key));
    fingerprints.push_back(notification.request_fingerprint);
    payloads.push_back(HexOf(notification.payload));
    const int64_t position = static_cast<int64_t>(ids.size());
    const int64_t claim_count = std::clamp<int64_t>(
        entry.claim_count, 0, static_cast<int64_t>(entry.targets->size()));
    if (claim_count > 0) lease = std::max(lease, entry.claim_lease);
    for (size_t i = 0; i < entry.targets->size(); ++i) {
      positions.push_back(position);
      device_ids.push_back((*entry.targets)[i].device_id);
      topics.push_back((*entry.targets)[i].topic);
      claims.push_back(static_cast<int64_t>(i) < claim_count);
    }
  }
  const auto append_int = [](int64_t value, std::string* out) { absl::StrAppend(out, value); };
  const auto append_bool = [](bool value, std::string* out) { out->append(value ? "t" : "f"); };
  const pqxx::result rows = tx.exec_prepared(
      session.Prepare(Statements().insert_with_deliveries), ArrayLiteral(ids, AppendText),
      ArrayLiteral(tenants, AppendText), ArrayLiteral(kinds, AppendText),
      ArrayLiteral(target_values, AppendText), ArrayLiteral(titles, AppendText),
      ArrayLiteral(bodies, AppendText), ArrayLiteral(data_keys, AppendText),
      ArrayLiteral(data_values, AppendText), ArrayLiteral(priorities, AppendText),
      ArrayLiteral(qos, append_int), ArrayLiteral(retain, append_bool),
      ArrayLiteral(ttls, AppendOptionalInt), ArrayLiteral(send_times, AppendOptionalInt),
      ArrayLiteral(expire_times, AppendOptionalInt),
      ArrayLiteral(idempotency_keys, AppendOptionalText), ArrayLiteral(fingerprints, AppendText),
      ArrayLiteral(payloads, AppendText), ArrayLiteral(positions, append_int),
      PgTextArrayLiteral(device_ids), PgTextArrayLiteral(topics),
      ArrayLiteral(claims, append_bool), std::max<int64_t>(0, absl::ToInt64Microseconds(lease)));

  struct Stored {
    absl::Time create_time;
    bool scheduled = false;
    std::vector<int64_t> claimed;  // ascending, so in target order
  };
  absl::flat_hash_map<std::string, Stored> stored;
  for (const pqxx::row& row : rows) {
    Stored& notification = stored[TextOf(row["notification_id"])];
    if (row["delivery_id"].is_null()) {
      notification.create_time = TimeOf(row["create_us"]);
      notification.scheduled = row["scheduled"].as<bool>();
    } else {
      notification.claimed.push_back(row["delivery_id"].as<int64_t>());
    }
  }

  std::vector<std::optional<InsertedNotification>> results(entries.size());
  for (size_t k = 0; k < entries.size(); ++k) {
    const NotificationToInsert& entry = entries[k];
    const auto it = stored.find(entry.notification->notification_id);
    if (it == stored.end()) continue;
    InsertedNotification& result = results[k].emplace();
    result.notification = *entry.notification;
    result.notification.create_time = it->second.create_time;
    result.notification.counts = DeliveryStateCounts{};
    result.notification.counts.pending = static_cast<int64_t>(entry.targets->size());
    result.claimed_delivery_ids = std::move(it->second.claimed);
    result.notification.counts.pending_attempted =
        static_cast<int64_t>(result.claimed_delivery_ids.size());
    result.notification.state =
        DeriveNotificationState(result.notification.counts, it->second.scheduled);
  }
  return results;
}

// For a notification that insert_with_deliveries did not store: either an
// earlier attempt of this very call stored it (its reply was lost with the
// connection: the same id and payload, which holds the id, content and
// times), and it is returned with the deliveries that attempt claimed; or
// another notification has its id (kAlreadyExists); or its idempotency key
// is taken and InsertOne reports the earlier notification or the conflict.
absl::StatusOr<InsertedNotification> StoredEarlier(PgSession& session, pqxx::work& tx,
                                                   const NotificationToInsert& entry) {
  const NotificationStatements& statements = Statements();
  const NotificationRecord& notification = *entry.notification;
  const pqxx::result existing = tx.exec_prepared(session.Prepare(statements.get),
                                                 notification.tenant_id,
                                                 notification.notification_id);
  if (existing.empty()) {
    return InsertOne(session, tx, notification, *entry.targets, 0, absl::ZeroDuration());
  }
  InsertedNotification result{.notification = NotificationOf(existing[0]), .duplicate = false};
  if (result.notification.payload != notification.payload) {
    return absl::AlreadyExistsError(absl::StrCat(
        "notification_id ", notification.notification_id, " is taken by another notification"));
  }
  if (entry.claim_count > 0) {
    // Leased by that attempt for this call's handoff, so no one else's.
    const pqxx::result claimed = tx.exec_prepared(session.Prepare(statements.claimed_at_insert),
                                                  notification.notification_id);
    for (const pqxx::row& row : claimed) {
      result.claimed_delivery_ids.push_back(row[0].as<int64_t>());
    }
  }
  return result;
}

// A batch above this many targets in all, or with a notification above
// kMaxTogetherFanOut targets, is inserted one notification at a time in a
// transaction (InsertOne): a fan-out's deliveries need no notification
// position each, and the one statement spent about 15 % more server time
// than InsertOne's on the deliveries of a 10,000-device fan-out.
constexpr size_t kMaxBulkTargets = 10000;
constexpr size_t kMaxTogetherFanOut = 1000;

constexpr size_t kMaxInsertBatch = 128;

}  // namespace

void PgNotificationStore::InsertBatch(const std::vector<PendingInsert*>& batch) {
  std::vector<NotificationToInsert> entries;
  entries.reserve(batch.size());
  size_t targets = 0;
  bool fan_out = false;
  for (const PendingInsert* entry : batch) {
    targets += entry->targets->size();
    fan_out |= entry->targets->size() > kMaxTogetherFanOut;
    entries.push_back({.notification = entry->notification,
                       .targets = entry->targets,
                       .claim_count = entry->claim_count,
                       .claim_lease = entry->claim_lease});
  }
  // Either way a retry on a new connection cannot store anything twice: the
  // one statement skips what an attempt whose reply was lost stored, and a
  // transaction that lost its connection before COMMIT rolled back (a loss
  // during COMMIT is reported as in doubt, not retried).
  std::vector<absl::StatusOr<InsertedNotification>> results;
  absl::Status status = RunPgOperation(
      *pool_, observer_, batch.size() == 1 ? "insert_notification" : "insert_notification_batch",
      PgRetry::kOnLostConnection, [&](PgSession& session) -> absl::Status {
        results.clear();
        if (fan_out || targets > kMaxBulkTargets) {
          pqxx::work tx(session.connection());
          for (const NotificationToInsert& entry : entries) {
            results.push_back(InsertOne(session, tx, *entry.notification, *entry.targets,
                                        entry.claim_count, entry.claim_lease));
          }
          tx.commit();
          return absl::OkStatus();
        }
        std::vector<std::optional<InsertedNotification>> stored;
        {
          pqxx::nontransaction tx(session.connection());
          stored = InsertTogether(session, tx, entries);
        }
        std::vector<size_t> not_stored;
        for (size_t k = 0; k < stored.size(); ++k) {
          if (stored[k].has_value()) {
            results.push_back(*std::move(stored[k]));
          } else {
            results.push_back(absl::InternalError("not stored"));
            not_stored.push_back(k);
          }
        }
        if (!not_stored.empty()) {
          pqxx::work tx(session.connection());
          for (size_t k : not_stored) results[k] = StoredEarlier(session, tx, entries[k]);
          tx.commit();
        }
        return absl::OkStatus();
      });
  if (status.ok()) {
    for (size_t i = 0; i < batch.size(); ++i) batch[i]->result = std::move(results[i]);
    return;
  }
  if (batch.size() == 1 || absl::IsUnavailable(status)) {
    for (PendingInsert* entry : batch) entry->result = status;
    return;
  }
  // One entry spoiled the statement for all: give each its own.
  for (PendingInsert* entry : batch) InsertBatch({entry});
}

absl::StatusOr<InsertedNotification> PgNotificationStore::InsertNotification(
    const NotificationRecord& notification, const std::vector<ResolvedTarget>& targets) {
  return std::move(InsertNotifications({{.notification = &notification, .targets = &targets}})[0]);
}

std::vector<absl::StatusOr<InsertedNotification>> PgNotificationStore::InsertNotifications(
    const std::vector<NotificationToInsert>& entries) {
  std::vector<PendingInsert> mine(entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    mine[i] = {.notification = entries[i].notification,
               .targets = entries[i].targets,
               .claim_count = entries[i].claim_count,
               .claim_lease = entries[i].claim_lease,
               .result = std::nullopt};
  }
  const auto all_done = [&mine] {
    for (const PendingInsert& entry : mine) {
      if (!entry.result.has_value()) return false;
    }
    return true;
  };
  absl::MutexLock lock(&batch_mu_);
  for (PendingInsert& entry : mine) insert_queue_.push_back(&entry);
  while (!all_done()) {
    if (running_batches_ < max_insert_batches_ && !insert_queue_.empty()) {
      // Lead a batch: whatever is queued, this call's entry or not.
      std::vector<PendingInsert*> batch;
      while (!insert_queue_.empty() && batch.size() < kMaxInsertBatch) {
        batch.push_back(insert_queue_.front());
        insert_queue_.pop_front();
      }
      ++running_batches_;
      batch_mu_.Unlock();
      InsertBatch(batch);
      batch_mu_.Lock();
      --running_batches_;
      batch_done_.SignalAll();
      continue;
    }
    batch_done_.Wait(&batch_mu_);
  }
  std::vector<absl::StatusOr<InsertedNotification>> results;
  results.reserve(mine.size());
  for (PendingInsert& entry : mine) results.push_back(*std::move(entry.result));
  return results;
}

absl::StatusOr<NotificationRecord> PgNotificationStore::GetNotification(
    const std::string& tenant_id, const std::string& notification_id) {
  return RunPgOperation(*pool_, observer_, "get_notification", PgRetry::kOnLostConnection,
                        [&](PgSession& session) -> absl::StatusOr<NotificationRecord> {
                          pqxx::nontransaction tx(session.connection());
                          const pqxx::result rows =
                              session.Exec(tx, Statements().get, tenant_id, notification_id);
                          if (rows.empty()) return NotificationNotFound(notification_id);
                          return NotificationOf(rows[0]);
                        });
}

absl::StatusOr<Page<DeliveryRecord>> PgNotificationStore::ListDeliveries(
    const std::string& tenant_id, const std::string& notification_id, int page_size,
    const std::string& page_token) {
  int64_t after = 0;
  if (!page_token.empty()) {
    absl::StatusOr<std::string> position = DecodePageToken(kDeliveriesList, page_token);
    if (!position.ok()) return position.status();
    if (!absl::SimpleAtoi(*position, &after)) return InvalidPosition();
  }
  const int limit = EffectivePageSize(page_size);
  return RunPgOperation(*pool_, observer_, "list_deliveries", PgRetry::kOnLostConnection,
                        [&](PgSession& session) -> absl::StatusOr<Page<DeliveryRecord>> {
                          pqxx::nontransaction tx(session.connection());
                          const pqxx::result rows =
                              session.Exec(tx, Statements().list_deliveries, tenant_id,
                                           notification_id, after, limit + 1);
                          if (rows.empty()) return NotificationNotFound(notification_id);
                          Page<DeliveryRecord> page;
                          for (const pqxx::row& row : rows) {
                            if (row["delivery_id"].is_null())
                              break;  // the notification has no more
                            if (static_cast<int>(page.items.size()) == limit) {
                              page.next_page_token = EncodePageToken(
                                  kDeliveriesList, absl::StrCat(page.items.back().delivery_id));
                              break;
                            }
                            page.items.push_back(DeliveryOf(row));
                          }
                          return page;
                        });
}

absl::StatusOr<Page<NotificationRecord>> PgNotificationStore::ListNotifications(
    const std::string& tenant_id, int page_size, const std::string& page_token) {
  std::optional<int64_t> after_micros;
  std::string after_id;
  if (!page_token.empty()) {
    absl::StatusOr<std::string> position = DecodePageToken(kNotificationsList, page_token);
    if (!position.ok()) return position.status();
    const size_t slash = position->find('/');
    int64_t micros = 0;
    if (slash == std::string::npos || !absl::SimpleAtoi(position->substr(0, slash), &micros)) {
      return InvalidPosition();
    }
    after_micros = micros;
    after_id = position->substr(slash + 1);
  }
  const int limit = EffectivePageSize(page_size);
  return RunPgOperation(*pool_, observer_, "list_notifications", PgRetry::kOnLostConnection,
                        [&](PgSession& session) -> absl::StatusOr<Page<NotificationRecord>> {
                          pqxx::nontransaction tx(session.connection());
                          const pqxx::result rows =
                              tx.exec_prepared(session.Prepare(Statements().list), tenant_id,
                                               after_micros, after_id, limit + 1);
                          Page<NotificationRecord> page;
                          const int count = std::min<int>(static_cast<int>(rows.size()), limit);
                          page.items.reserve(count);
                          for (int i = 0; i < count; ++i)
                            page.items.push_back(NotificationOf(rows[i]));
                          if (static_cast<int>(rows.size()) > limit) {
                            page.next_page_token = EncodePageToken(
                                kNotificationsList, NotificationPosition(page.items.back()));
                          }
                          return page;
                        });
}

absl::StatusOr<int64_t> PgNotificationStore::CancelNotification(
    const std::string& tenant_id, const std::string& notification_id) {
  // Not retried: after a lost reply the cancel may have happened, and a
  // second run would report 0 cancelled deliveries.
  return RunPgOperation(*pool_, observer_, "cancel_notification", PgRetry::kNever,
                        [&](PgSession& session) -> absl::StatusOr<int64_t> {
                          pqxx::nontransaction tx(session.connection());
                          const pqxx::row row = session.Exec(tx, Statements().cancel, tenant_id,
                                                             notification_id)
                                                    .at(0);
                          if (row["found"].as<int64_t>() == 0) {
                            return NotificationNotFound(notification_id);
                          }
                          return row["cancelled"].as<int64_t>();
                        });
}

absl::StatusOr<std::vector<ClaimedDelivery>> PgNotificationStore::ClaimDueDeliveries(
    int max, absl::Duration lease) {
  if (max < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("claim_deliveries: max must be at least 1, got ", max));
  }
  const int64_t lease_micros = std::max<int64_t>(0, absl::ToInt64Microseconds(lease));
  // A retry after a lost reply is harmless: rows that the lost attempt
  // claimed become due again when its lease ends.
  return RunPgOperation(*pool_, observer_, "claim_deliveries", PgRetry::kOnLostConnection,
                        [&](PgSession& session) -> absl::StatusOr<std::vector<ClaimedDelivery>> {
                          pqxx::nontransaction tx(session.connection());
                          const pqxx::result rows =
                              session.Exec(tx, Statements().claim, max, lease_micros);
                          std::vector<ClaimedDelivery> claimed;
                          claimed.reserve(rows.size());
                          for (const pqxx::row& row : rows) claimed.push_back(ClaimedOf(row));
                          return claimed;
                        });
}

absl::Status PgNotificationStore::ExtendLeases(const std::vector<int64_t>& delivery_ids,
                                              absl::Duration lease) {
  if (delivery_ids.empty()) return absl::OkStatus();
  const std::string ids_literal = Int64ArrayLiteral(delivery_ids);
  const int64_t lease_micros = std::max<int64_t>(0, absl::ToInt64Microseconds(lease));
  // Idempotent: a retry after a lost reply only moves the lease a little later.
  return RunPgOperation(*pool_, observer_, "extend_leases", PgRetry::kOnLostConnection,
                        [&](PgSession& session) -> absl::Status {
                          pqxx::nontransaction tx(session.connection());
                          session.Exec(tx, Statements().extend_leases, ids_literal,
                                       lease_micros);
                          return absl::OkStatus();
                        });
}

absl::Status PgNotificationStore::RecordOutcomes(const std::vector<DeliveryOutcome>& outcomes) {
  if (outcomes.empty()) return absl::OkStatus();
  // Final states without an error, by state (finish_deliveries); the rest
  // (retries, errors) row by row (record_outcomes).
  std::map<std::string_view, std::vector<int64_t>> finished;
  std::vector<int64_t> ids;
  std::vector<std::string> states;
  std::vector<int64_t> retry_micros;
  std::vector<std::string> errors;
  for (const DeliveryOutcome& outcome : outcomes) {
    const std::string_view state = DeliveryStateName(outcome.state);
    if (DeliveryStateFromName(state) != outcome.state) {
      return absl::InvalidArgumentError(
          absl::StrCat("outcome state: not a delivery state (delivery ", outcome.delivery_id, ")"));
    }
    if (outcome.state != DeliveryState::kPending && outcome.error.empty()) {
      finished[state].push_back(outcome.delivery_id);
      continue;
    }
    ids.push_back(outcome.delivery_id);
    states.emplace_back(state);
    retry_micros.push_back(std::max<int64_t>(0, absl::ToInt64Microseconds(outcome.retry_after)));
    errors.push_back(outcome.error);
  }
  std::vector<std::pair<std::string, std::string>> finished_literals;  // (ids, state)
  for (const auto& [state, state_ids] : finished) {
    finished_literals.emplace_back(Int64ArrayLiteral(state_ids), std::string(state));
  }
  const std::string ids_literal = Int64ArrayLiteral(ids);
  const std::string states_literal = PgTextArrayLiteral(states);
  const std::string retry_literal = Int64ArrayLiteral(retry_micros);
  const std::string errors_literal = PgTextArrayLiteral(errors);
  const size_t statements = finished_literals.size() + (ids.empty() ? 0 : 1);
  // Idempotent: running it twice leaves the same states (only the retry
  // time moves a little later). Several statements share one commit.
  return RunPgOperation(*pool_, observer_, "record_outcomes", PgRetry::kOnLostConnection,
                        [&](PgSession& session) -> absl::Status {
                          const auto run = [&](pqxx::transaction_base& tx) {
                            for (const auto& [state_ids, state] : finished_literals) {
                              session.Exec(tx, Statements().finish_deliveries, state_ids, state);
                            }
                            if (!ids.empty()) {
                              session.Exec(tx, Statements().record_outcomes, ids_literal,
                                           states_literal, retry_literal, errors_literal);
                            }
                          };
                          if (statements == 1) {
                            pqxx::nontransaction tx(session.connection());
                            run(tx);
                          } else {
                            pqxx::work tx(session.connection());
                            run(tx);
                            tx.commit();
                          }
                          return absl::OkStatus();
                        });
}

absl::StatusOr<StoredStats> PgNotificationStore::GetStats(const std::string& tenant_id) {
  return RunPgOperation(
      *pool_, observer_, "get_stats", PgRetry::kOnLostConnection,
      [&](PgSession& session) -> absl::StatusOr<StoredStats> {
        pqxx::nontransaction tx(session.connection());
        const pqxx::result rows = tx.exec_prepared(session.Prepare(Statements().stats), tenant_id);
        StoredStats stats;
        for (const pqxx::row& row : rows) {
          stats.notifications = row["notifications"].as<int64_t>();
          stats.devices = row["devices"].as<int64_t>();
          if (row["qos"].is_null()) continue;  // the tenant has no deliveries
          const DeliveryTotals totals = TotalsOf(row);
          Add(totals, &stats.total);
          Add(totals, &stats.by_qos[row["qos"].as<int>()]);
          Add(totals, &stats.by_provider[TextOf(row["provider"])]);
          const std::optional<absl::Time> last_sent = OptionalTimeOf(row["last_sent_us"]);
          if (last_sent.has_value() &&
              (!stats.last_sent_time.has_value() || *last_sent > *stats.last_sent_time)) {
            stats.last_sent_time = last_sent;
          }
        }
        return stats;
      });
}

absl::StatusOr<int64_t> PgNotificationStore::CountBacklog() {
  return RunPgOperation(
      *pool_, observer_, "count_backlog", PgRetry::kOnLostConnection,
      [&](PgSession& session) -> absl::StatusOr<int64_t> {
        pqxx::nontransaction tx(session.connection());
        return tx.exec_prepared1(session.Prepare(Statements().backlog))[0].as<int64_t>();
      });
}

}  // namespace herald
