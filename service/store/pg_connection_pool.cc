#include "service/store/pg_connection_pool.h"

#include <algorithm>
#include <memory>
#include <pqxx/pqxx>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "service/core/logging.h"
#include "service/core/database_url.h"
#include "service/store/pg_session.h"

namespace herald {
namespace {

std::string BuildConninfo(const std::string& database_url, absl::Duration connect_timeout) {
  const int64_t seconds = std::max<int64_t>(2, absl::ToInt64Seconds(connect_timeout));
  std::string conninfo =
      WithDefaultParameter(database_url, "connect_timeout", absl::StrCat(seconds));
  conninfo = WithDefaultParameter(conninfo, "fallback_application_name", "herald");
  // A database that vanishes from the network (no FIN, no RST) must turn
  // into an error in seconds, not in the kernel's default of minutes: TCP
  // keepalives find an idle dead peer, tcp_user_timeout a busy one.
  conninfo = WithDefaultParameter(conninfo, "keepalives", "1");
  conninfo = WithDefaultParameter(conninfo, "keepalives_idle", "3");
  conninfo = WithDefaultParameter(conninfo, "keepalives_interval", "1");
  conninfo = WithDefaultParameter(conninfo, "keepalives_count", "2");
  return WithDefaultParameter(conninfo, "tcp_user_timeout", "5000");
}

}  // namespace

absl::StatusOr<std::unique_ptr<PgConnectionPool>> PgConnectionPool::Create(std::string database_url,
                                                                           PgPoolOptions options) {
  if (options.size < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("database pool size: must be at least 1, got ", options.size));
  }
  if (options.acquire_timeout < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("database pool acquire_timeout: must not be negative");
  }
  if (options.connect_timeout < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("database pool connect_timeout: must not be negative");
  }
  return std::unique_ptr<PgConnectionPool>(new PgConnectionPool(std::move(database_url), options));
}

PgConnectionPool::PgConnectionPool(std::string database_url, PgPoolOptions options)
    : conninfo_(BuildConninfo(database_url, options.connect_timeout)),
      redacted_url_(RedactDatabaseUrl(database_url)),
      options_(options) {
  slots_.reserve(options_.size);
  absl::MutexLock lock(&mu_);
  for (int i = 0; i < options_.size; ++i) {
    slots_.push_back(std::make_unique<PgPoolSlot>());
    idle_.push_back(slots_.back().get());
  }
}

PgConnectionPool::~PgConnectionPool() = default;

std::string PgConnectionPool::RedactSecrets(std::string_view text) const {
  return RedactPassword(text, conninfo_);
}

absl::StatusOr<PgPoolSlot*> PgConnectionPool::Take() {
  PgPoolSlot* slot = nullptr;
  {
    const auto has_idle = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return !idle_.empty(); };
    absl::MutexLock lock(&mu_);
    if (!mu_.AwaitWithTimeout(absl::Condition(&has_idle), options_.acquire_timeout)) {
      return absl::UnavailableError(
          absl::StrCat("database ", redacted_url_, ": no connection free after waiting ",
                       absl::FormatDuration(options_.acquire_timeout), " (all ", options_.size,
                       " pooled connections busy; raise the pool size or lower the load)"));
    }
    slot = idle_.back();
    idle_.pop_back();
  }
  if (slot->connection != nullptr && slot->connection->is_open()) return slot;

  // Open (or reopen) the slot's connection outside the lock: it takes a
  // network round trip or, with the database down, up to connect_timeout.
  slot->connection.reset();
  slot->prepared.clear();
  try {
    slot->connection = std::make_unique<pqxx::connection>(conninfo_);
    return slot;
  } catch (const std::exception& e) {
    // libpq's message spans lines ("...failed: Connection refused\n\tIs the
    // server running...?"); one line reads better in a status and a log.
    std::string reason(absl::StripAsciiWhitespace(
        absl::StrReplaceAll(RedactSecrets(e.what()), {{"\n\t", " "}, {"\n", " "}})));
    Give(slot, /*broken=*/true);
    return absl::UnavailableError(
        absl::StrCat("database ", redacted_url_, ": cannot connect: ", reason));
  }
}

void PgConnectionPool::Give(PgPoolSlot* slot, bool broken) {
  if (broken && slot->connection != nullptr) {
    slot->connection.reset();  // closes the socket; harmless if already closed
    slot->prepared.clear();
    LogWarning("database connection dropped; a new one opens on next use",
               {{"database", redacted_url_}});
  }
  absl::MutexLock lock(&mu_);
  idle_.push_back(slot);
}

absl::Status PgConnectionPool::CheckConnection() {
  absl::StatusOr<PgSession> session = PgSession::Open(*this);
  if (!session.ok()) return session.status();
  try {
    pqxx::nontransaction tx(session->connection());
    tx.exec("SELECT 1");
    return absl::OkStatus();
  } catch (...) {
    PgFailure failure = TranslateCurrentException("check_connection", *this);
    if (!session->connection().is_open()) session->MarkBroken();
    return failure.status;
  }
}

}  // namespace herald
