#include "service/store/pg_listener.h"

#include <algorithm>
#include <exception>
#include <memory>
#include <pqxx/pqxx>
#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "service/core/database_url.h"
#include "service/core/logging.h"

namespace herald {
namespace {

// Hands each notification of one channel to the callback.
class Receiver final : public pqxx::notification_receiver {
 public:
  Receiver(pqxx::connection_base& connection, const std::string& channel,
           const std::function<void(const std::string&)>& on_notify)
      : pqxx::notification_receiver(connection, channel), on_notify_(on_notify) {}

  void operator()(const std::string& payload, int /*backend_pid*/) override {
    try {
      on_notify_(payload);
    } catch (const std::exception& e) {
      LogError("database notification callback threw",
               {{"channel", channel()}, {"error", e.what()}});
    }
  }

 private:
  const std::function<void(const std::string&)>& on_notify_;
};

// libpq's TCP keep-alives, so that a connection whose peer vanished without
// a FIN (a failed-over database host) is noticed in about a minute rather
// than the operating system's two hours. The URL's own settings win.
std::string ListenerConninfo(const std::string& conninfo) {
  std::string result = WithDefaultParameter(conninfo, "keepalives", "1");
  result = WithDefaultParameter(result, "keepalives_idle", "30");
  result = WithDefaultParameter(result, "keepalives_interval", "10");
  return WithDefaultParameter(result, "keepalives_count", "3");
}

}  // namespace

PgNotificationListener::PgNotificationListener(
    const PgConnectionPool& pool, std::string channel,
    std::function<void(const std::string& payload)> on_notify, PgListenerOptions options)
    : pool_(pool),
      channel_(std::move(channel)),
      on_notify_(std::move(on_notify)),
      options_(options) {}

PgNotificationListener::~PgNotificationListener() { Stop(); }

void PgNotificationListener::Start() {
  absl::MutexLock lock(&mu_);
  if (started_ || stopping_) return;
  started_ = true;
  thread_ = std::thread([this] { Run(); });
}

void PgNotificationListener::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

bool PgNotificationListener::listening() const {
  absl::MutexLock lock(&mu_);
  return listening_;
}

bool PgNotificationListener::SleepUnlessStopped(absl::Duration delay) {
  absl::MutexLock lock(&mu_);
  const auto stopping = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_; };
  mu_.AwaitWithTimeout(absl::Condition(&stopping), delay);
  return !stopping_;
}

void PgNotificationListener::Run() {
  const std::string conninfo = ListenerConninfo(pool_.conninfo_);
  const long slice_us = static_cast<long>(
      std::max<int64_t>(1000, absl::ToInt64Microseconds(options_.poll_slice)));
  absl::Duration backoff = options_.reconnect_min;
  bool failing = false;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) break;
    }
    std::string error;
    try {
      pqxx::connection connection(conninfo);
      // Without this, libpqxx 6 silently reconnects a broken connection and
      // we would not know that notifications were missed meanwhile. (It is
      // deprecated because libpqxx 7 dropped reactivation altogether.)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
      connection.inhibit_reactivation(true);
#pragma GCC diagnostic pop
      Receiver receiver(connection, channel_, on_notify_);  // sends LISTEN
      {
        absl::MutexLock lock(&mu_);
        listening_ = true;
      }
      if (failing) {
        LogInfo("database notifications restored", {{"channel", channel_}});
        failing = false;
      }
      backoff = options_.reconnect_min;
      // Whatever was sent while we were not listening is lost.
      on_notify_("");
      while (true) {
        {
          absl::MutexLock lock(&mu_);
          if (stopping_) break;
        }
        connection.await_notification(0, slice_us);
      }
    } catch (const std::exception& e) {
      // libpq's message spans lines; one reads better in a log. It may
      // quote the connection string: redact the password.
      error = std::string(absl::StripAsciiWhitespace(absl::StrReplaceAll(
          pool_.RedactSecrets(e.what()), {{"\n\t", " "}, {"\n", " "}})));
    }
    {
      absl::MutexLock lock(&mu_);
      listening_ = false;
      if (stopping_) break;
    }
    LogWarning("database notifications unavailable; waiters fall back to polling",
               {{"channel", channel_},
                {"database", pool_.redacted_url()},
                {"error", error},
                {"retry_in", absl::FormatDuration(backoff)}});
    failing = true;
    if (!SleepUnlessStopped(backoff)) break;
    backoff = std::min(backoff * 2, options_.reconnect_max);
  }
}

}  // namespace herald
