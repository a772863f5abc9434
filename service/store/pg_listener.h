// PgNotificationListener: one dedicated PostgreSQL connection that LISTENs
// on a channel and hands each NOTIFY payload to a callback, for as long as
// it runs. PgCommandStore uses it so that the replica whose caller waits for
// a command learns at once when another replica recorded the device's
// response.
//
// A LISTEN lives on one session, so the listener cannot borrow a pooled
// connection: it opens its own (with the pool's connection string), and
// reopens it with backoff when it breaks. Notifications sent while it was
// disconnected are lost: after every (re)connect it calls the callback once
// with an empty payload ("you may have missed some"), and users must be able
// to recover by reading the database (PgCommandStore's waiters re-read
// their row).
//
//   PgNotificationListener listener(*pool, "herald_command_responses",
//                                   [&](const std::string& payload) { Wake(payload); });
//   listener.Start();
//   ...
//   listener.Stop();  // no callback runs after it returns
//
// Thread-safe. The callback runs on the listener's thread; it must not
// block (it delays every later notification).
#ifndef HERALD_SERVICE_STORE_PG_LISTENER_H_
#define HERALD_SERVICE_STORE_PG_LISTENER_H_

#include <functional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "service/store/pg_connection_pool.h"

namespace herald {

struct PgListenerOptions {
  absl::Duration reconnect_min = absl::Milliseconds(500);  // doubles per failure
  absl::Duration reconnect_max = absl::Seconds(30);
  // How long one wait for notifications lasts; Stop takes up to this long.
  absl::Duration poll_slice = absl::Milliseconds(200);
};

class PgNotificationListener {
 public:
  // `pool` supplies the connection string and must outlive the listener.
  // `channel` must be a plain identifier (letters, digits, '_').
  PgNotificationListener(const PgConnectionPool& pool, std::string channel,
                         std::function<void(const std::string& payload)> on_notify,
                         PgListenerOptions options = {});
  ~PgNotificationListener();

  PgNotificationListener(const PgNotificationListener&) = delete;
  PgNotificationListener& operator=(const PgNotificationListener&) = delete;

  // Starts the listening thread; returns at once (the first connection is
  // made in the background). Idempotent.
  void Start();

  // Stops the thread and closes the connection. Idempotent.
  void Stop();

  // Whether the LISTEN is currently in place.
  bool listening() const;

 private:
  void Run();
  // Waits up to `delay` or until Stop; false when stopping.
  bool SleepUnlessStopped(absl::Duration delay);

  const PgConnectionPool& pool_;
  const std::string channel_;
  const std::function<void(const std::string&)> on_notify_;
  const PgListenerOptions options_;

  mutable absl::Mutex mu_;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool listening_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace herald

#endif  // HERALD_SERVICE_STORE_PG_LISTENER_H_
