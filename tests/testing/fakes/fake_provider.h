// FakeProvider: a Provider for unit tests that talks to no broker. It records
// every published message and leaves each publish outstanding until the test
// completes it (CompleteNext / CompleteAll), unless an auto-complete result is
// set, in which case Publish completes inline. Its connection state and
// in-flight window are set by the test, and it can hand incoming messages to
// its subscribers.
//
//   herald::testing::FakeProvider provider;               // connected, window 1000
//   provider.Publish({.topic = "a/b", .payload = "{}"}, done);
//   provider.CompleteAll({.status = absl::OkStatus()});   // runs `done`
//   provider.set_connection_state(herald::ConnectionState::kDisconnected);
//   provider.set_auto_complete(herald::PublishResult{});  // ack at once from now on
#ifndef HERALD_TESTS_TESTING_FAKES_FAKE_PROVIDER_H_
#define HERALD_TESTS_TESTING_FAKES_FAKE_PROVIDER_H_

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "providers/provider.h"

namespace herald::testing {


// Thread-safe. Callbacks (publish outcomes, message handlers) always run
// without the fake's lock held, so they may call back into it.
class FakeProvider final : public Provider {
 public:
  explicit FakeProvider(std::string name = "fake");
  // Completes nothing: outstanding callbacks are dropped, as by a process
  // that dies. Call Stop first to report them.
  ~FakeProvider() override = default;

  // Provider.
  std::string_view Name() const override { return name_; }
  // Counts the call; returns the status set by set_start_status (OK).
  absl::Status Start() override;
  // OK when connected, else kDeadlineExceeded at once (the fake never waits).
  absl::Status WaitConnected(absl::Duration timeout) override;
  // Records the message. When stopped or not connected, reports kUnavailable
  // at once (the interface's contract); with an auto-complete result,
  // reports it at once; otherwise leaves the publish outstanding.
  void Publish(OutgoingMessage message, PublishCallback done) override;
  absl::Status Subscribe(const std::string& topic_filter, int qos,
                         MessageHandler handler) override;
  // max_in_flight - outstanding publishes, at least 0.
  int64_t AvailableCapacity() const override;
  ConnectionStatus GetConnectionStatus() const override;
  // Reports every outstanding publish as kUnavailable and disconnects.
  void Stop(absl::Duration grace) override;

  // Test controls.

  // Entering kConnected counts a connection (and a reconnect after the
  // first). The fake starts connected, with one connection.
  void set_connection_state(ConnectionState state);
  void set_max_in_flight(int64_t max_in_flight);
  // Complete each later publish inline with `result`; nullopt (the
  // default) leaves publishes outstanding for CompleteNext / CompleteAll.
  void set_auto_complete(std::optional<PublishResult> result);
  void set_start_status(absl::Status status);

  // Completes the oldest outstanding publish with `result`; false if none.
  bool CompleteNext(const PublishResult& result);
  // Completes every outstanding publish with `result`; returns how many.
  int CompleteAll(const PublishResult& result);

  // Hands `message` to every subscriber whose filter matches its topic;
  // returns how many handlers ran.
  int DeliverIncoming(const IncomingMessage& message);

  // Inspection.
  std::vector<OutgoingMessage> published() const;  // every Publish call, in order
  size_t published_count() const;
  size_t outstanding() const;  // publishes awaiting completion
  std::vector<std::string> subscriptions() const;
  int start_calls() const;
  bool stopped() const;
  // How often GetConnectionStatus / AvailableCapacity were asked: lets a
  // test wait until a polling caller has looked (and decided) a few times,
  // before asserting that it did nothing.
  int64_t status_queries() const;
  int64_t capacity_queries() const;

  // Waits (with a deadline, never a fixed sleep) until Publish has been
  // called at least `count` times / until `count` publishes are outstanding.
  bool AwaitPublished(size_t count, absl::Duration timeout) const;
  bool AwaitOutstanding(size_t count, absl::Duration timeout) const;
  bool AwaitStatusQueries(int64_t count, absl::Duration timeout) const;
  bool AwaitCapacityQueries(int64_t count, absl::Duration timeout) const;

 private:
  struct Pending {
    OutgoingMessage message;
    PublishCallback done;
  };
  struct Subscription {
    std::string filter;
    int qos;
    MessageHandler handler;
  };

  const std::string name_;
  mutable absl::Mutex mu_;
  ConnectionState state_ ABSL_GUARDED_BY(mu_) = ConnectionState::kConnected;
  int64_t connections_ ABSL_GUARDED_BY(mu_) = 1;
  int64_t reconnects_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t max_in_flight_ ABSL_GUARDED_BY(mu_) = 1000;
  std::optional<PublishResult> auto_complete_ ABSL_GUARDED_BY(mu_);
  absl::Status start_status_ ABSL_GUARDED_BY(mu_);
  int start_calls_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<OutgoingMessage> published_ ABSL_GUARDED_BY(mu_);
  std::deque<Pending> outstanding_ ABSL_GUARDED_BY(mu_);
  std::vector<Subscription> subscriptions_ ABSL_GUARDED_BY(mu_);
  mutable int64_t status_queries_ ABSL_GUARDED_BY(mu_) = 0;
  mutable int64_t capacity_queries_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace herald::testing

#endif  // HERALD_TESTS_TESTING_FAKES_FAKE_PROVIDER_H_
