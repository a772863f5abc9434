#include "tests/testing/tcp_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace herald::testing {

TcpProxy::TcpProxy(int target_port) : target_port_(target_port) {}

TcpProxy::~TcpProxy() {
  stopping_ = true;
  if (listen_fd_ >= 0) shutdown(listen_fd_, SHUT_RDWR);
  if (acceptor_.joinable()) acceptor_.join();
  if (listen_fd_ >= 0) close(listen_fd_);
  std::vector<std::thread> threads;
  {
    absl::MutexLock lock(&mu_);
    for (int fd : sockets_) shutdown(fd, SHUT_RDWR);
    threads.swap(threads_);
  }
  for (std::thread& thread : threads) thread.join();
  absl::MutexLock lock(&mu_);
  for (int fd : sockets_) close(fd);
}

absl::Status TcpProxy::Start() {
  listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
  if (listen_fd_ < 0) return absl::InternalError("socket failed");
  const int one = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      listen(listen_fd_, 64) != 0) {
    return absl::InternalError("cannot listen on loopback");
  }
  socklen_t length = sizeof(address);
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &length);
  port_ = ntohs(address.sin_port);
  acceptor_ = std::thread([this] { AcceptLoop(); });
  return absl::OkStatus();
}

void TcpProxy::SetThrottle(absl::Duration delay, int64_t bytes_per_second) {
  absl::MutexLock lock(&mu_);
  delay_ = delay;
  bytes_per_second_ = bytes_per_second;
  next_free_ = absl::InfinitePast();
}

void TcpProxy::AcceptLoop() {
  while (!stopping_) {
    const int client = accept(listen_fd_, nullptr, nullptr);
    if (client < 0) {
      if (stopping_) return;
      continue;
    }
    const int upstream = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in target{};
    target.sin_family = AF_INET;
    target.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    target.sin_port = htons(static_cast<uint16_t>(target_port_));
    if (upstream < 0 ||
        connect(upstream, reinterpret_cast<sockaddr*>(&target), sizeof(target)) != 0) {
      close(client);
      if (upstream >= 0) close(upstream);
      continue;
    }
    const int one = 1;
    setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(upstream, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    absl::MutexLock lock(&mu_);
    sockets_.push_back(client);
    sockets_.push_back(upstream);
    threads_.emplace_back([this, client, upstream] { Pump(client, upstream, false); });
    threads_.emplace_back([this, client, upstream] { Pump(upstream, client, true); });
  }
}

void TcpProxy::Pace(size_t bytes) {
  absl::Time wake;
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = absl::Now();
    absl::Duration cost = delay_;
    if (bytes_per_second_ > 0) {
      cost += absl::Seconds(static_cast<double>(bytes) / static_cast<double>(bytes_per_second_));
    }
    if (cost <= absl::ZeroDuration()) return;
    next_free_ = std::max(next_free_, now) + cost;
    wake = next_free_;
  }
  absl::SleepFor(wake - absl::Now());
}

void TcpProxy::CutConnections() {
  absl::MutexLock lock(&mu_);
  for (int fd : sockets_) shutdown(fd, SHUT_RDWR);
}

void TcpProxy::Pump(int from, int to, bool replies) {
  char buffer[16384];
  while (!stopping_) {
    const ssize_t n = read(from, buffer, sizeof(buffer));
    if (n <= 0) break;
    if (replies && drop_replies_) continue;
    Pace(static_cast<size_t>(n));
    ssize_t written = 0;
    while (written < n) {
      // MSG_NOSIGNAL: a peer that CutConnections (or the other side) shut
      // down must fail this send with EPIPE, not kill the test with SIGPIPE.
      const ssize_t w =
          send(to, buffer + written, static_cast<size_t>(n - written), MSG_NOSIGNAL);
      if (w <= 0) break;
      written += w;
    }
    if (written < n) break;
    bytes_forwarded_ += n;
  }
  // One side closed: close both directions so the peer notices.
  shutdown(from, SHUT_RDWR);
  shutdown(to, SHUT_RDWR);
}

}  // namespace herald::testing
