// PgConnectionPool: a fixed number of PostgreSQL connections shared by the
// stores. A libpq connection serves one query at a time, and opening one costs
// a few milliseconds plus a server process, so every replica keeps a few open
// and lends them out per operation.
//
// Connections are opened lazily, on first use, so a replica starts (and
// reports itself unhealthy) while the database is still down. A connection
// that breaks is dropped and replaced on its next use, with its prepared
// statements prepared again. The stores retry an operation once on a fresh
// connection when that is safe (reads, idempotent writes, transactions), so
// a database restart fails only the few writes whose outcome is uncertain.
//
//   absl::StatusOr<std::unique_ptr<PgConnectionPool>> pool =
//       PgConnectionPool::Create(config.database_url, {.size = 4});
//   if (!pool.ok()) return pool.status();
//   PgDeviceStore devices(pool->get(), &query_observer);
//   PgNotificationStore notifications(pool->get(), &query_observer);
//
// libpqxx stays out of this header: the stores reach the connections through
// PgSession (pg_session.h), which is private to service/store.
#ifndef HERALD_SERVICE_STORE_PG_CONNECTION_POOL_H_
#define HERALD_SERVICE_STORE_PG_CONNECTION_POOL_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace herald {

struct PgPoolOptions {
  // How many connections the pool may hold open.
  int size = 4;
  // How long an operation waits for a free connection before failing with
  // kUnavailable.
  absl::Duration acquire_timeout = absl::Seconds(10);
  // libpq's connect_timeout, unless the database URL sets its own; whole
  // seconds, at least 2 (libpq's minimum).
  absl::Duration connect_timeout = absl::Seconds(5);
};

struct PgPoolSlot;  // one connection and its prepared statements (pg_session.h)

// Thread-safe. Must outlive every store built on it.
class PgConnectionPool {
 public:
  // A pool for `database_url` (a libpq keyword/value string or a
  // postgresql:// URL). Opens no connection. kInvalidArgument for a size
  // below 1 or a negative timeout.
  static absl::StatusOr<std::unique_ptr<PgConnectionPool>> Create(std::string database_url,
                                                                  PgPoolOptions options = {});

  PgConnectionPool(const PgConnectionPool&) = delete;
  PgConnectionPool& operator=(const PgConnectionPool&) = delete;
  ~PgConnectionPool();

  // Borrows a connection (opening it if needed) and runs `SELECT 1`: OK when
  // the database answers. kUnavailable otherwise, with libpq's reason. For
  // readiness checks and for failing fast at start-up.
  absl::Status CheckConnection();

  // The database URL with its password masked, for logs and error messages.
  const std::string& redacted_url() const { return redacted_url_; }

  // `text` with the database password masked wherever it occurs: for
  // messages from libpq, which may quote the connection string.
  std::string RedactSecrets(std::string_view text) const;

  int size() const { return options_.size; }

 private:
  friend class PgSession;
  // Opens a dedicated connection (a LISTEN session) with conninfo_.
  friend class PgNotificationListener;

  PgConnectionPool(std::string database_url, PgPoolOptions options);

  // Takes an idle slot, waiting up to acquire_timeout, and makes sure it holds
  // an open connection. kUnavailable when none frees up in time or the
  // connection cannot be opened (the slot is returned to the pool).
  absl::StatusOr<PgPoolSlot*> Take();
  // Returns a slot taken by Take(). With `broken`, its connection is closed
  // and the next Take() of the slot opens a new one.
  void Give(PgPoolSlot* slot, bool broken);

  const std::string conninfo_;  // the URL plus our defaults; holds the password
  const std::string redacted_url_;
  const PgPoolOptions options_;
  std::vector<std::unique_ptr<PgPoolSlot>> slots_;  // owns every slot; fixed after construction

  absl::Mutex mu_;
  std::vector<PgPoolSlot*> idle_ ABSL_GUARDED_BY(mu_);
};

}  // namespace herald

#endif  // HERALD_SERVICE_STORE_PG_CONNECTION_POOL_H_
