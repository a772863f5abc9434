// Helpers shared by the PostgreSQL store tests: a QueryObserver that records
// what the stores report, a pool factory, a port nobody listens on, and a
// deadline loop for waiting on the database clock.
//
//   RecordingQueryObserver observer;
//   std::unique_ptr<PgConnectionPool> pool = MakePool(CreateScratchDatabase("devices"));
//   PgDeviceStore store(pool.get(), &observer);
//   EXPECT_TRUE(observer.Saw("get_device"));
#ifndef HERALD_TESTS_INTEGRATION_STORE_STORE_TEST_SUPPORT_H_
#define HERALD_TESTS_INTEGRATION_STORE_STORE_TEST_SUPPORT_H_

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "service/core/query_observer.h"
#include "service/store/pg_connection_pool.h"
#include "service/store/pg_session.h"

namespace herald::testing {

// Thread-safe.
class RecordingQueryObserver final : public QueryObserver {
 public:
  struct Observation {
    std::string operation;
    absl::Duration elapsed;
    bool ok;
  };

  void ObserveQuery(std::string_view operation, absl::Duration elapsed, bool ok) override {
    absl::MutexLock lock(&mu_);
    observations_.push_back({std::string(operation), elapsed, ok});
  }

  std::vector<Observation> observations() const {
    absl::MutexLock lock(&mu_);
    return observations_;
  }

  // Whether `operation` was reported with the given outcome.
  bool Saw(std::string_view operation, bool ok = true) const {
    absl::MutexLock lock(&mu_);
    for (const Observation& observation : observations_) {
      if (observation.operation == operation && observation.ok == ok) return true;
    }
    return false;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<Observation> observations_ ABSL_GUARDED_BY(mu_);
};

inline std::unique_ptr<PgConnectionPool> MakePool(const std::string& url,
                                                  PgPoolOptions options = {}) {
  absl::StatusOr<std::unique_ptr<PgConnectionPool>> pool = PgConnectionPool::Create(url, options);
  EXPECT_TRUE(pool.ok()) << pool.status();
  return pool.ok() ? *std::move(pool) : nullptr;
}

// A loopback port that nothing listens on (the kernel picked it for a socket
// that is closed again at once).
// Rows of `table` that `pool`'s sessions have read so far, sequentially or
// through an index (pg_stat_user_tables): what a store's statements cost,
// independent of timing. Give the store a pool of one connection, so that
// its statements ran on the backend whose counters this publishes first
// (PostgreSQL 15 publishes a backend's counters at most once a second
// unless told to).
inline int64_t RowsReadFrom(PgConnectionPool& pool, const std::string& table) {
  absl::StatusOr<PgSession> session = PgSession::Open(pool);
  EXPECT_TRUE(session.ok()) << session.status();
  if (!session.ok()) return -1;
  {
    pqxx::nontransaction flush(session->connection());
    flush.exec("SELECT pg_stat_force_next_flush()");
  }
  pqxx::nontransaction read(session->connection());
  return read
      .exec_params1("SELECT coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0)"
                    " FROM pg_stat_user_tables WHERE relname = $1",
                    table)[0]
      .as<int64_t>();
}

inline int UnusedLocalPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof(address);
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    close(fd);
    return 1;  // port 1: nothing listens there either
  }
  close(fd);
  return ntohs(address.sin_port);
}

// Polls `condition` until it holds or `timeout` passes; returns its last value.
template <typename Condition>
bool WaitFor(Condition condition, absl::Duration timeout,
             absl::Duration poll = absl::Milliseconds(50)) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    if (condition()) return true;
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(poll);
  }
}

}  // namespace herald::testing

#endif  // HERALD_TESTS_INTEGRATION_STORE_STORE_TEST_SUPPORT_H_
