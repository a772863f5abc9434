#include "service/core/command.h"

#include "service/core/command_store.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "service/core/validation.h"

namespace herald {
namespace {

absl::Status Invalid(absl::string_view field, absl::string_view rule) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", rule));
}

bool HasControlCharacter(std::string_view text) {
  for (char c : text) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) return true;
  }
  return false;
}

absl::string_view Av(std::string_view text) { return absl::string_view(text.data(), text.size()); }

}  // namespace

std::string_view CommandStateName(CommandState state) {
  switch (state) {
    case CommandState::kPending: return "pending";
    case CommandState::kSucceeded: return "succeeded";
    case CommandState::kError: return "error";
    case CommandState::kTimedOut: return "timed_out";
  }
  return "pending";
}

std::optional<CommandState> CommandStateFromName(std::string_view name) {
  for (CommandState state : {CommandState::kPending, CommandState::kSucceeded,
                             CommandState::kError, CommandState::kTimedOut}) {
    if (CommandStateName(state) == name) return state;
  }
  return std::nullopt;
}

std::string_view ResponseDispositionName(ResponseDisposition disposition) {
  switch (disposition) {
    case ResponseDisposition::kRecorded: return "recorded";
    case ResponseDisposition::kAlreadyAnswered: return "already_answered";
    case ResponseDisposition::kTooLate: return "too_late";
    case ResponseDisposition::kUnknown: return "unknown";
    case ResponseDisposition::kWrongDevice: return "wrong_device";
  }
  return "unknown";
}

CommandState StateForDeviceStatus(std::string_view status) {
  return status == "success" ? CommandState::kSucceeded : CommandState::kError;
}

absl::Status ValidateCommandRequest(const CommandRequest& request) {
  if (absl::Status id = ValidateId(request.device_id, "device_id"); !id.ok()) return id;
  if (request.action.empty()) return Invalid("action", "is required (e.g. \"on\")");
  if (request.action.size() > kMaxCommandActionBytes) {
    return Invalid("action", absl::StrCat("must be at most ", kMaxCommandActionBytes,
                                          " bytes (is ", request.action.size(), ")"));
  }
  if (HasControlCharacter(request.action)) {
    return Invalid("action", "must not contain control characters");
  }
  if (request.params.size() > kMaxCommandParams) {
    return Invalid("params", absl::StrCat("at most ", kMaxCommandParams, " entries (got ",
                                          request.params.size(), ")"));
  }
  for (const auto& [key, value] : request.params) {
    if (key.empty() || key.size() > kMaxCommandParamKeyBytes) {
      return Invalid("params", absl::StrCat("keys must be 1-", kMaxCommandParamKeyBytes,
                                            " bytes (got ", key.size(), ")"));
    }
    if (HasControlCharacter(key)) {
      return Invalid("params", "keys must not contain control characters");
    }
    const std::string field = absl::StrCat("params[\"", key, "\"]");
    if (value.size() > kMaxCommandParamValueBytes) {
      return Invalid(field, absl::StrCat("must be at most ", kMaxCommandParamValueBytes,
                                         " bytes (is ", value.size(), ")"));
    }
    if (Av(value).find('\0') != absl::string_view::npos) {
      return Invalid(field, "must not contain NUL");
    }
  }
  if (request.qos < 0 || request.qos > 2) {
    return Invalid("qos", absl::StrCat("must be 0, 1 or 2 (got ", request.qos, ")"));
  }
  if (request.timeout < kMinCommandTimeout || request.timeout > kMaxCommandTimeout) {
    return Invalid("timeout", absl::StrCat("must be between ",
                                           absl::FormatDuration(kMinCommandTimeout), " and ",
                                           absl::FormatDuration(kMaxCommandTimeout), " (got ",
                                           absl::FormatDuration(request.timeout), ")"));
  }
  if (request.max_retries < 0 || request.max_retries > kMaxCommandRetries) {
    return Invalid("max_retries", absl::StrCat("must be between 0 and ", kMaxCommandRetries,
                                               " (got ", request.max_retries, ")"));
  }
  return absl::OkStatus();
}

}  // namespace herald
