#include "tests/testing/herald_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "tests/testing/api_key_channel.h"

namespace herald::testing {
namespace {

std::string TempLogPath() {
  static int counter = 0;
  const char* tmp = std::getenv("TMPDIR");
  return absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/herald-test-", getpid(), "-", ++counter,
                      ".log");
}

pid_t Spawn(const std::vector<std::string>& args, const std::string& log_path,
            const std::vector<std::pair<std::string, std::string>>& env = {}) {
  const pid_t pid = fork();
  if (pid != 0) return pid;
  for (const auto& [name, value] : env) {
    if (value.empty()) {
      unsetenv(name.c_str());
    } else {
      setenv(name.c_str(), value.c_str(), 1);
    }
  }
  // Child: output to the log, default signal mask, exec.
  const int fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd >= 0) {
    dup2(fd, STDOUT_FILENO);
    dup2(fd, STDERR_FILENO);
    close(fd);
  }
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  std::vector<char*> argv;
  const std::string binary = HeraldBinary();
  argv.push_back(const_cast<char*>(binary.c_str()));
  for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  execv(binary.c_str(), argv.data());
  _exit(127);
}

// Waits for `pid` up to `timeout`; returns the exit code or -1 on timeout.
int WaitFor(pid_t pid, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    int status = 0;
    const pid_t done = waitpid(pid, &status, WNOHANG);
    if (done == pid) {
      if (WIFEXITED(status)) return WEXITSTATUS(status);
      if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
      return -1;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  return -1;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The integer after `key=` in `log`, or 0.
int FindPort(const std::string& log, const std::string& key) {
  const size_t at = log.find(key + "=");
  if (at == std::string::npos) return 0;
  size_t end = at + key.size() + 1;
  while (end < log.size() && isdigit(static_cast<unsigned char>(log[end]))) ++end;
  int port = 0;
  (void)absl::SimpleAtoi(log.substr(at + key.size() + 1, end - at - key.size() - 1), &port);
  return port;
}

}  // namespace

std::string HeraldBinary() {
  const char* binary = std::getenv("HERALD_BINARY");
  return binary != nullptr ? binary : HERALD_BINARY_DEFAULT;
}

absl::StatusOr<int> RunHerald(const std::vector<std::string>& args, std::string* output,
                              absl::Duration timeout) {
  const std::string log_path = TempLogPath();
  const pid_t pid = Spawn(args, log_path);
  if (pid < 0) return absl::InternalError("fork failed");
  const int code = WaitFor(pid, timeout);
  if (code < 0) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  }
  if (output != nullptr) *output = ReadFile(log_path);
  unlink(log_path.c_str());
  if (code < 0) return absl::DeadlineExceededError("herald did not finish in time");
  return code;
}

HeraldProcess::HeraldProcess(std::vector<std::string> args) : args_(std::move(args)) {
  bool has_grpc = false;
  bool has_metrics = false;
  for (const std::string& arg : args_) {
    has_grpc |= absl::StartsWith(arg, "--grpc_address");
    has_metrics |= absl::StartsWith(arg, "--metrics_address");
  }
  if (!has_grpc) args_.push_back("--grpc_address=127.0.0.1:0");
  if (!has_metrics) args_.push_back("--metrics_address=127.0.0.1:0");
  args_.insert(args_.begin(), "serve");
  log_path_ = TempLogPath();
}

HeraldProcess::~HeraldProcess() {
  if (pid_ > 0) Kill();
}

void HeraldProcess::SetEnv(const std::string& name, const std::string& value) {
  for (auto& [existing, existing_value] : env_) {
    if (existing == name) {
      existing_value = value;
      return;
    }
  }
  env_.emplace_back(name, value);
}

bool HeraldProcess::Running() {
  if (pid_ <= 0) return false;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) == pid_) {
    last_exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    pid_ = -1;
    return false;
  }
  return true;
}

// Runs `herald migrate` and `herald keys create` against the database named
// in `args`; returns the key ("" when there is no --database_url or auth is
// off).
static absl::StatusOr<std::string> MakeApiKey(const std::vector<std::string>& args) {
  std::string database_flag;
  for (const std::string& arg : args) {
    if (arg == "--insecure_disable_auth" || arg == "--insecure_disable_auth=true") return "";
    if (absl::StartsWith(arg, "--database_url=")) database_flag = arg;
  }
  if (database_flag.empty()) return "";
  std::string output;
  absl::StatusOr<int> migrated = RunHerald({"migrate", database_flag}, &output);
  if (!migrated.ok() || *migrated != 0) {
    return absl::InternalError(absl::StrCat("herald migrate failed:\n", output));
  }
  absl::StatusOr<int> created = RunHerald({"keys", "create", database_flag, "--tenant=default",
                                           "--scopes=all", "--key_name=test-harness"},
                                          &output);
  if (!created.ok() || *created != 0) {
    return absl::InternalError(absl::StrCat("herald keys create failed:\n", output));
  }
  for (absl::string_view line : absl::StrSplit(output, '\n')) {
    if (absl::StartsWith(line, "hk_")) return std::string(line);
  }
  return absl::InternalError(absl::StrCat("herald keys create printed no key:\n", output));
}

std::shared_ptr<grpc::Channel> HeraldProcess::NewChannel() const {
  return CreateApiKeyChannel(grpc_target(), api_key_);
}

absl::Status HeraldProcess::Start(absl::Duration timeout) {
  if (pid_ > 0) return absl::FailedPreconditionError("herald is already running");
  if (!key_made_) {
    absl::StatusOr<std::string> key = MakeApiKey(args_);
    if (!key.ok()) return key.status();
    api_key_ = *std::move(key);
    key_made_ = true;
  }
  if (std::ifstream(log_path_).good()) log_path_ = TempLogPath();
  pid_ = Spawn(args_, log_path_, env_);
  if (pid_ < 0) return absl::InternalError("fork failed");
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    const std::string log = ReadLog();
    if (absl::StrContains(log, "herald serving")) {
      grpc_port_ = FindPort(log, "grpc_port");
      metrics_port_ = FindPort(log, "metrics_port");
      return absl::OkStatus();
    }
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return absl::InternalError(absl::StrCat("herald exited during start:\n", log));
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  return absl::DeadlineExceededError(absl::StrCat("herald did not start:\n", ReadLog()));
}

int HeraldProcess::Stop(absl::Duration timeout) {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGTERM);
  int code = WaitFor(pid_, timeout);
  if (code < 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    code = 128 + SIGKILL;
  }
  pid_ = -1;
  return code;
}

void HeraldProcess::Kill() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

std::string HeraldProcess::ReadLog() const { return ReadFile(log_path_); }

}  // namespace herald::testing
