// PgNotificationStore against a real PostgreSQL (a scratch database per
// test): the outbox life cycle, leases, concurrency and idempotency.
#include "service/store/pg_notification_store.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <latch>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "pqxx/pqxx"
#include "service/core/page_token.h"
#include "service/store/pg_connection_pool.h"
#include "service/store/pg_device_store.h"
#include "tests/integration/store/store_test_support.h"
#include "tests/testing/tcp_proxy.h"
#include "tests/testing/test_servers.h"

namespace herald {
namespace {

using ::herald::testing::CreateScratchDatabase;
using ::herald::testing::MakePool;
using ::herald::testing::RecordingQueryObserver;
using ::herald::testing::RowsReadFrom;
using ::herald::testing::TcpProxy;
using ::herald::testing::WaitFor;

// `time` cut to whole microseconds, the precision of a PostgreSQL timestamp.
absl::Time Micros(absl::Time time) { return absl::FromUnixMicros(absl::ToUnixMicros(time)); }

std::vector<ResolvedTarget> Targets(int count, const std::string& prefix = "dev") {
  std::vector<ResolvedTarget> targets;
  targets.reserve(count);
  for (int i = 0; i < count; ++i) {
    const std::string id = absl::StrCat(prefix, "-", i);
    targets.push_back({.device_id = id, .topic = absl::StrCat("devices/", id, "/notifications")});
  }
  return targets;
}

NotificationRecord Record(const std::string& id, const std::vector<ResolvedTarget>& targets,
                          const std::string& tenant = kDefaultTenant) {
  NotificationRecord record;
  record.tenant_id = tenant;
  record.notification_id = id;
  record.target.kind = TargetKind::kDeviceIds;
  for (const ResolvedTarget& target : targets) record.target.values.push_back(target.device_id);
  record.content.title = "Door open";
  record.content.body = "The front door is open";
  record.content.data = {{"door", "front"}, {"quote", "\"x\""}};
  record.content.priority = Priority::kHigh;
  record.options.qos = 1;
  record.payload = absl::StrCat(R"({"id":")", id, R"(","title":"Door open"})");
  record.request_fingerprint = absl::StrCat("fingerprint-", id);
  return record;
}

class PgNotificationStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    url_ = CreateScratchDatabase("notification_store");
    pool_ = MakePool(url_, {.size = 8});
    ASSERT_NE(pool_, nullptr);
    store_ = std::make_unique<PgNotificationStore>(pool_.get(), &observer_);
  }

  NotificationRecord MustInsert(const NotificationRecord& record,
                                const std::vector<ResolvedTarget>& targets) {
    absl::StatusOr<InsertedNotification> inserted = store_->InsertNotification(record, targets);
    EXPECT_TRUE(inserted.ok()) << inserted.status();
    if (!inserted.ok()) return {};
    EXPECT_FALSE(inserted->duplicate);
    return inserted->notification;
  }

  // Inserts `record` with its first `claim_count` deliveries claimed at
  // insert for `lease`, as the Notifier does when it hands them over.
  absl::StatusOr<InsertedNotification> InsertClaiming(const NotificationRecord& record,
                                                      const std::vector<ResolvedTarget>& targets,
                                                      int64_t claim_count, absl::Duration lease) {
    std::vector<absl::StatusOr<InsertedNotification>> inserted = store_->InsertNotifications(
        {{.notification = &record, .targets = &targets, .claim_count = claim_count,
          .claim_lease = lease}});
    EXPECT_EQ(inserted.size(), 1u);
    return std::move(inserted.at(0));
  }

  NotificationRecord MustGet(const std::string& id, const std::string& tenant = kDefaultTenant) {
    absl::StatusOr<NotificationRecord> record = store_->GetNotification(tenant, id);
    EXPECT_TRUE(record.ok()) << record.status();
    return record.ok() ? *record : NotificationRecord{};
  }

  std::vector<ClaimedDelivery> MustClaim(int max, absl::Duration lease = absl::Seconds(60)) {
    absl::StatusOr<std::vector<ClaimedDelivery>> claimed = store_->ClaimDueDeliveries(max, lease);
    EXPECT_TRUE(claimed.ok()) << claimed.status();
    return claimed.ok() ? *claimed : std::vector<ClaimedDelivery>{};
  }

  // Claims (with a 60 s lease) until something is due again, e.g. once a
  // lease has run out; waits up to 15 s.
  std::vector<ClaimedDelivery> AwaitClaim(int max) {
    std::vector<ClaimedDelivery> claimed;
    EXPECT_TRUE(WaitFor(
        [&] {
          claimed = MustClaim(max);
          return !claimed.empty();
        },
        absl::Seconds(15)));
    return claimed;
  }

  std::vector<DeliveryRecord> AllDeliveries(const std::string& id) {
    absl::StatusOr<Page<DeliveryRecord>> page =
        store_->ListDeliveries(kDefaultTenant, id, 1000, "");
    EXPECT_TRUE(page.ok()) << page.status();
    return page.ok() ? page->items : std::vector<DeliveryRecord>{};
  }

  std::string url_;
  RecordingQueryObserver observer_;
  std::unique_ptr<PgConnectionPool> pool_;
  std::unique_ptr<PgNotificationStore> store_;
};

TEST_F(PgNotificationStoreTest, InsertThenGetRoundTripsEveryField) {
  NotificationRecord record = Record("n1", Targets(3));
  record.content.priority = Priority::kUrgent;
  record.options.qos = 2;
  record.options.retain = true;
  record.options.ttl = absl::Seconds(90) + absl::Microseconds(5);
  record.options.idempotency_key = "key-1";
  record.expire_time = absl::FromUnixMicros(4102444800000001);  // 2100
  record.payload = std::string("{\0\xff\x01}", 5);              // any bytes survive

  const absl::Time before = absl::Now() - absl::Seconds(5);
  const NotificationRecord inserted = MustInsert(record, Targets(3));
  EXPECT_GE(inserted.create_time, before);
  EXPECT_EQ(inserted.counts.pending, 3);
  EXPECT_EQ(inserted.state, NotificationState::kAccepted);

  const NotificationRecord got = MustGet("n1");
  EXPECT_EQ(got.tenant_id, kDefaultTenant);
  EXPECT_EQ(got.notification_id, "n1");
  EXPECT_EQ(got.target.kind, TargetKind::kDeviceIds);
  EXPECT_EQ(got.target.values, (std::vector<std::string>{"dev-0", "dev-1", "dev-2"}));
  EXPECT_EQ(got.content.title, "Door open");
  EXPECT_EQ(got.content.body, "The front door is open");
  EXPECT_EQ(got.content.data, record.content.data);
  EXPECT_EQ(got.content.priority, Priority::kUrgent);
  EXPECT_EQ(got.options.qos, 2);
  EXPECT_TRUE(got.options.retain);
  EXPECT_EQ(got.options.ttl, record.options.ttl);
  EXPECT_FALSE(got.options.send_time.has_value());
  EXPECT_EQ(got.options.idempotency_key, "key-1");
  EXPECT_EQ(got.expire_time, record.expire_time);
  EXPECT_EQ(got.payload, record.payload);
  EXPECT_EQ(got.request_fingerprint, record.request_fingerprint);
  EXPECT_EQ(got.create_time, inserted.create_time);
  EXPECT_EQ(got.counts.pending, 3);
  EXPECT_EQ(got.counts.Total(), 3);
  EXPECT_EQ(got.state, NotificationState::kAccepted);

  const std::vector<DeliveryRecord> deliveries = AllDeliveries("n1");
  ASSERT_EQ(deliveries.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(deliveries[i].device_id, absl::StrCat("dev-", i));  // target order
    EXPECT_EQ(deliveries[i].topic, absl::StrCat("devices/dev-", i, "/notifications"));
    EXPECT_EQ(deliveries[i].qos, 2);
    EXPECT_EQ(deliveries[i].state, DeliveryState::kPending);
    EXPECT_EQ(deliveries[i].attempts, 0);
    EXPECT_FALSE(deliveries[i].last_attempt_time.has_value());
  }
  EXPECT_TRUE(observer_.Saw("insert_notification"));
  EXPECT_TRUE(observer_.Saw("get_notification"));
  EXPECT_TRUE(observer_.Saw("list_deliveries"));
}

TEST_F(PgNotificationStoreTest, BatchInsertRoundTripsEveryField) {
  // Several notifications take the bulk path (two statements for the whole
  // batch): every field, odd characters and NULLs included, must survive it
  // exactly as with one insert per notification.
  const std::vector<ResolvedTarget> targets_a = Targets(2, "a");
  const std::vector<ResolvedTarget> targets_b = Targets(1, "b");
  const std::vector<ResolvedTarget> raw = {{.device_id = "", .topic = "site/1/alarm"}};
  NotificationRecord a = Record("n-a", targets_a);
  a.content.title = "quote \" backslash \\ comma , brace { } NULL";
  a.content.body = "";
  a.content.data = {{"k,1", "v\"1"}, {"NULL", "{x}"}, {"empty", ""}};
  a.options.qos = 2;
  a.options.retain = true;
  a.options.ttl = absl::Seconds(90) + absl::Microseconds(5);
  a.options.idempotency_key = "key-a";
  a.expire_time = absl::FromUnixMicros(4102444800000001);
  a.payload = std::string("{\0\xff\x01}", 5);
  NotificationRecord b = Record("n-b", targets_b);
  b.content.data.clear();
  b.content.priority = Priority::kLow;
  b.options.qos = 0;
  b.options.send_time = absl::Now() + absl::Hours(1);
  NotificationRecord c = Record("n-c", raw);
  c.target.kind = TargetKind::kTopic;
  c.target.values = {"site/1/alarm"};

  std::vector<absl::StatusOr<InsertedNotification>> inserted = store_->InsertNotifications(
      {{.notification = &a, .targets = &targets_a},
       {.notification = &b, .targets = &targets_b},
       {.notification = &c, .targets = &raw}});
  ASSERT_EQ(inserted.size(), 3u);
  for (const auto& result : inserted) ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(inserted[0]->notification.state, NotificationState::kAccepted);
  EXPECT_EQ(inserted[1]->notification.state, NotificationState::kScheduled);
  EXPECT_TRUE(observer_.Saw("insert_notification_batch"));

  for (const NotificationRecord* want : {&a, &b, &c}) {
    const NotificationRecord got = MustGet(want->notification_id);
    EXPECT_EQ(got.target.kind, want->target.kind) << want->notification_id;
    EXPECT_EQ(got.target.values, want->target.values) << want->notification_id;
    EXPECT_EQ(got.content.title, want->content.title) << want->notification_id;
    EXPECT_EQ(got.content.body, want->content.body) << want->notification_id;
    EXPECT_EQ(got.content.data, want->content.data) << want->notification_id;
    EXPECT_EQ(got.content.priority, want->content.priority) << want->notification_id;
    EXPECT_EQ(got.options.qos, want->options.qos) << want->notification_id;
    EXPECT_EQ(got.options.retain, want->options.retain) << want->notification_id;
    EXPECT_EQ(got.options.ttl, want->options.ttl) << want->notification_id;
    EXPECT_EQ(got.options.idempotency_key, want->options.idempotency_key)
        << want->notification_id;
    EXPECT_EQ(got.expire_time, want->expire_time) << want->notification_id;
    EXPECT_EQ(got.payload, want->payload) << want->notification_id;
    EXPECT_EQ(got.request_fingerprint, want->request_fingerprint) << want->notification_id;
  }
  EXPECT_EQ(MustGet("n-b").options.send_time.has_value(), true);
  const std::vector<DeliveryRecord> deliveries_a = AllDeliveries("n-a");
  ASSERT_EQ(deliveries_a.size(), 2u);
  EXPECT_EQ(deliveries_a[0].device_id, "a-0");
  EXPECT_EQ(deliveries_a[1].topic, "devices/a-1/notifications");
  EXPECT_EQ(deliveries_a[0].qos, 2);
  const std::vector<DeliveryRecord> deliveries_c = AllDeliveries("n-c");
  ASSERT_EQ(deliveries_c.size(), 1u);
  EXPECT_EQ(deliveries_c[0].device_id, "");
  EXPECT_EQ(deliveries_c[0].topic, "site/1/alarm");
  // Only a's deliveries are due now: b is scheduled.
  EXPECT_EQ(MustClaim(10).size(), 3u);
}

TEST_F(PgNotificationStoreTest, BatchWithRepeatedIdempotencyKeysAnswersEachEntry) {
  const std::vector<ResolvedTarget> targets = Targets(1);
  NotificationRecord first = Record("n1", targets);
  first.options.idempotency_key = "order-7";
  NotificationRecord same = first;  // a retry inside the same batch
  same.notification_id = "n2";
  NotificationRecord other = Record("n3", targets);
  other.options.idempotency_key = "order-7";
  other.request_fingerprint = "different content";
  NotificationRecord plain = Record("n4", targets);
  std::vector<absl::StatusOr<InsertedNotification>> inserted = store_->InsertNotifications(
      {{.notification = &first, .targets = &targets},
       {.notification = &same, .targets = &targets},
       {.notification = &other, .targets = &targets},
       {.notification = &plain, .targets = &targets}});
  ASSERT_EQ(inserted.size(), 4u);
  ASSERT_TRUE(inserted[0].ok()) << inserted[0].status();
  EXPECT_FALSE(inserted[0]->duplicate);
  ASSERT_TRUE(inserted[1].ok()) << inserted[1].status();
  EXPECT_TRUE(inserted[1]->duplicate);
  EXPECT_EQ(inserted[1]->notification.notification_id, "n1");
  EXPECT_EQ(inserted[2].status().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(inserted[3].ok()) << inserted[3].status();
  EXPECT_FALSE(inserted[3]->duplicate);
  EXPECT_EQ(store_->GetNotification(kDefaultTenant, "n2").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(AllDeliveries("n1").size(), 1u);
  EXPECT_EQ(AllDeliveries("n4").size(), 1u);
  absl::StatusOr<int64_t> backlog = store_->CountBacklog();
  ASSERT_TRUE(backlog.ok());
  EXPECT_EQ(*backlog, 2) << "one delivery each for n1 and n4";
}

TEST_F(PgNotificationStoreTest, GetMissingOrOtherTenantIsNotFound) {
  MustInsert(Record("n1", Targets(1)), Targets(1));
  EXPECT_EQ(store_->GetNotification(kDefaultTenant, "nope").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->GetNotification("other-tenant", "n1").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->ListDeliveries("other-tenant", "n1", 10, "").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->CancelNotification("other-tenant", "n1").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(PgNotificationStoreTest, DuplicateNotificationIdIsAlreadyExists) {
  MustInsert(Record("n1", Targets(1)), Targets(1));
  NotificationRecord other = Record("n1", Targets(1));
  other.content.title = "Window open";
  other.payload = R"({"id":"n1","title":"Window open"})";
  absl::StatusOr<InsertedNotification> again = store_->InsertNotification(other, Targets(1));
  EXPECT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists) << again.status();
  EXPECT_TRUE(absl::StrContains(again.status().message(), "n1")) << again.status();
  EXPECT_EQ(MustGet("n1").content.title, "Door open");
}

// The same notification again (same id and payload: what a retry after a
// lost reply sends) is stored once and answered as stored.
TEST_F(PgNotificationStoreTest, TheSameNotificationAgainIsStoredOnce) {
  const NotificationRecord first = MustInsert(Record("n1", Targets(2)), Targets(2));
  absl::StatusOr<InsertedNotification> again =
      store_->InsertNotification(Record("n1", Targets(2)), Targets(2));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_FALSE(again->duplicate);
  EXPECT_EQ(again->notification.create_time, first.create_time);
  EXPECT_EQ(again->notification.counts.pending, 2);
  EXPECT_EQ(AllDeliveries("n1").size(), 2u);
}

// The reply to a batch's insert was lost with the connection after the
// statement committed: the retry on a new connection stores nothing twice
// and answers with what the lost attempt stored and claimed.
TEST_F(PgNotificationStoreTest, ABatchWhoseInsertReplyWasLostIsStoredOnce) {
  const size_t port_at = url_.find("127.0.0.1:");
  ASSERT_NE(port_at, std::string::npos) << url_;
  const size_t port_end = url_.find('/', port_at);
  int pg_port = 0;
  ASSERT_TRUE(absl::SimpleAtoi(url_.substr(port_at + 10, port_end - port_at - 10), &pg_port));
  TcpProxy proxy(pg_port);
  ASSERT_TRUE(proxy.Start().ok());
  const std::string proxied_url = absl::StrCat(url_.substr(0, port_at), "127.0.0.1:",
                                               proxy.port(), url_.substr(port_end));
  std::unique_ptr<PgConnectionPool> one = MakePool(proxied_url, {.size = 1});
  ASSERT_NE(one, nullptr);
  PgNotificationStore store(one.get(), &observer_);
  const auto insert_pair = [&store](const std::string& name, int64_t claim_count) {
    const std::vector<ResolvedTarget> targets = Targets(2, name);
    const NotificationRecord a = Record(name + "-a", targets);
    NotificationRecord b = Record(name + "-b", targets);
    b.options.idempotency_key = name + "-key";
    return store.InsertNotifications(
        {{.notification = &a, .targets = &targets, .claim_count = claim_count,
          .claim_lease = absl::Seconds(60)},
         {.notification = &b, .targets = &targets, .claim_count = claim_count,
          .claim_lease = absl::Seconds(60)}});
  };
  // The connection is open and the statements prepared before a reply of
  // the insert itself is lost.
  for (const auto& result : insert_pair("warm", 0)) ASSERT_TRUE(result.ok()) << result.status();

  proxy.SetDropReplies(true);
  std::vector<absl::StatusOr<InsertedNotification>> results;
  std::thread inserter([&] { results = insert_pair("lost", 2); });
  // The statement commits; its reply goes nowhere.
  pqxx::connection direct(url_);
  EXPECT_TRUE(WaitFor(
      [&] {
        pqxx::nontransaction tx(direct);
        return tx.exec1("SELECT count(*) FROM deliveries WHERE notification_id LIKE 'lost-%'")[0]
                   .as<int>() == 4;
      },
      absl::Seconds(20)));
  proxy.SetDropReplies(false);
  proxy.CutConnections();
  inserter.join();

  ASSERT_EQ(results.size(), 2u);
  for (const auto& result : results) {
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_FALSE(result->duplicate) << result->notification.notification_id;
    EXPECT_EQ(result->claimed_delivery_ids.size(), 2u) << result->notification.notification_id;
  }
  EXPECT_EQ(results[0]->notification.notification_id, "lost-a");
  EXPECT_EQ(results[1]->notification.notification_id, "lost-b");
  pqxx::nontransaction tx(direct);
  EXPECT_EQ(tx.exec1("SELECT count(*) FROM notifications WHERE notification_id LIKE 'lost-%'")[0]
                .as<int>(),
            2);
  EXPECT_EQ(tx.exec1("SELECT count(*) FROM deliveries WHERE notification_id LIKE 'lost-%'"
                     " AND attempts = 1 AND state = 'pending'")[0]
                .as<int>(),
            4);
}

TEST_F(PgNotificationStoreTest, RawTopicTargetHasNoDevice) {
  NotificationRecord record = Record("broadcast", {});
  record.target = {.kind = TargetKind::kTopic, .values = {"broadcast/all"}};
  MustInsert(record, {{.device_id = "", .topic = "broadcast/all"}});
  const NotificationRecord got = MustGet("broadcast");
  EXPECT_EQ(got.target.kind, TargetKind::kTopic);
  const std::vector<DeliveryRecord> deliveries = AllDeliveries("broadcast");
  ASSERT_EQ(deliveries.size(), 1u);
  EXPECT_EQ(deliveries[0].device_id, "");
  EXPECT_EQ(deliveries[0].topic, "broadcast/all");
}

TEST_F(PgNotificationStoreTest, ClaimPublishRecordLifeCycle) {
  const NotificationRecord inserted = MustInsert(Record("n1", Targets(3)), Targets(3));

  std::vector<ClaimedDelivery> claimed = MustClaim(10);
  ASSERT_EQ(claimed.size(), 3u);
  for (const ClaimedDelivery& delivery : claimed) {
    EXPECT_EQ(delivery.notification_id, "n1");
    EXPECT_EQ(*delivery.payload, inserted.payload);
    EXPECT_EQ(delivery.qos, 1);
    EXPECT_FALSE(delivery.retain);
    EXPECT_EQ(delivery.attempts, 1);
    EXPECT_EQ(delivery.accept_time, inserted.create_time);
    EXPECT_FALSE(delivery.expire_time.has_value());
  }
  EXPECT_TRUE(claimed[0].delivery_id < claimed[1].delivery_id &&
              claimed[1].delivery_id < claimed[2].delivery_id);
  // Leased: nobody else gets them.
  EXPECT_TRUE(MustClaim(10).empty());
  EXPECT_EQ(MustGet("n1").state, NotificationState::kDelivering);

  ASSERT_TRUE(store_
                  ->RecordOutcomes({
                      {.delivery_id = claimed[0].delivery_id, .state = DeliveryState::kDelivered},
                      {.delivery_id = claimed[1].delivery_id,
                       .state = DeliveryState::kPending,
                       .retry_after = absl::ZeroDuration(),
                       .error = "timeout waiting for PUBACK"},
                      {.delivery_id = claimed[2].delivery_id,
                       .state = DeliveryState::kFailed,
                       .error = "not authorised (135)"},
                      {.delivery_id = 987654321, .state = DeliveryState::kDelivered},  // unknown
                  })
                  .ok());

  NotificationRecord got = MustGet("n1");
  EXPECT_EQ(got.counts.delivered, 1);
  EXPECT_EQ(got.counts.pending, 1);
  EXPECT_EQ(got.counts.pending_attempted, 1);
  EXPECT_EQ(got.counts.failed, 1);
  EXPECT_EQ(got.state, NotificationState::kDelivering);

  // The retry is due at once (retry_after 0) and counts a second attempt.
  claimed = MustClaim(10);
  ASSERT_EQ(claimed.size(), 1u);
  EXPECT_EQ(claimed[0].attempts, 2);
  ASSERT_TRUE(store_
                  ->RecordOutcomes(
                      {{.delivery_id = claimed[0].delivery_id, .state = DeliveryState::kDelivered}})
                  .ok());

  got = MustGet("n1");
  EXPECT_EQ(got.counts.delivered, 2);
  EXPECT_EQ(got.counts.failed, 1);
  EXPECT_EQ(got.counts.pending, 0);
  EXPECT_EQ(got.state, NotificationState::kPartiallyDelivered);

  const std::vector<DeliveryRecord> deliveries = AllDeliveries("n1");
  ASSERT_EQ(deliveries.size(), 3u);
  EXPECT_EQ(deliveries[0].state, DeliveryState::kDelivered);
  EXPECT_EQ(deliveries[0].attempts, 1);
  EXPECT_TRUE(deliveries[0].complete_time.has_value());
  EXPECT_TRUE(deliveries[0].last_attempt_time.has_value());
  EXPECT_EQ(deliveries[1].state, DeliveryState::kDelivered);
  EXPECT_EQ(deliveries[1].attempts, 2);
  EXPECT_EQ(deliveries[1].last_error, "timeout waiting for PUBACK");  // kept from the retry
  EXPECT_EQ(deliveries[2].state, DeliveryState::kFailed);
  EXPECT_EQ(deliveries[2].last_error, "not authorised (135)");
  EXPECT_TRUE(deliveries[2].complete_time.has_value());

  // Completed deliveries are never claimed again.
  EXPECT_TRUE(MustClaim(10).empty());
  EXPECT_TRUE(observer_.Saw("claim_deliveries"));
  EXPECT_TRUE(observer_.Saw("record_outcomes"));
}

TEST_F(PgNotificationStoreTest, AllDeliveredMeansDelivered) {
  MustInsert(Record("n1", Targets(2)), Targets(2));
  std::vector<DeliveryOutcome> outcomes;
  for (const ClaimedDelivery& delivery : MustClaim(10)) {
    outcomes.push_back({.delivery_id = delivery.delivery_id, .state = DeliveryState::kDelivered});
  }
  ASSERT_EQ(outcomes.size(), 2u);
  ASSERT_TRUE(store_->RecordOutcomes(outcomes).ok());
  EXPECT_EQ(MustGet("n1").state, NotificationState::kDelivered);
}

TEST_F(PgNotificationStoreTest, EveryDeliveryStateNameIsAcceptedByTheSchema) {
  // The SQL spells the states out; they must be DeliveryStateName's values.
  const std::vector<DeliveryState> terminal = {
      DeliveryState::kDelivered, DeliveryState::kNoSubscriber, DeliveryState::kReceived,
      DeliveryState::kFailed,    DeliveryState::kExpired,      DeliveryState::kCancelled};
  MustInsert(Record("n1", Targets(6)), Targets(6));
  const std::vector<ClaimedDelivery> claimed = MustClaim(10);
  ASSERT_EQ(claimed.size(), terminal.size());
  std::vector<DeliveryOutcome> outcomes;
  for (size_t i = 0; i < terminal.size(); ++i) {
    outcomes.push_back({.delivery_id = claimed[i].delivery_id, .state = terminal[i]});
  }
  ASSERT_TRUE(store_->RecordOutcomes(outcomes).ok());
  const std::vector<DeliveryRecord> deliveries = AllDeliveries("n1");
  ASSERT_EQ(deliveries.size(), terminal.size());
  for (size_t i = 0; i < terminal.size(); ++i) {
    EXPECT_EQ(deliveries[i].state, terminal[i]) << DeliveryStateName(terminal[i]);
  }
  EXPECT_EQ(DeliveryStateName(DeliveryState::kPending), "pending");
}

TEST_F(PgNotificationStoreTest, RetryBackoffDelaysTheNextClaim) {
  MustInsert(Record("n1", Targets(1)), Targets(1));
  std::vector<ClaimedDelivery> claimed = MustClaim(10);
  ASSERT_EQ(claimed.size(), 1u);
  ASSERT_TRUE(store_
                  ->RecordOutcomes({{.delivery_id = claimed[0].delivery_id,
                                     .state = DeliveryState::kPending,
                                     .retry_after = absl::Hours(1),
                                     .error = "broker unavailable"}})
                  .ok());
  EXPECT_TRUE(MustClaim(10).empty());
  const NotificationRecord got = MustGet("n1");
  EXPECT_EQ(got.counts.pending_attempted, 1);
  EXPECT_EQ(got.state, NotificationState::kDelivering);
  EXPECT_EQ(AllDeliveries("n1")[0].last_error, "broker unavailable");
}

TEST_F(PgNotificationStoreTest, ScheduledNotificationIsNotDueBeforeItsSendTime) {
  NotificationRecord later = Record("later", Targets(2));
  later.options.send_time = Micros(absl::Now() + absl::Hours(1));
  const NotificationRecord inserted = MustInsert(later, Targets(2));
  EXPECT_EQ(inserted.state, NotificationState::kScheduled);
  EXPECT_EQ(MustGet("later").state, NotificationState::kScheduled);
  EXPECT_EQ(MustGet("later").options.send_time, later.options.send_time);

  NotificationRecord past = Record("past", Targets(1, "p"));
  past.options.send_time = absl::Now() - absl::Minutes(1);
  EXPECT_EQ(MustInsert(past, Targets(1, "p")).state, NotificationState::kAccepted);

  const std::vector<ClaimedDelivery> claimed = MustClaim(10);
  ASSERT_EQ(claimed.size(), 1u);
  EXPECT_EQ(claimed[0].notification_id, "past");
}

TEST_F(PgNotificationStoreTest, ExpiredDeliveriesAreExpiredAtClaimNotHandedOut) {
  NotificationRecord stale = Record("stale", Targets(2));
  stale.options.ttl = absl::Seconds(1);
  stale.expire_time = absl::Now() - absl::Seconds(30);
  MustInsert(stale, Targets(2));
  NotificationRecord fresh = Record("fresh", Targets(1, "f"));
  fresh.options.ttl = absl::Hours(1);
  fresh.expire_time = Micros(absl::Now() + absl::Hours(1));
  MustInsert(fresh, Targets(1, "f"));

  const std::vector<ClaimedDelivery> claimed = MustClaim(10);
  ASSERT_EQ(claimed.size(), 1u);
  EXPECT_EQ(claimed[0].notification_id, "fresh");
  EXPECT_EQ(claimed[0].expire_time, fresh.expire_time);

  const NotificationRecord got = MustGet("stale");
  EXPECT_EQ(got.counts.expired, 2);
  EXPECT_EQ(got.state, NotificationState::kExpired);
  for (const DeliveryRecord& delivery : AllDeliveries("stale")) {
    EXPECT_EQ(delivery.state, DeliveryState::kExpired);
    EXPECT_EQ(delivery.attempts, 0);
    EXPECT_TRUE(delivery.complete_time.has_value());
    EXPECT_NE(delivery.last_error.find("expired"), std::string::npos);
  }
  EXPECT_TRUE(MustClaim(10).empty());
}

TEST_F(PgNotificationStoreTest, ExpiredLeaseMakesTheDeliveryClaimableAgain) {
  MustInsert(Record("n1", Targets(1)), Targets(1));
  const std::vector<ClaimedDelivery> first = MustClaim(10, absl::Seconds(1));
  ASSERT_EQ(first.size(), 1u);
  EXPECT_TRUE(MustClaim(10).empty());

  // The worker "died": no outcome. Once the lease ends another one claims it.
  const std::vector<ClaimedDelivery> second = AwaitClaim(10);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].delivery_id, first[0].delivery_id);
  EXPECT_EQ(second[0].attempts, 2);
}

TEST_F(PgNotificationStoreTest, ClaimRespectsMaxAndOrder) {
  MustInsert(Record("n1", Targets(5)), Targets(5));
  const std::vector<ClaimedDelivery> first = MustClaim(2);
  ASSERT_EQ(first.size(), 2u);
  const std::vector<ClaimedDelivery> rest = MustClaim(10);
  ASSERT_EQ(rest.size(), 3u);
  EXPECT_LT(first[1].delivery_id, rest[0].delivery_id);
  EXPECT_EQ(store_->ClaimDueDeliveries(0, absl::Seconds(1)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// The handoff path: the first claim_count deliveries are claimed in the
// insert's own transaction, as ClaimDueDeliveries would claim them.
// A new database whose outbox then fills: a batch's deliveries are
// inserted without reading the notifications stored before, and outcomes
// update their own rows rather than every pending one. Plans cached while
// the tables were small, or while statistics said nothing was pending, did
// both: a sequential scan of notifications per insert, and the due index,
// which holds every pending delivery, per outcome batch.
TEST_F(PgNotificationStoreTest, WritesReadOnlyTheirOwnRowsAsTheOutboxGrows) {
  std::unique_ptr<PgConnectionPool> one = MakePool(url_, {.size = 1});
  ASSERT_NE(one, nullptr);
  PgNotificationStore store(one.get(), &observer_);
  const auto insert_pair = [&store](const std::string& name) {
    const std::vector<ResolvedTarget> targets = Targets(2, name);
    const NotificationRecord a = Record(name + "-a", targets);
    const NotificationRecord b = Record(name + "-b", targets);
    const std::vector<NotificationToInsert> pair = {{.notification = &a, .targets = &targets},
                                                    {.notification = &b, .targets = &targets}};
    for (const auto& result : store.InsertNotifications(pair)) {
      EXPECT_TRUE(result.ok()) << result.status();
    }
  };
  const auto delivery_ids = [&store](const std::string& notification_id, int count) {
    std::vector<int64_t> ids;
    absl::StatusOr<Page<DeliveryRecord>> page =
        store.ListDeliveries(kDefaultTenant, notification_id, count, "");
    EXPECT_TRUE(page.ok()) << page.status();
    if (page.ok()) {
      for (const DeliveryRecord& delivery : page->items) ids.push_back(delivery.delivery_id);
    }
    return ids;
  };
  const auto deliver = [&store](const std::vector<int64_t>& ids) {
    std::vector<DeliveryOutcome> outcomes;
    for (const int64_t id : ids) outcomes.push_back({.delivery_id = id});
    ASSERT_TRUE(store.RecordOutcomes(outcomes).ok());
  };
  // Small tables, nothing left pending, statistics taken then, and enough
  // rounds for PostgreSQL to settle on cached plans.
  for (int round = 0; round < 20; ++round) {
    const std::string name = absl::StrCat("warm", round);
    insert_pair(name);
    deliver(delivery_ids(name + "-a", 2));
    deliver(delivery_ids(name + "-b", 2));
    if (round == 9) {
      pqxx::connection admin(url_);
      pqxx::nontransaction tx(admin);
      tx.exec("ANALYZE notifications, deliveries");
    }
  }
  // The outbox grows: 3,000 single-device notifications, and a fan-out
  // whose 5,000 deliveries stay pending.
  for (int chunk = 0; chunk < 25; ++chunk) {
    std::vector<std::vector<ResolvedTarget>> targets;
    std::vector<NotificationRecord> records;
    for (int i = 0; i < 120; ++i) {
      targets.push_back(Targets(1, absl::StrCat("one-", chunk, "-", i)));
      records.push_back(Record(absl::StrCat("single-", chunk, "-", i), targets.back()));
    }
    std::vector<NotificationToInsert> batch;
    for (int i = 0; i < 120; ++i) {
      batch.push_back({.notification = &records[i], .targets = &targets[i]});
    }
    for (const auto& result : store.InsertNotifications(batch)) {
      ASSERT_TRUE(result.ok()) << result.status();
    }
  }
  const std::vector<ResolvedTarget> fan_out = Targets(5000, "fan");
  ASSERT_TRUE(store.InsertNotification(Record("fan-out", fan_out), fan_out).ok());
  const std::vector<int64_t> ten = delivery_ids("fan-out", 10);
  ASSERT_EQ(ten.size(), 10u);

  const int64_t notifications_before = RowsReadFrom(*one, "notifications");
  insert_pair("measured");
  const int64_t notifications_read = RowsReadFrom(*one, "notifications") - notifications_before;
  // The foreign-key check of each of the 4 deliveries reads its notification.
  EXPECT_LT(notifications_read, 100) << "notifications read to insert 2 with 4 deliveries";

  const int64_t deliveries_before = RowsReadFrom(*one, "deliveries");
  deliver(ten);
  const int64_t deliveries_read = RowsReadFrom(*one, "deliveries") - deliveries_before;
  EXPECT_GE(deliveries_read, 10);
  EXPECT_LT(deliveries_read, 1000) << "deliveries read to record 10 outcomes";
}

// A batch holding a fan-out (above 1,000 targets) is inserted a
// notification at a time in a transaction, not in the one statement; its
// claims come back the same way.
TEST_F(PgNotificationStoreTest, ABatchWithAFanOutClaimsInTargetOrderToo) {
  const std::vector<ResolvedTarget> fan_out = Targets(1500, "fan");
  const std::vector<ResolvedTarget> pair = Targets(2, "pair");
  const NotificationRecord big = Record("big", fan_out);
  const NotificationRecord small = Record("small", pair);
  std::vector<absl::StatusOr<InsertedNotification>> inserted = store_->InsertNotifications(
      {{.notification = &big, .targets = &fan_out, .claim_count = 400,
        .claim_lease = absl::Seconds(30)},
       {.notification = &small, .targets = &pair, .claim_count = 2,
        .claim_lease = absl::Seconds(30)}});
  ASSERT_EQ(inserted.size(), 2u);
  for (const auto& result : inserted) ASSERT_TRUE(result.ok()) << result.status();

  const std::vector<DeliveryRecord> big_deliveries = AllDeliveries("big");  // the first 1,000
  ASSERT_EQ(big_deliveries.size(), 1000u);
  EXPECT_EQ(MustGet("big").counts.pending, 1500);
  ASSERT_EQ(inserted[0]->claimed_delivery_ids.size(), 400u);
  for (size_t i = 0; i < 400; ++i) {
    EXPECT_EQ(inserted[0]->claimed_delivery_ids[i], big_deliveries[i].delivery_id) << i;
  }
  EXPECT_EQ(big_deliveries[399].attempts, 1);
  EXPECT_EQ(big_deliveries[400].attempts, 0);
  EXPECT_EQ(inserted[0]->notification.counts.pending, 1500);
  EXPECT_EQ(inserted[1]->claimed_delivery_ids.size(), 2u);
  EXPECT_EQ(AllDeliveries("small").size(), 2u);
}

TEST_F(PgNotificationStoreTest, InsertClaimsTheFirstDeliveriesInTargetOrder) {
  const std::vector<ResolvedTarget> targets = Targets(3);
  const NotificationRecord record = Record("n1", targets);
  absl::StatusOr<InsertedNotification> inserted =
      InsertClaiming(record, targets, 2, absl::Seconds(30));
  ASSERT_TRUE(inserted.ok()) << inserted.status();
  EXPECT_FALSE(inserted->duplicate);

  const std::vector<DeliveryRecord> deliveries = AllDeliveries("n1");
  ASSERT_EQ(deliveries.size(), 3u);
  EXPECT_EQ(inserted->claimed_delivery_ids,
            (std::vector<int64_t>{deliveries[0].delivery_id, deliveries[1].delivery_id}))
      << "the first two targets, in target order";
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(deliveries[i].state, DeliveryState::kPending) << i;
    EXPECT_EQ(deliveries[i].attempts, 1) << i;
    EXPECT_TRUE(deliveries[i].last_attempt_time.has_value()) << i;
  }
  EXPECT_EQ(deliveries[2].attempts, 0);
  EXPECT_FALSE(deliveries[2].last_attempt_time.has_value());
  EXPECT_EQ(MustGet("n1").counts.pending_attempted, 2);

  // Leased: a worker's claim gets only the third.
  const std::vector<ClaimedDelivery> claimed = MustClaim(10);
  ASSERT_EQ(claimed.size(), 1u);
  EXPECT_EQ(claimed[0].delivery_id, deliveries[2].delivery_id);
  EXPECT_EQ(claimed[0].attempts, 1);
  EXPECT_TRUE(MustClaim(10).empty());

  // The same request again (same idempotency key) claims nothing.
  NotificationRecord keyed = Record("k1", targets);
  keyed.options.idempotency_key = "order-42";
  inserted = InsertClaiming(keyed, targets, 2, absl::Seconds(30));
  ASSERT_TRUE(inserted.ok()) << inserted.status();
  EXPECT_EQ(inserted->claimed_delivery_ids.size(), 2u);
  NotificationRecord retry = keyed;
  retry.notification_id = "k2";
  inserted = InsertClaiming(retry, targets, 2, absl::Seconds(30));
  ASSERT_TRUE(inserted.ok()) << inserted.status();
  EXPECT_TRUE(inserted->duplicate);
  EXPECT_TRUE(inserted->claimed_delivery_ids.empty());
  EXPECT_EQ(MustClaim(10).size(), 1u) << "only k1's unclaimed third delivery";
  for (const DeliveryRecord& delivery : AllDeliveries("k1")) EXPECT_EQ(delivery.attempts, 1);
}

TEST_F(PgNotificationStoreTest, InsertClaimsPerEntryOfABatch) {
  const std::vector<ResolvedTarget> three = Targets(3, "a");
  const std::vector<ResolvedTarget> two = Targets(2, "b");
  const std::vector<ResolvedTarget> none;
  const NotificationRecord all = Record("all", three);
  const NotificationRecord beyond = Record("beyond", two);
  const NotificationRecord unclaimed = Record("unclaimed", three);
  const NotificationRecord empty = Record("empty", none);
  std::vector<absl::StatusOr<InsertedNotification>> inserted = store_->InsertNotifications({
      {.notification = &all, .targets = &three, .claim_count = 3,
       .claim_lease = absl::Seconds(30)},
      {.notification = &beyond, .targets = &two, .claim_count = 5,
       .claim_lease = absl::Seconds(30)},
      {.notification = &unclaimed, .targets = &three},
      {.notification = &empty, .targets = &none, .claim_count = 2,
       .claim_lease = absl::Seconds(30)},
  });
  ASSERT_EQ(inserted.size(), 4u);
  for (const auto& result : inserted) ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(inserted[0]->claimed_delivery_ids.size(), 3u);
  EXPECT_EQ(inserted[1]->claimed_delivery_ids.size(), 2u) << "at most one per target";
  EXPECT_TRUE(inserted[2]->claimed_delivery_ids.empty());
  EXPECT_TRUE(inserted[3]->claimed_delivery_ids.empty());
  for (const char* id : {"all", "beyond"}) {
    for (const DeliveryRecord& delivery : AllDeliveries(id)) EXPECT_EQ(delivery.attempts, 1) << id;
  }
  const std::vector<ClaimedDelivery> claimed = MustClaim(10);
  ASSERT_EQ(claimed.size(), 3u);
  for (const ClaimedDelivery& delivery : claimed) EXPECT_EQ(delivery.notification_id, "unclaimed");
}

TEST_F(PgNotificationStoreTest, ExtendLeasesKeepsHeldDeliveriesFromBeingClaimed) {
  const std::vector<ResolvedTarget> targets = Targets(2);
  const NotificationRecord record = Record("n1", targets);
  absl::StatusOr<InsertedNotification> inserted =
      InsertClaiming(record, targets, 2, absl::Seconds(1));
  ASSERT_TRUE(inserted.ok()) << inserted.status();
  const std::vector<int64_t> held = inserted->claimed_delivery_ids;
  ASSERT_EQ(held.size(), 2u);
  // Only the first one's lease is extended: the second comes back once its
  // one-second lease is over, the first does not.
  ASSERT_TRUE(store_->ExtendLeases({held[0]}, absl::Minutes(5)).ok());
  const std::vector<ClaimedDelivery> again = AwaitClaim(10);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].delivery_id, held[1]);
  EXPECT_TRUE(MustClaim(10).empty()) << "the extended lease still holds";
  // Finished deliveries are left alone; an empty list is fine.
  ASSERT_TRUE(store_->RecordOutcomes({{.delivery_id = held[0],
                                        .state = DeliveryState::kDelivered}}).ok());
  ASSERT_TRUE(store_->ExtendLeases({held[0]}, absl::Minutes(5)).ok());
  ASSERT_TRUE(store_->ExtendLeases({}, absl::Minutes(5)).ok());
  auto delivery = store_->ListDeliveries(record.tenant_id, record.notification_id, 10, "");
  ASSERT_TRUE(delivery.ok()) << delivery.status();
  EXPECT_EQ(delivery->items[0].state, DeliveryState::kDelivered);
}

TEST_F(PgNotificationStoreTest, ClaimAtInsertIsLeasedLikeAnyClaim) {
  const std::vector<ResolvedTarget> targets = Targets(1);
  const NotificationRecord record = Record("n1", targets);
  absl::StatusOr<InsertedNotification> inserted =
      InsertClaiming(record, targets, 1, absl::Seconds(1));
  ASSERT_TRUE(inserted.ok()) << inserted.status();
  ASSERT_EQ(inserted->claimed_delivery_ids.size(), 1u);
  EXPECT_TRUE(MustClaim(10).empty());

  // The publisher "died": once the lease ends a worker claims it.
  const std::vector<ClaimedDelivery> again = AwaitClaim(10);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].delivery_id, inserted->claimed_delivery_ids[0]);
  EXPECT_EQ(again[0].attempts, 2) << "the claim at insert counted the first attempt";
}

TEST_F(PgNotificationStoreTest, ConcurrentClaimersNeverShareADelivery) {
  constexpr int kDeliveries = 2000;
  constexpr int kWorkers = 4;
  MustInsert(Record("bulk", Targets(kDeliveries)), Targets(kDeliveries));

  absl::Mutex mu;
  std::vector<int64_t> all_claimed;
  std::atomic<int> errors{0};
  std::latch start(kWorkers);
  std::vector<std::thread> workers;
  for (int w = 0; w < kWorkers; ++w) {
    workers.emplace_back([&] {
      start.arrive_and_wait();
      while (true) {
        absl::StatusOr<std::vector<ClaimedDelivery>> claimed =
            store_->ClaimDueDeliveries(25, absl::Seconds(120));
        if (!claimed.ok()) {
          ++errors;
          return;
        }
        if (claimed->empty()) return;
        absl::MutexLock lock(&mu);
        for (const ClaimedDelivery& delivery : *claimed)
          all_claimed.push_back(delivery.delivery_id);
      }
    });
  }
  for (std::thread& worker : workers) worker.join();
  EXPECT_EQ(errors.load(), 0);
  const std::set<int64_t> distinct(all_claimed.begin(), all_claimed.end());
  EXPECT_EQ(distinct.size(), all_claimed.size()) << "a delivery was claimed twice";
  EXPECT_EQ(all_claimed.size(), static_cast<size_t>(kDeliveries));
}

TEST_F(PgNotificationStoreTest, SameIdempotencyKeyAndContentIsADuplicate) {
  NotificationRecord first = Record("n1", Targets(2));
  first.options.idempotency_key = "order-42";
  MustInsert(first, Targets(2));
  const std::vector<ClaimedDelivery> claimed = MustClaim(1);
  ASSERT_EQ(claimed.size(), 1u);
  ASSERT_TRUE(store_
                  ->RecordOutcomes(
                      {{.delivery_id = claimed[0].delivery_id, .state = DeliveryState::kDelivered}})
                  .ok());

  NotificationRecord retry = first;
  retry.notification_id = "n2";  // a retried request gets a fresh id
  absl::StatusOr<InsertedNotification> again = store_->InsertNotification(retry, Targets(2));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->duplicate);
  EXPECT_EQ(again->notification.notification_id, "n1");
  EXPECT_EQ(again->notification.counts.delivered, 1);
  EXPECT_EQ(again->notification.counts.pending, 1);
  EXPECT_EQ(again->notification.state, NotificationState::kDelivering);
  // Nothing new was stored.
  EXPECT_EQ(store_->GetNotification(kDefaultTenant, "n2").status().code(),
            absl::StatusCode::kNotFound);
  absl::StatusOr<int64_t> backlog = store_->CountBacklog();
  ASSERT_TRUE(backlog.ok());
  EXPECT_EQ(*backlog, 1);
}

TEST_F(PgNotificationStoreTest, SameIdempotencyKeyWithOtherContentIsFailedPrecondition) {
  NotificationRecord first = Record("n1", Targets(1));
  first.options.idempotency_key = "order-42";
  MustInsert(first, Targets(1));
  NotificationRecord other = Record("n2", Targets(1));
  other.options.idempotency_key = "order-42";
  other.request_fingerprint = "something else";
  absl::StatusOr<InsertedNotification> refused = store_->InsertNotification(other, Targets(1));
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find("idempotency_key"), std::string::npos);
  EXPECT_NE(refused.status().message().find("n1"), std::string::npos);
}

TEST_F(PgNotificationStoreTest, IdempotencyKeysArePerTenant) {
  NotificationRecord a = Record("a1", Targets(1), "tenant-a");
  a.options.idempotency_key = "k";
  NotificationRecord b = Record("b1", Targets(1), "tenant-b");
  b.options.idempotency_key = "k";
  MustInsert(a, Targets(1));
  MustInsert(b, Targets(1));
}

// Group commit: concurrent inserts share transactions, and one entry that
// the database refuses (a notification id that is taken) fails alone while
// every other entry of its batch is stored.
TEST_F(PgNotificationStoreTest, ConcurrentInsertsShareCommitsAndFailAlone) {
  MustInsert(Record("taken", Targets(1)), Targets(1));
  constexpr int kThreads = 32;
  constexpr int kPerThread = 20;
  std::latch start(kThreads);
  std::vector<std::vector<absl::StatusOr<InsertedNotification>>> results(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      for (int i = 0; i < kPerThread; ++i) {
        // Thread 0's fifth insert reuses a taken id for another notification.
        const bool reuse = t == 0 && i == 4;
        NotificationRecord record =
            Record(reuse ? "taken" : absl::StrCat("g", t, "-", i), Targets(2));
        if (reuse) record.payload = R"({"id":"taken","title":"Another"})";
        results[t].push_back(store_->InsertNotification(record, Targets(2)));
      }
    });
  }
  for (std::thread& thread : threads) thread.join();

  int stored = 0;
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kPerThread; ++i) {
      const auto& result = results[t][i];
      if (t == 0 && i == 4) {
        EXPECT_EQ(result.status().code(), absl::StatusCode::kAlreadyExists) << result.status();
        continue;
      }
      ASSERT_TRUE(result.ok()) << result.status();
      EXPECT_FALSE(result->duplicate);
      EXPECT_EQ(result->notification.counts.pending, 2);
      ++stored;
    }
  }
  absl::StatusOr<StoredStats> stats = store_->GetStats(kDefaultTenant);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->notifications, stored + 1);
  EXPECT_EQ(stats->total.pending, 2 * stored + 1);
}

TEST_F(PgNotificationStoreTest, ConcurrentInsertsWithOneKeyStoreExactlyOne) {
  constexpr int kThreads = 8;
  std::latch start(kThreads);
  std::vector<absl::StatusOr<InsertedNotification>> results(kThreads,
                                                            absl::UnknownError("not run"));
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      NotificationRecord record = Record(absl::StrCat("n", i), Targets(3));
      record.options.idempotency_key = "same-key";
      record.request_fingerprint = "same-content";
      start.arrive_and_wait();
      results[i] = store_->InsertNotification(record, Targets(3));
    });
  }
  for (std::thread& thread : threads) thread.join();

  int originals = 0;
  std::set<std::string> ids;
  for (const auto& result : results) {
    ASSERT_TRUE(result.ok()) << result.status();
    if (!result->duplicate) ++originals;
    ids.insert(result->notification.notification_id);
  }
  EXPECT_EQ(originals, 1);
  EXPECT_EQ(ids.size(), 1u) << "every caller must see the one stored notification";
  absl::StatusOr<Page<NotificationRecord>> all = store_->ListNotifications(kDefaultTenant, 100, "");
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->items.size(), 1u);
  absl::StatusOr<int64_t> backlog = store_->CountBacklog();
  ASSERT_TRUE(backlog.ok());
  EXPECT_EQ(*backlog, 3);
}

TEST_F(PgNotificationStoreTest, CancelStopsPendingDeliveriesIncludingInFlightOnes) {
  MustInsert(Record("n1", Targets(3)), Targets(3));
  const std::vector<ClaimedDelivery> in_flight = MustClaim(1);
  ASSERT_EQ(in_flight.size(), 1u);

  absl::StatusOr<int64_t> cancelled = store_->CancelNotification(kDefaultTenant, "n1");
  ASSERT_TRUE(cancelled.ok()) << cancelled.status();
  EXPECT_EQ(*cancelled, 3);
  EXPECT_TRUE(observer_.Saw("cancel_notification"));

  // The in-flight publish reports back late: the delivery stays cancelled.
  ASSERT_TRUE(store_
                  ->RecordOutcomes({{.delivery_id = in_flight[0].delivery_id,
                                     .state = DeliveryState::kDelivered}})
                  .ok());
  const NotificationRecord got = MustGet("n1");
  EXPECT_EQ(got.counts.cancelled, 3);
  EXPECT_EQ(got.state, NotificationState::kCancelled);
  for (const DeliveryRecord& delivery : AllDeliveries("n1")) {
    EXPECT_EQ(delivery.state, DeliveryState::kCancelled);
    EXPECT_TRUE(delivery.complete_time.has_value());
  }
  EXPECT_TRUE(MustClaim(10).empty());

  cancelled = store_->CancelNotification(kDefaultTenant, "n1");
  ASSERT_TRUE(cancelled.ok());
  EXPECT_EQ(*cancelled, 0);
  EXPECT_EQ(store_->CancelNotification(kDefaultTenant, "nope").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(PgNotificationStoreTest, CancelLeavesCompletedDeliveriesAlone) {
  MustInsert(Record("n1", Targets(2)), Targets(2));
  const std::vector<ClaimedDelivery> claimed = MustClaim(1);
  ASSERT_EQ(claimed.size(), 1u);
  ASSERT_TRUE(store_
                  ->RecordOutcomes(
                      {{.delivery_id = claimed[0].delivery_id, .state = DeliveryState::kDelivered}})
                  .ok());
  absl::StatusOr<int64_t> cancelled = store_->CancelNotification(kDefaultTenant, "n1");
  ASSERT_TRUE(cancelled.ok());
  EXPECT_EQ(*cancelled, 1);
  const NotificationRecord got = MustGet("n1");
  EXPECT_EQ(got.counts.delivered, 1);
  EXPECT_EQ(got.counts.cancelled, 1);
  EXPECT_EQ(got.state, NotificationState::kPartiallyDelivered);
}

TEST_F(PgNotificationStoreTest, ListNotificationsNewestFirstWithPagination) {
  for (int i = 0; i < 5; ++i) {
    MustInsert(Record(absl::StrCat("n", i), Targets(1)), Targets(1));
  }
  MustInsert(Record("other", Targets(1), "other-tenant"), Targets(1));

  std::vector<std::string> seen;
  std::string token;
  int pages = 0;
  do {
    absl::StatusOr<Page<NotificationRecord>> page =
        store_->ListNotifications(kDefaultTenant, 2, token);
    ASSERT_TRUE(page.ok()) << page.status();
    for (const NotificationRecord& record : page->items) {
      seen.push_back(record.notification_id);
      EXPECT_EQ(record.counts.pending, 1);
      EXPECT_EQ(record.state, NotificationState::kAccepted);
    }
    token = page->next_page_token;
    ++pages;
  } while (!token.empty() && pages < 10);
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(seen, (std::vector<std::string>{"n4", "n3", "n2", "n1", "n0"}));
  EXPECT_TRUE(observer_.Saw("list_notifications"));
}

TEST_F(PgNotificationStoreTest, ListsRefuseBogusTokens) {
  MustInsert(Record("n1", Targets(1)), Targets(1));
  for (const std::string& token : {std::string("bogus"), EncodePageToken("devices", "x"),
                                   EncodePageToken("notifications", "not-a-position")}) {
    absl::StatusOr<Page<NotificationRecord>> page =
        store_->ListNotifications(kDefaultTenant, 10, token);
    EXPECT_EQ(page.status().code(), absl::StatusCode::kInvalidArgument) << token;
    EXPECT_NE(page.status().message().find("page_token"), std::string::npos);
  }
  for (const std::string& token : {std::string("bogus"), EncodePageToken("notifications", "1/x"),
                                   EncodePageToken("deliveries", "abc")}) {
    absl::StatusOr<Page<DeliveryRecord>> page =
        store_->ListDeliveries(kDefaultTenant, "n1", 10, token);
    EXPECT_EQ(page.status().code(), absl::StatusCode::kInvalidArgument) << token;
    EXPECT_NE(page.status().message().find("page_token"), std::string::npos);
  }
}

TEST_F(PgNotificationStoreTest, ListDeliveriesPaginatesInTargetOrder) {
  MustInsert(Record("n1", Targets(5)), Targets(5));
  std::vector<std::string> seen;
  std::string token;
  int pages = 0;
  do {
    absl::StatusOr<Page<DeliveryRecord>> page =
        store_->ListDeliveries(kDefaultTenant, "n1", 2, token);
    ASSERT_TRUE(page.ok()) << page.status();
    for (const DeliveryRecord& delivery : page->items) seen.push_back(delivery.device_id);
    token = page->next_page_token;
    ++pages;
  } while (!token.empty() && pages < 10);
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(seen, (std::vector<std::string>{"dev-0", "dev-1", "dev-2", "dev-3", "dev-4"}));
}

TEST_F(PgNotificationStoreTest, NotificationWithoutTargetsListsNoDeliveries) {
  MustInsert(Record("empty", {}), {});
  absl::StatusOr<Page<DeliveryRecord>> page =
      store_->ListDeliveries(kDefaultTenant, "empty", 10, "");
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_TRUE(page->items.empty());
  EXPECT_TRUE(page->next_page_token.empty());
}

TEST_F(PgNotificationStoreTest, StatsCountByQosAndProvider) {
  PgDeviceStore devices(pool_.get(), &observer_);
  for (const char* id : {"d1", "d2", "d3"}) {
    ASSERT_TRUE(devices.CreateDevice({.tenant_id = kDefaultTenant, .device_id = id}).ok());
  }
  ASSERT_TRUE(devices.CreateDevice({.tenant_id = "other", .device_id = "x"}).ok());

  NotificationRecord a = Record("a", Targets(3, "a"));  // qos 1
  MustInsert(a, Targets(3, "a"));
  NotificationRecord b = Record("b", Targets(2, "b"));
  b.options.qos = 0;
  MustInsert(b, Targets(2, "b"));
  NotificationRecord c = Record("c", Targets(1, "c"));
  c.options.qos = 2;
  MustInsert(c, Targets(1, "c"));
  ASSERT_TRUE(store_->CancelNotification(kDefaultTenant, "c").ok());
  NotificationRecord d = Record("d", Targets(1, "d"));
  d.expire_time = absl::Now() - absl::Minutes(1);
  MustInsert(d, Targets(1, "d"));
  MustInsert(Record("elsewhere", Targets(4, "e"), "other"), Targets(4, "e"));

  const absl::Time before_claim = absl::Now() - absl::Seconds(5);
  const std::vector<ClaimedDelivery> claimed = MustClaim(100);
  ASSERT_EQ(claimed.size(), 9u);  // a: 3, b: 2, other tenant: 4 (c cancelled, d expired)
  std::vector<DeliveryOutcome> outcomes;
  for (const ClaimedDelivery& delivery : claimed) {
    if (delivery.notification_id == "elsewhere") continue;
    const std::vector<DeliveryRecord> targets = AllDeliveries(delivery.notification_id);
    const auto index =
        std::find_if(targets.begin(), targets.end(),
                     [&](const auto& t) { return t.delivery_id == delivery.delivery_id; }) -
        targets.begin();
    DeliveryOutcome outcome{.delivery_id = delivery.delivery_id};
    if (delivery.notification_id == "a") {
      outcome.state = index == 0   ? DeliveryState::kDelivered
                      : index == 1 ? DeliveryState::kFailed
                                   : DeliveryState::kPending;
      outcome.retry_after = absl::Hours(1);
    } else {
      outcome.state = index == 0 ? DeliveryState::kNoSubscriber : DeliveryState::kReceived;
    }
    outcomes.push_back(outcome);
  }
  ASSERT_TRUE(store_->RecordOutcomes(outcomes).ok());

  absl::StatusOr<StoredStats> stats = store_->GetStats(kDefaultTenant);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->total.sent, 5);
  EXPECT_EQ(stats->total.succeeded, 3);
  EXPECT_EQ(stats->total.failed, 1);
  EXPECT_EQ(stats->total.expired, 1);
  EXPECT_EQ(stats->total.cancelled, 1);
  EXPECT_EQ(stats->total.pending, 1);

  ASSERT_EQ(stats->by_qos.size(), 3u);
  EXPECT_EQ(stats->by_qos[1].sent, 3);
  EXPECT_EQ(stats->by_qos[1].succeeded, 1);
  EXPECT_EQ(stats->by_qos[1].failed, 1);
  EXPECT_EQ(stats->by_qos[1].pending, 1);
  EXPECT_EQ(stats->by_qos[1].expired, 1);
  EXPECT_EQ(stats->by_qos[0].sent, 2);
  EXPECT_EQ(stats->by_qos[0].succeeded, 2);
  EXPECT_EQ(stats->by_qos[2].sent, 0);
  EXPECT_EQ(stats->by_qos[2].cancelled, 1);

  ASSERT_EQ(stats->by_provider.size(), 1u);
  EXPECT_EQ(stats->by_provider["mqtt"].sent, 5);
  EXPECT_EQ(stats->by_provider["mqtt"].succeeded, 3);

  ASSERT_TRUE(stats->last_sent_time.has_value());
  EXPECT_GE(*stats->last_sent_time, before_claim);
  EXPECT_LE(*stats->last_sent_time, absl::Now() + absl::Seconds(5));
  EXPECT_EQ(stats->notifications, 4);
  EXPECT_EQ(stats->devices, 3);
  EXPECT_TRUE(observer_.Saw("get_stats"));
}

TEST_F(PgNotificationStoreTest, StatsOfAnEmptyTenant) {
  absl::StatusOr<StoredStats> stats = store_->GetStats("nobody");
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->total.sent, 0);
  EXPECT_TRUE(stats->by_qos.empty());
  EXPECT_FALSE(stats->last_sent_time.has_value());
  EXPECT_EQ(stats->notifications, 0);
  EXPECT_EQ(stats->devices, 0);
}

TEST_F(PgNotificationStoreTest, BacklogCountsPendingDeliveriesOfAllTenants) {
  MustInsert(Record("a", Targets(3)), Targets(3));
  MustInsert(Record("b", Targets(2), "other"), Targets(2));
  absl::StatusOr<int64_t> backlog = store_->CountBacklog();
  ASSERT_TRUE(backlog.ok()) << backlog.status();
  EXPECT_EQ(*backlog, 5);
  const std::vector<ClaimedDelivery> claimed = MustClaim(1);
  ASSERT_TRUE(store_
                  ->RecordOutcomes(
                      {{.delivery_id = claimed[0].delivery_id, .state = DeliveryState::kDelivered}})
                  .ok());
  backlog = store_->CountBacklog();
  ASSERT_TRUE(backlog.ok());
  EXPECT_EQ(*backlog, 4);
  EXPECT_TRUE(observer_.Saw("count_backlog"));
}

TEST_F(PgNotificationStoreTest, InsertsOneHundredThousandTargetsInOneCall) {
  constexpr int kTargets = 100000;
  const std::vector<ResolvedTarget> targets = Targets(kTargets, "fleet");
  NotificationRecord record = Record("big", {});
  record.target = {.kind = TargetKind::kGroups, .values = {"everyone"}};

  const absl::Time start = absl::Now();
  const NotificationRecord inserted = MustInsert(record, targets);
  const absl::Duration elapsed = absl::Now() - start;
  std::printf("InsertNotification with %d targets took %s\n", kTargets,
              absl::FormatDuration(elapsed).c_str());
  EXPECT_EQ(inserted.counts.pending, kTargets);
  EXPECT_LT(elapsed, absl::Seconds(30));

  const NotificationRecord got = MustGet("big");
  EXPECT_EQ(got.counts.pending, kTargets);
  absl::StatusOr<int64_t> backlog = store_->CountBacklog();
  ASSERT_TRUE(backlog.ok());
  EXPECT_EQ(*backlog, kTargets);
}

}  // namespace
}  // namespace herald
