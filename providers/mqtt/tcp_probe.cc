#include "providers/mqtt/tcp_probe.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace herald {
namespace {

// Closes a file descriptor when it goes out of scope, unless released.
class ScopedFd {
 public:
  explicit ScopedFd(int fd) : fd_(fd) {}
  ~ScopedFd() {
    if (fd_ >= 0) close(fd_);
  }
  ScopedFd(const ScopedFd&) = delete;
  ScopedFd& operator=(const ScopedFd&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

// 0 with a socket connected to `address` before `deadline` in
// *connected_fd (the caller's to close), or an errno value (ETIMEDOUT on
// timeout).
int ConnectBefore(const addrinfo& address, absl::Time deadline, int* connected_fd) {
  ScopedFd fd(socket(address.ai_family, address.ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                     address.ai_protocol));
  if (fd.get() < 0) return errno;
  if (connect(fd.get(), address.ai_addr, address.ai_addrlen) != 0) {
    if (errno != EINPROGRESS) return errno;
    while (true) {
      const int64_t remaining_ms = absl::ToInt64Milliseconds(deadline - absl::Now());
      if (remaining_ms <= 0) return ETIMEDOUT;
      pollfd poll_fd{.fd = fd.get(), .events = POLLOUT, .revents = 0};
      const int ready = poll(&poll_fd, 1, static_cast<int>(remaining_ms));
      if (ready < 0 && errno == EINTR) continue;
      if (ready < 0) return errno;
      if (ready == 0) return ETIMEDOUT;
      int error = 0;
      socklen_t length = sizeof(error);
      if (getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &error, &length) != 0) return errno;
      if (error != 0) return error;
      break;
    }
  }
  *connected_fd = fd.release();
  return 0;
}

}  // namespace

absl::StatusOr<int> OpenTcpConnection(const std::string& host, int port, absl::Time deadline) {
  const std::string where = absl::StrCat("TCP connect to ", host, ":", port);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* addresses = nullptr;
  const std::string service = std::to_string(port);
  if (const int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &addresses); rc != 0) {
    return absl::UnavailableError(
        absl::StrCat(where, ": cannot resolve the host: ", gai_strerror(rc)));
  }
  int error = ETIMEDOUT;
  int connected_fd = -1;
  for (const addrinfo* address = addresses; address != nullptr; address = address->ai_next) {
    error = ConnectBefore(*address, deadline, &connected_fd);
    if (error == 0) break;
  }
  freeaddrinfo(addresses);
  if (error == 0) return connected_fd;
  return absl::UnavailableError(
      absl::StrCat(where, ": ", error == ETIMEDOUT ? "timed out" : std::strerror(error)));
}

absl::Status ProbeTcpConnect(const std::string& host, int port, absl::Duration timeout) {
  absl::StatusOr<int> fd = OpenTcpConnection(host, port, absl::Now() + timeout);
  if (!fd.ok()) return fd.status();
  close(*fd);
  return absl::OkStatus();
}

}  // namespace herald
