#include "tests/testing/http_get.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace herald::testing {

absl::StatusOr<HttpResponse> HttpGetFull(int port, const std::string& target,
                                         absl::Duration timeout) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError("socket failed");
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(absl::ToInt64Seconds(timeout));
  tv.tv_usec = static_cast<suseconds_t>(absl::ToInt64Microseconds(timeout) % 1000000);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    close(fd);
    return absl::UnavailableError(absl::StrCat("nothing listens on 127.0.0.1:", port));
  }
  const std::string request =
      absl::StrCat("GET ", target, " HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  // MSG_NOSIGNAL: a server that closed at once is an error, not SIGPIPE.
  if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    close(fd);
    return absl::UnavailableError("cannot send the request");
  }
  std::string response;
  char buffer[65536];
  while (true) {
    const ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n > 0) {
      response.append(buffer, static_cast<size_t>(n));
      continue;
    }
    if (n < 0) {
      close(fd);
      return absl::UnavailableError(absl::StrCat("no complete answer from 127.0.0.1:", port));
    }
    break;
  }
  close(fd);
  // "HTTP/1.1 200 OK\r\n...\r\n\r\nbody"
  const size_t space = response.find(' ');
  int status = 0;
  if (!absl::StartsWith(response, "HTTP/") || space == std::string::npos ||
      !absl::SimpleAtoi(response.substr(space + 1, 3), &status)) {
    return absl::InternalError(absl::StrCat("not an HTTP answer: ", response.substr(0, 100)));
  }
  const size_t body = response.find("\r\n\r\n");
  return HttpResponse{status, body == std::string::npos ? "" : response.substr(body + 4)};
}

absl::StatusOr<std::string> HttpGet(int port, const std::string& target) {
  absl::StatusOr<HttpResponse> response = HttpGetFull(port, target);
  if (!response.ok()) return response.status();
  if (response->status != 200) {
    return absl::InternalError(absl::StrCat("HTTP ", response->status, " for ", target));
  }
  return std::move(response->body);
}

}  // namespace herald::testing
