// TcpProxy: a loopback TCP proxy for fault-injection tests. It forwards
// every connection to a target port and can slow the traffic down (a fixed
// delay per chunk and a bandwidth cap), so a test can play a slow or
// overloaded broker without touching the broker itself, or lose a reply:
// with replies dropped, what the target sends back is discarded, and
// cutting the connections then makes the client see a connection lost
// after its request took effect.
//
//   TcpProxy proxy(broker_port);
//   ASSERT_TRUE(proxy.Start().ok());
//   proxy.SetThrottle(absl::Milliseconds(20), /*bytes_per_second=*/20000);
//   ... connect Herald to 127.0.0.1:proxy.port() ...
//   proxy.SetThrottle(absl::ZeroDuration(), 0);  // back to full speed
#ifndef HERALD_TESTS_TESTING_TCP_PROXY_H_
#define HERALD_TESTS_TESTING_TCP_PROXY_H_

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace herald::testing {

// Thread-safe. Stops (closing every connection) when destroyed.
class TcpProxy {
 public:
  explicit TcpProxy(int target_port);
  ~TcpProxy();

  // Listens on a free loopback port.
  absl::Status Start();
  int port() const { return port_; }

  // Each forwarded chunk waits `delay`; the total rate (both directions) is
  // capped at `bytes_per_second` (0: no cap).
  void SetThrottle(absl::Duration delay, int64_t bytes_per_second);

  // While set, bytes from the target to the client are read and dropped.
  void SetDropReplies(bool drop) { drop_replies_ = drop; }

  // Closes every open connection (both ends); new ones are still accepted.
  void CutConnections();

  int64_t bytes_forwarded() const { return bytes_forwarded_.load(); }

 private:
  void AcceptLoop();
  // Forwards from `from` to `to`; `replies` for the target-to-client side.
  void Pump(int from, int to, bool replies);
  void Pace(size_t bytes);

  const int target_port_;
  int port_ = 0;
  int listen_fd_ = -1;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> drop_replies_{false};
  std::atomic<int64_t> bytes_forwarded_{0};

  absl::Mutex mu_;
  absl::Duration delay_ ABSL_GUARDED_BY(mu_) = absl::ZeroDuration();
  int64_t bytes_per_second_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time next_free_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  std::vector<int> sockets_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> threads_ ABSL_GUARDED_BY(mu_);
  std::thread acceptor_;
};

}  // namespace herald::testing

#endif  // HERALD_TESTS_TESTING_TCP_PROXY_H_
