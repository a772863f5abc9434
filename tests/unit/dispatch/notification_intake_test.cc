// Tests of service/dispatch/notification_intake.h over a real Notifier with
// FakeDeviceStore and FakeNotificationStore.
#include "service/dispatch/notification_intake.h"

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"
#include "service/dispatch/notifier.h"
#include "service/metrics/herald_metrics.h"
#include "tests/testing/fakes/fake_device_store.h"
#include "tests/testing/fakes/fake_notification_store.h"
#include "tests/testing/fakes/status_matchers.h"

namespace herald {
namespace {

using ::herald::testing::FakeDeviceStore;
using ::herald::testing::FakeNotificationStore;
using ::herald::testing::StatusIs;

constexpr absl::Duration kWait = absl::Seconds(20);

// Collects the outcomes handed to Done callbacks. Thread-safe.
class Answers {
 public:
  NotificationIntake::Done Callback(int index) {
    return [this, index](absl::StatusOr<SendOutcome> sent) {
      absl::MutexLock lock(&mu_);
      answers_.push_back({index, std::move(sent)});
    };
  }
  bool AwaitCount(size_t count, absl::Duration timeout = kWait) {
    absl::MutexLock lock(&mu_);
    const auto reached = [this, count]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return answers_.size() >= count;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&reached), timeout);
  }
  std::vector<std::pair<int, absl::StatusOr<SendOutcome>>> answers() {
    absl::MutexLock lock(&mu_);
    return answers_;
  }

 private:
  absl::Mutex mu_;
  std::vector<std::pair<int, absl::StatusOr<SendOutcome>>> answers_ ABSL_GUARDED_BY(mu_);
};

class NotificationIntakeTest : public ::testing::Test {
 protected:
  NotificationIntakeTest()
      : metrics_(registry_, "test"),
        notifier_(devices_, notifications_, metrics_, [] {}, NotifierOptions{}) {
    for (int i = 0; i < 20; ++i) AddDevice(kDefaultTenant, absl::StrCat("d", i), "");
  }

  void AddDevice(const std::string& tenant, const std::string& id, const std::string& topic) {
    Device device;
    device.tenant_id = tenant;
    device.device_id = id;
    device.topic = topic;
    ASSERT_TRUE(devices_.CreateDevice(device).ok());
  }

  static NotificationRequest Request(const std::string& device_id,
                                     const std::string& tenant = kDefaultTenant) {
    NotificationRequest request;
    request.tenant_id = tenant;
    request.target = {.kind = TargetKind::kDeviceIds, .values = {device_id}};
    request.content = {.title = "Door", .body = device_id, .data = {}};
    return request;
  }

  // Sends a request for d0 whose callback holds the intake thread that runs
  // it until `release` is notified; true once that thread is held.
  static bool HoldAThread(NotificationIntake& intake, absl::Notification& release) {
    auto entered = std::make_shared<absl::Notification>();
    intake.Submit(Request("d0"), [entered, &release](absl::StatusOr<SendOutcome> sent) {
      EXPECT_TRUE(sent.ok()) << sent.status();
      entered->Notify();
      release.WaitForNotification();
    });
    return entered->WaitForNotificationWithTimeout(kWait);
  }

  std::vector<DeliveryRecord> Deliveries(const SendOutcome& sent) {
    auto page = notifications_.ListDeliveries(sent.notification.tenant_id,
                                              sent.notification.notification_id, 10, "");
    EXPECT_TRUE(page.ok()) << page.status();
    return page.ok() ? page->items : std::vector<DeliveryRecord>{};
  }

  FakeDeviceStore devices_;
  FakeNotificationStore notifications_;
  prometheus::Registry registry_;
  HeraldMetrics metrics_;
  Notifier notifier_;
};

TEST_F(NotificationIntakeTest, AnswersEveryCallerWithItsOwnOutcome) {
  NotificationIntake intake(notifier_, {.threads = 2});
  intake.Start();
  Answers answers;
  std::vector<std::thread> callers;
  for (int t = 0; t < 4; ++t) {
    callers.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        const int index = t * 25 + i;
        intake.Submit(Request(absl::StrCat("d", index % 20)), answers.Callback(index));
      }
    });
  }
  for (std::thread& caller : callers) caller.join();
  ASSERT_TRUE(answers.AwaitCount(100));
  std::vector<int> seen(100, 0);
  for (const auto& [index, sent] : answers.answers()) {
    ++seen[index];
    ASSERT_TRUE(sent.ok()) << sent.status();
    EXPECT_EQ(sent->target_count, 1);
    const std::vector<DeliveryRecord> deliveries = Deliveries(*sent);
    ASSERT_EQ(deliveries.size(), 1u);
    EXPECT_EQ(deliveries[0].device_id, absl::StrCat("d", index % 20)) << "its own request";
  }
  for (int count : seen) EXPECT_EQ(count, 1) << "each callback exactly once";
  intake.Stop();
}

TEST_F(NotificationIntakeTest, EachRequestResolvesInItsOwnTenant) {
  AddDevice("other", "d1", "other/d1/inbox");
  NotificationIntake intake(notifier_, {.threads = 1});
  intake.Start();
  Answers answers;
  intake.Submit(Request("d1"), answers.Callback(0));
  intake.Submit(Request("d1", "other"), answers.Callback(1));
  intake.Submit(Request("d2", "other"), answers.Callback(2));  // not the other tenant's
  ASSERT_TRUE(answers.AwaitCount(3));
  for (const auto& [index, sent] : answers.answers()) {
    if (index == 2) {
      EXPECT_THAT(sent, StatusIs(absl::StatusCode::kNotFound));
      continue;
    }
    ASSERT_TRUE(sent.ok()) << sent.status();
    const std::vector<DeliveryRecord> deliveries = Deliveries(*sent);
    ASSERT_EQ(deliveries.size(), 1u);
    EXPECT_EQ(deliveries[0].topic, index == 0 ? "devices/d1/notifications" : "other/d1/inbox");
  }
}

TEST_F(NotificationIntakeTest, ErrorsReachTheirCaller) {
  NotificationIntake intake(notifier_, {});
  intake.Start();
  Answers answers;
  NotificationRequest invalid = Request("d1");
  invalid.content.title.clear();
  invalid.content.body.clear();
  intake.Submit(invalid, answers.Callback(0));
  intake.Submit(Request("nobody"), answers.Callback(1));
  ASSERT_TRUE(answers.AwaitCount(2));
  for (const auto& [index, sent] : answers.answers()) {
    EXPECT_THAT(sent, StatusIs(index == 0 ? absl::StatusCode::kInvalidArgument
                                          : absl::StatusCode::kNotFound));
  }
}

TEST_F(NotificationIntakeTest, RefusesBeforeStartAndAfterStop) {
  NotificationIntake intake(notifier_, {});
  Answers answers;
  intake.Submit(Request("d1"), answers.Callback(0));
  intake.Start();
  intake.Stop();
  intake.Submit(Request("d1"), answers.Callback(1));
  ASSERT_TRUE(answers.AwaitCount(2));
  for (const auto& [index, sent] : answers.answers()) {
    EXPECT_THAT(sent, StatusIs(absl::StatusCode::kUnavailable));
  }
  EXPECT_TRUE(notifications_.AllDeliveries().empty());
}

TEST_F(NotificationIntakeTest, FullQueueIsResourceExhaustedAndStopAnswersWhatWasQueued) {
  NotificationIntake intake(notifier_, {.threads = 1, .max_group = 1, .max_queued = 2});
  intake.Start();
  // The only intake thread is held in the first caller's callback, so the
  // next requests wait in the queue.
  absl::Notification release;
  ASSERT_TRUE(HoldAThread(intake, release));
  Answers answers;
  intake.Submit(Request("d1"), answers.Callback(1));
  intake.Submit(Request("d2"), answers.Callback(2));
  intake.Submit(Request("d3"), answers.Callback(3));  // a third waiting: refused at once
  ASSERT_TRUE(answers.AwaitCount(1));
  EXPECT_EQ(answers.answers()[0].first, 3);
  EXPECT_THAT(answers.answers()[0].second,
              StatusIs(absl::StatusCode::kResourceExhausted, ::testing::HasSubstr("waiting")));

  // Stop sends what was queued before it returns.
  std::thread stopper([&] { intake.Stop(); });
  release.Notify();
  stopper.join();
  ASSERT_TRUE(answers.AwaitCount(3));
  for (const auto& [index, sent] : answers.answers()) {
    if (index == 3) continue;
    EXPECT_TRUE(sent.ok()) << index << ": " << sent.status();
  }
}

// A request whose caller's deadline passed while it waited is answered
// DEADLINE_EXCEEDED and not stored (the caller may already be sending it
// again); one whose deadline is still ahead is stored.
TEST_F(NotificationIntakeTest, RequestsPastTheirCallersDeadlineAreNotStored) {
  NotificationIntake intake(notifier_, {.threads = 1});
  intake.Start();
  Answers answers;
  intake.Submit(Request("d1"), answers.Callback(1), absl::Now() - absl::Milliseconds(1));
  intake.Submit(Request("d2"), answers.Callback(2), absl::Now() + absl::Minutes(1));
  ASSERT_TRUE(answers.AwaitCount(2));
  for (const auto& [index, sent] : answers.answers()) {
    if (index == 1) {
      EXPECT_THAT(sent, StatusIs(absl::StatusCode::kDeadlineExceeded,
                                 ::testing::HasSubstr("nothing was stored")));
    } else {
      ASSERT_TRUE(sent.ok()) << sent.status();
    }
  }
  ASSERT_EQ(notifications_.AllDeliveries().size(), 1u);
  EXPECT_EQ(notifications_.AllDeliveries()[0].device_id, "d2");
  intake.Stop();
}

// While one group is being sent, waiting requests gather for the next
// group; a second thread starts one only when parallel_group_min wait.
TEST_F(NotificationIntakeTest, RequestsWaitingBehindAGroupAreSentTogether) {
  NotificationIntake intake(notifier_, {.threads = 2, .parallel_group_min = 3});
  intake.Start();
  absl::Notification release;
  ASSERT_TRUE(HoldAThread(intake, release));
  const int lookups_before = devices_.resolve_calls();
  Answers answers;
  intake.Submit(Request("d1"), answers.Callback(1));
  intake.Submit(Request("d2"), answers.Callback(2));
  // Two waiting requests start no group of their own (were one started,
  // its answer would come within this wait).
  EXPECT_FALSE(answers.AwaitCount(1, absl::Milliseconds(300)));
  // The third starts a group on the other thread while the first is still
  // held: one group, so one device lookup for the three.
  intake.Submit(Request("d3"), answers.Callback(3));
  ASSERT_TRUE(answers.AwaitCount(3));
  EXPECT_EQ(devices_.resolve_calls() - lookups_before, 1);
  // A lone request waits for a thread to be free, and is then sent.
  intake.Submit(Request("d4"), answers.Callback(4));
  release.Notify();
  ASSERT_TRUE(answers.AwaitCount(4));
  for (const auto& [index, sent] : answers.answers()) {
    ASSERT_TRUE(sent.ok()) << index << ": " << sent.status();
    EXPECT_EQ(Deliveries(*sent).at(0).device_id, absl::StrCat("d", index));
  }
  intake.Stop();
}

}  // namespace
}  // namespace herald
