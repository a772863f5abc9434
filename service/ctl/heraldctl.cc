// heraldctl: Herald's gRPC API from the command line, for operators and for
// trying Herald out. Readable tables by default, protobuf JSON with --json.
//
//   heraldctl devices create sensor-001 --owner=home-1 --groups=floor-1 room=kitchen
//   heraldctl devices list --owner=home-1
//   heraldctl notify --devices=sensor-001 --title="Door open" --qos=1 door=front --wait
//   heraldctl notification get <id>
//   heraldctl stats --json
//   heraldctl command send sensor-001 reboot delay=5
//
// Exit codes: 0 success, 1 the call failed (the server's code and message go
// to stderr), 2 the command line is wrong.
#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "google/protobuf/util/time_util.h"
#include "herald/v1/command.grpc.pb.h"
#include "herald/v1/device.grpc.pb.h"
#include "herald/v1/notification.grpc.pb.h"
#include "herald/v1/stats.grpc.pb.h"
#include "service/ctl/cli.h"
#include "service/ctl/printers.h"

#ifndef HERALD_VERSION
#error "HERALD_VERSION must be defined by the build (service/ctl/CMakeLists.txt)"
#endif

// Everywhere.
ABSL_FLAG(std::string, address, "127.0.0.1:50051",
          "Herald's gRPC address, HOST:PORT (or unix:PATH). Left at its default, "
          "$HERALDCTL_ADDRESS wins when set.");
ABSL_FLAG(bool, json, false, "Print the answer as protobuf JSON instead of text.");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(30),
          "Deadline of each call (and of notify --wait).");
ABSL_FLAG(std::string, api_key_file, "",
          "File holding the API key (herald keys create) sent with every call; else "
          "$HERALD_API_KEY. There is no --api_key: command lines are visible to every user.");
ABSL_FLAG(bool, tls, false,
          "Speak TLS to Herald (herald --grpc_tls_cert_file), trusting the system's CAs unless "
          "--tls_ca_file says otherwise. Implied by every other --tls_* flag.");
ABSL_FLAG(std::string, tls_ca_file, "",
          "Speak TLS and trust the CA certificate(s) in this PEM file to have signed Herald's "
          "certificate.");
ABSL_FLAG(std::string, tls_cert_file, "",
          "PEM client certificate, for a Herald that requires one (mutual TLS, herald "
          "--grpc_tls_client_ca_file). Needs --tls_key_file.");
ABSL_FLAG(std::string, tls_key_file, "", "PEM private key of --tls_cert_file.");
ABSL_FLAG(std::string, tls_server_name, "",
          "The name Herald's certificate must carry, when it is not the host of --address "
          "(e.g. --address=10.0.0.7:50051 --tls_server_name=herald.example.com).");

// devices.
ABSL_FLAG(std::string, owner, "", "devices create: the owner; devices list: only this owner's.");
ABSL_FLAG(std::string, platform, "", "devices create/list: the platform (mqtt).");
ABSL_FLAG(std::string, topic, "",
          "devices create: the device's own notification topic; notify: publish once to this raw "
          "topic (a broadcast).");
ABSL_FLAG(std::vector<std::string>, groups, {},
          "devices create: the device's groups; notify: every enabled device in these groups. "
          "Comma-separated.");
ABSL_FLAG(bool, disabled, false, "devices create: create the device disabled.");
ABSL_FLAG(std::string, group, "", "devices list: only devices in this group.");
ABSL_FLAG(std::string, online, "", "devices list: only online (true) or offline (false) devices.");
ABSL_FLAG(int32_t, page_size, 0,
          "devices list, notification list: entries per page; notification get: deliveries per "
          "page. 0 is the server's default.");
ABSL_FLAG(std::string, page_token, "", "Continue a listing from this token.");
ABSL_FLAG(bool, all, false, "devices list, notification list: fetch every page.");

// notify.
ABSL_FLAG(std::vector<std::string>, devices, {}, "notify: these device ids (comma-separated).");
ABSL_FLAG(std::vector<std::string>, owners, {},
          "notify: every enabled device of these owners (comma-separated).");
ABSL_FLAG(std::string, title, "", "notify: the title.");
ABSL_FLAG(std::string, body, "", "notify: the body.");
ABSL_FLAG(std::string, priority, "", "notify: low, normal, high or urgent.");
ABSL_FLAG(int32_t, qos, -1, "notify, command send: MQTT QoS 0, 1 or 2 (default 1).");
ABSL_FLAG(bool, retain, false, "notify: publish retained.");
ABSL_FLAG(absl::Duration, ttl, absl::ZeroDuration(),
          "notify: expire undelivered targets after this long (e.g. 10m).");
ABSL_FLAG(std::string, send_time, "", "notify: deliver at this RFC 3339 time instead of now.");
ABSL_FLAG(std::string, idempotency_key, "",
          "notify: a repeated request with this key returns the first result.");
ABSL_FLAG(bool, validate_only, false,
          "notify: resolve and validate, show the targets and topics, send nothing.");
ABSL_FLAG(bool, wait, false,
          "notify: wait until the notification settles and show it with its deliveries.");

// command.
ABSL_FLAG(absl::Duration, command_timeout, absl::ZeroDuration(),
          "command send: how long each attempt waits for the device (default 5s).");
ABSL_FLAG(int32_t, max_retries, -1, "command send: attempts after the first (default 3).");
ABSL_FLAG(bool, send_if_offline, false,
          "command send: send even to a device known to be offline.");

namespace herald::ctl {
namespace {

constexpr char kUsage[] = R"(Herald's gRPC API from the command line.

Usage: heraldctl [--address=HOST:PORT] [--json] [--timeout=30s] [TLS flags] COMMAND ...

  devices create ID [KEY=VALUE...]   register a device; KEY=VALUE are its metadata
                                     (--owner, --platform, --topic, --groups, --disabled)
  devices list                       (--owner, --group, --platform, --online, --page_size,
                                     --page_token, --all)
  devices get ID
  devices delete ID
  notify [KEY=VALUE...]              send a notification; KEY=VALUE are its data. Target:
                                     one of --devices, --owners, --groups, --topic.
                                     (--title, --body, --priority, --qos, --retain, --ttl,
                                     --send_time, --idempotency_key, --validate_only, --wait)
  notification get ID                state and deliveries (--page_size, --page_token)
  notification list                  newest first (--page_size, --page_token, --all)
  stats                              delivery totals, backlog, broker connection
  command send DEVICE ACTION [KEY=VALUE...]
                                     send a command, wait for the device's answer
                                     (--qos, --command_timeout, --max_retries,
                                     --send_if_offline)
  command get ID
  version

Authentication: the API key from --api_key_file=FILE or $HERALD_API_KEY, sent as
"authorization: Bearer <key>" (not needed by a Herald started with --insecure_disable_auth).

TLS (a Herald started with --grpc_tls_cert_file): --tls_ca_file=CA.pem (or --tls for the
system's CAs); for mutual TLS also --tls_cert_file=CLIENT.pem --tls_key_file=CLIENT.key;
--tls_server_name when the certificate's name is not the host of --address.

Exit codes: 0 success, 1 the call failed, 2 a wrong command line.)";

constexpr int kOk = 0;
constexpr int kCallFailed = 1;
constexpr int kUsageError = 2;

// The flags each command accepts besides --address, --json and --timeout.
const std::map<std::string, std::set<std::string>>& CommandFlags() {
  static const auto* const flags = new std::map<std::string, std::set<std::string>>{
      {"devices create", {"owner", "platform", "topic", "groups", "disabled"}},
      {"devices list", {"owner", "group", "platform", "online", "page_size", "page_token", "all"}},
      {"devices get", {}},
      {"devices delete", {}},
      {"notify",
       {"devices", "owners", "groups", "topic", "title", "body", "priority", "qos", "retain", "ttl",
        "send_time", "idempotency_key", "validate_only", "wait"}},
      {"notification get", {"page_size", "page_token"}},
      {"notification list", {"page_size", "page_token", "all"}},
      {"stats", {}},
      {"command send", {"qos", "command_timeout", "max_retries", "send_if_offline"}},
      {"command get", {}},
      {"version", {}},
  };
  return *flags;
}

int UsageError(const std::string& message) {
  std::cerr << "heraldctl: " << message << "\nRun `heraldctl help` for the commands.\n";
  return kUsageError;
}

// True when the flag was set to something other than its default.
bool FlagChanged(const std::string& name) {
  const absl::CommandLineFlag* handle = absl::FindCommandLineFlag(name);
  return handle != nullptr && handle->CurrentValue() != handle->DefaultValue();
}

// A command-specific flag given to a command that ignores it is a mistake
// worth reporting: `devices list --title=x` surely meant something else.
std::optional<std::string> MisplacedFlag(const std::string& command) {
  std::set<std::string> all;
  for (const auto& [name, flags] : CommandFlags()) all.insert(flags.begin(), flags.end());
  const std::set<std::string>& allowed = CommandFlags().at(command);
  for (const std::string& flag : all) {
    if (FlagChanged(flag) && !allowed.contains(flag)) {
      return absl::StrCat("--", flag, " does not apply to `", command, "`");
    }
  }
  return std::nullopt;
}

// The whole content of the file at `path`, for the flag `flag`.
absl::StatusOr<std::string> ReadFlagFile(const std::string& path, const std::string& flag) {
  std::ifstream file(path, std::ios::binary);
  std::string content((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  if (!file.good() && !file.eof()) {
    return absl::InvalidArgumentError(absl::StrCat("--", flag, ": cannot read \"", path, "\""));
  }
  if (content.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, ": \"", path, "\" is empty or cannot be read"));
  }
  return content;
}

// The channel to Herald: plaintext by default, TLS with any --tls* flag.
// kInvalidArgument naming the flag when a file cannot be read or the
// client certificate comes without its key (or the other way round).
absl::StatusOr<std::shared_ptr<grpc::Channel>> ChannelFromFlags(const std::string& address) {
  const std::string ca_file = absl::GetFlag(FLAGS_tls_ca_file);
  const std::string cert_file = absl::GetFlag(FLAGS_tls_cert_file);
  const std::string key_file = absl::GetFlag(FLAGS_tls_key_file);
  const std::string server_name = absl::GetFlag(FLAGS_tls_server_name);
  const bool tls = absl::GetFlag(FLAGS_tls) || !ca_file.empty() || !cert_file.empty() ||
                   !key_file.empty() || !server_name.empty();
  if (!tls) return grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  if (cert_file.empty() != key_file.empty()) {
    return absl::InvalidArgumentError(
        "--tls_cert_file and --tls_key_file go together (a client certificate and its key)");
  }
  grpc::SslCredentialsOptions options;  // empty roots: the system's CAs
  const std::tuple<const char*, const std::string*, std::string*> files[] = {
      {"tls_ca_file", &ca_file, &options.pem_root_certs},
      {"tls_cert_file", &cert_file, &options.pem_cert_chain},
      {"tls_key_file", &key_file, &options.pem_private_key},
  };
  for (const auto& [flag, path, pem] : files) {
    if (path->empty()) continue;
    absl::StatusOr<std::string> content = ReadFlagFile(*path, flag);
    if (!content.ok()) return content.status();
    *pem = *std::move(content);
  }
  grpc::ChannelArguments arguments;
  if (!server_name.empty()) arguments.SetSslTargetNameOverride(server_name);
  return grpc::CreateCustomChannel(address, grpc::SslCredentials(options), arguments);
}

class Client {
 public:
  Client(std::string address, bool json, absl::Duration timeout,
         std::shared_ptr<grpc::Channel> channel, std::string api_key)
      : address_(std::move(address)),
        json_(json),
        timeout_(timeout),
        channel_(std::move(channel)),
        api_key_(std::move(api_key)) {}

  int DevicesCreate(const std::string& id, const std::vector<std::string>& metadata_args);
  int DevicesList();
  int DevicesGet(const std::string& id);
  int DevicesDelete(const std::string& id);
  int Notify(const std::vector<std::string>& data_args);
  int NotificationGet(const std::string& id);
  int NotificationList();
  int Stats();
  int CommandSend(const std::string& device, const std::string& action,
                  const std::vector<std::string>& param_args);
  int CommandGet(const std::string& id);

 private:
  // The deadline, and the API key when there is one.
  void PrepareContext(grpc::ClientContext& context, absl::Duration extra = absl::ZeroDuration()) const {
    context.set_deadline(absl::ToChronoTime(absl::Now() + timeout_ + extra));
    if (!api_key_.empty()) context.AddMetadata("authorization", "Bearer " + api_key_);
  }

  // Prints the failed call's code and message (and a hint) to stderr.
  int Failed(const std::string& method, const grpc::Status& status) const {
    const std::string code = absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code()));
    std::cerr << "heraldctl: " << method << ": " << code << ": " << status.error_message() << "\n";
    switch (status.error_code()) {
      case grpc::StatusCode::UNAVAILABLE:
        std::cerr << "heraldctl: is Herald running and serving at " << address_
                  << "? (--address, $HERALDCTL_ADDRESS) Does it speak TLS (--tls_ca_file), "
                     "or require a client certificate (--tls_cert_file, --tls_key_file)?\n";
        break;
      case grpc::StatusCode::UNAUTHENTICATED:
        std::cerr << "heraldctl: give an API key with --api_key_file or $HERALD_API_KEY "
                     "(made with `herald keys create`)\n";
        break;
      case grpc::StatusCode::UNIMPLEMENTED:
        std::cerr << "heraldctl: the Herald at " << address_ << " does not implement " << method
                  << "\n";
        break;
      default:
        break;
    }
    return kCallFailed;
  }

  template <typename Message>
  void Print(const Message& message, const std::string& text) const {
    std::cout << (json_ ? ToJson(message) : text);
  }

  const std::string address_;
  const bool json_;
  const absl::Duration timeout_;
  std::shared_ptr<grpc::Channel> channel_;
  const std::string api_key_;
};

int Client::DevicesCreate(const std::string& id, const std::vector<std::string>& metadata_args) {
  absl::StatusOr<std::map<std::string, std::string>> metadata = ParseKeyValues(metadata_args);
  if (!metadata.ok()) return UsageError(absl::StrCat("metadata: ", metadata.status().message()));
  v1::CreateDeviceRequest request;
  v1::Device* device = request.mutable_device();
  device->set_device_id(id);
  device->set_owner_id(absl::GetFlag(FLAGS_owner));
  device->set_platform(absl::GetFlag(FLAGS_platform));
  device->set_topic(absl::GetFlag(FLAGS_topic));
  for (const std::string& group : absl::GetFlag(FLAGS_groups)) device->add_groups(group);
  device->mutable_metadata()->insert(metadata->begin(), metadata->end());
  device->set_enabled(!absl::GetFlag(FLAGS_disabled));
  v1::Device created;
  grpc::ClientContext context;
  PrepareContext(context);
  grpc::Status status = v1::DeviceService::NewStub(channel_)->CreateDevice(&context, request, &created);
  if (!status.ok()) return Failed("CreateDevice", status);
  Print(created, DeviceFields(created));
  return kOk;
}

int Client::DevicesList() {
  absl::StatusOr<std::optional<bool>> online = ParseOptionalBool(absl::GetFlag(FLAGS_online), "--online");
  if (!online.ok()) return UsageError(std::string(online.status().message()));
  v1::ListDevicesRequest request;
  request.set_page_size(absl::GetFlag(FLAGS_page_size));
  request.set_page_token(absl::GetFlag(FLAGS_page_token));
  request.set_owner_id(absl::GetFlag(FLAGS_owner));
  request.set_group(absl::GetFlag(FLAGS_group));
  request.set_platform(absl::GetFlag(FLAGS_platform));
  if (online->has_value()) request.set_online(**online);
  auto stub = v1::DeviceService::NewStub(channel_);
  v1::ListDevicesResponse all;
  while (true) {
    v1::ListDevicesResponse page;
    grpc::ClientContext context;
    PrepareContext(context);
    grpc::Status status = stub->ListDevices(&context, request, &page);
    if (!status.ok()) return Failed("ListDevices", status);
    all.mutable_devices()->MergeFrom(page.devices());
    all.set_next_page_token(page.next_page_token());
    if (!absl::GetFlag(FLAGS_all) || page.next_page_token().empty()) break;
    request.set_page_token(page.next_page_token());
  }
  std::string text = DeviceTable(all.devices());
  if (!all.next_page_token().empty()) {
    absl::StrAppend(&text, "(more: --page_token=", all.next_page_token(), " or --all)\n");
  }
  Print(all, text);
  return kOk;
}

int Client::DevicesGet(const std::string& id) {
  v1::GetDeviceRequest request;
  request.set_device_id(id);
  v1::Device device;
  grpc::ClientContext context;
  PrepareContext(context);
  grpc::Status status = v1::DeviceService::NewStub(channel_)->GetDevice(&context, request, &device);
  if (!status.ok()) return Failed("GetDevice", status);
  Print(device, DeviceFields(device));
  return kOk;
}

int Client::DevicesDelete(const std::string& id) {
  v1::DeleteDeviceRequest request;
  request.set_device_id(id);
  google::protobuf::Empty empty;
  grpc::ClientContext context;
  PrepareContext(context);
  grpc::Status status = v1::DeviceService::NewStub(channel_)->DeleteDevice(&context, request, &empty);
  if (!status.ok()) return Failed("DeleteDevice", status);
  Print(empty, absl::StrCat("deleted device ", id, "\n"));
  return kOk;
}

int Client::Notify(const std::vector<std::string>& data_args) {
  absl::StatusOr<std::map<std::string, std::string>> data = ParseKeyValues(data_args);
  if (!data.ok()) return UsageError(absl::StrCat("data: ", data.status().message()));
  v1::SendNotificationRequest request;

  // Exactly one kind of target.
  const std::vector<std::string> devices = absl::GetFlag(FLAGS_devices);
  const std::vector<std::string> owners = absl::GetFlag(FLAGS_owners);
  const std::vector<std::string> groups = absl::GetFlag(FLAGS_groups);
  const std::string topic = absl::GetFlag(FLAGS_topic);
  const int kinds = !devices.empty() + !owners.empty() + !groups.empty() + !topic.empty();
  if (kinds != 1) {
    return UsageError("notify needs exactly one target: --devices, --owners, --groups or --topic");
  }
  v1::Target* target = request.mutable_target();
  for (const std::string& id : devices) target->mutable_device_ids()->add_values(id);
  for (const std::string& id : owners) target->mutable_owner_ids()->add_values(id);
  for (const std::string& group : groups) target->mutable_groups()->add_values(group);
  if (!topic.empty()) target->set_topic(topic);

  v1::NotificationContent* content = request.mutable_content();
  content->set_title(absl::GetFlag(FLAGS_title));
  content->set_body(absl::GetFlag(FLAGS_body));
  content->mutable_data()->insert(data->begin(), data->end());
  if (const std::string priority = absl::GetFlag(FLAGS_priority); !priority.empty()) {
    absl::StatusOr<size_t> index = ParseChoice(priority, {"low", "normal", "high", "urgent"}, "--priority");
    if (!index.ok()) return UsageError(std::string(index.status().message()));
    content->set_priority(static_cast<v1::Priority>(v1::LOW + *index));
  }

  v1::DeliveryOptions* options = request.mutable_options();
  if (const int qos = absl::GetFlag(FLAGS_qos); qos >= 0) options->set_qos(qos);
  options->set_retain(absl::GetFlag(FLAGS_retain));
  if (const absl::Duration ttl = absl::GetFlag(FLAGS_ttl); ttl > absl::ZeroDuration()) {
    *options->mutable_ttl() =
        google::protobuf::util::TimeUtil::NanosecondsToDuration(absl::ToInt64Nanoseconds(ttl));
  }
  if (const std::string send_time = absl::GetFlag(FLAGS_send_time); !send_time.empty()) {
    if (!google::protobuf::util::TimeUtil::FromString(send_time, options->mutable_send_time())) {
      return UsageError(absl::StrCat("--send_time: \"", send_time,
                                     "\" is not an RFC 3339 time (2026-01-24T10:30:00Z)"));
    }
  }
  options->set_idempotency_key(absl::GetFlag(FLAGS_idempotency_key));
  request.set_validate_only(absl::GetFlag(FLAGS_validate_only));

  auto stub = v1::NotificationService::NewStub(channel_);
  v1::SendNotificationResponse response;
  {
    grpc::ClientContext context;
    PrepareContext(context);
    grpc::Status status = stub->SendNotification(&context, request, &response);
    if (!status.ok()) return Failed("SendNotification", status);
  }
  if (!absl::GetFlag(FLAGS_wait) || request.validate_only()) {
    Print(response, SendResultText(response));
    return kOk;
  }

  // --wait: poll until the notification leaves the in-progress states.
  const absl::Time deadline = absl::Now() + timeout_;
  v1::GetNotificationRequest get;
  get.set_notification_id(response.notification_id());
  v1::Notification notification;
  while (true) {
    grpc::ClientContext context;
    PrepareContext(context);
    grpc::Status status = stub->GetNotification(&context, get, &notification);
    if (!status.ok()) return Failed("GetNotification", status);
    const v1::NotificationState state = notification.state();
    const bool settled = state != v1::ACCEPTED && state != v1::DELIVERING && state != v1::SCHEDULED;
    if (settled) break;
    if (absl::Now() >= deadline) {
      std::cerr << "heraldctl: notification " << notification.notification_id() << " is still "
                << v1::NotificationState_Name(state) << " after " << absl::FormatDuration(timeout_)
                << " (--timeout)\n";
      Print(notification, NotificationText(notification));
      return kCallFailed;
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  Print(notification, NotificationText(notification, {response.unresolved_device_ids().begin(),
                                                      response.unresolved_device_ids().end()}));
  return kOk;
}

int Client::NotificationGet(const std::string& id) {
  v1::GetNotificationRequest request;
  request.set_notification_id(id);
  request.set_delivery_page_size(absl::GetFlag(FLAGS_page_size));
  request.set_delivery_page_token(absl::GetFlag(FLAGS_page_token));
  v1::Notification notification;
  grpc::ClientContext context;
  PrepareContext(context);
  grpc::Status status =
      v1::NotificationService::NewStub(channel_)->GetNotification(&context, request, &notification);
  if (!status.ok()) return Failed("GetNotification", status);
  Print(notification, NotificationText(notification));
  return kOk;
}

int Client::NotificationList() {
  v1::ListNotificationsRequest request;
  request.set_page_size(absl::GetFlag(FLAGS_page_size));
  request.set_page_token(absl::GetFlag(FLAGS_page_token));
  auto stub = v1::NotificationService::NewStub(channel_);
  v1::ListNotificationsResponse all;
  while (true) {
    v1::ListNotificationsResponse page;
    grpc::ClientContext context;
    PrepareContext(context);
    grpc::Status status = stub->ListNotifications(&context, request, &page);
    if (!status.ok()) return Failed("ListNotifications", status);
    all.mutable_notifications()->MergeFrom(page.notifications());
    all.set_next_page_token(page.next_page_token());
    if (!absl::GetFlag(FLAGS_all) || page.next_page_token().empty()) break;
    request.set_page_token(page.next_page_token());
  }
  std::string text = NotificationTable(all.notifications());
  if (!all.next_page_token().empty()) {
    absl::StrAppend(&text, "(more: --page_token=", all.next_page_token(), " or --all)\n");
  }
  Print(all, text);
  return kOk;
}

int Client::Stats() {
  v1::GetStatsResponse stats;
  grpc::ClientContext context;
  PrepareContext(context);
  grpc::Status status =
      v1::StatsService::NewStub(channel_)->GetStats(&context, v1::GetStatsRequest(), &stats);
  if (!status.ok()) return Failed("GetStats", status);
  Print(stats, StatsText(stats));
  return kOk;
}

int Client::CommandSend(const std::string& device, const std::string& action,
                        const std::vector<std::string>& param_args) {
  absl::StatusOr<std::map<std::string, std::string>> params = ParseKeyValues(param_args);
  if (!params.ok()) return UsageError(absl::StrCat("params: ", params.status().message()));
  v1::SendCommandRequest request;
  request.set_device_id(device);
  request.set_action(action);
  request.mutable_params()->insert(params->begin(), params->end());
  if (const int qos = absl::GetFlag(FLAGS_qos); qos >= 0) request.set_qos(qos);
  const absl::Duration attempt_timeout = absl::GetFlag(FLAGS_command_timeout);
  if (attempt_timeout > absl::ZeroDuration()) {
    *request.mutable_timeout() = google::protobuf::util::TimeUtil::NanosecondsToDuration(
        absl::ToInt64Nanoseconds(attempt_timeout));
  }
  const int max_retries = absl::GetFlag(FLAGS_max_retries);
  if (max_retries >= 0) request.set_max_retries(max_retries);
  request.set_send_if_offline(absl::GetFlag(FLAGS_send_if_offline));

  // The call waits for the device through every attempt: give it that long
  // on top of --timeout (defaults: 5 s per attempt, 3 retries).
  const absl::Duration per_attempt =
      attempt_timeout > absl::ZeroDuration() ? attempt_timeout : absl::Seconds(5);
  const int attempts = (max_retries >= 0 ? max_retries : 3) + 1;
  v1::Command command;
  grpc::ClientContext context;
  PrepareContext(context, 2 * per_attempt * attempts);
  grpc::Status status = v1::CommandService::NewStub(channel_)->SendCommand(&context, request, &command);
  if (!status.ok()) return Failed("SendCommand", status);
  Print(command, CommandText(command));
  return kOk;
}

int Client::CommandGet(const std::string& id) {
  v1::GetCommandRequest request;
  request.set_command_id(id);
  v1::Command command;
  grpc::ClientContext context;
  PrepareContext(context);
  grpc::Status status = v1::CommandService::NewStub(channel_)->GetCommand(&context, request, &command);
  if (!status.ok()) return Failed("GetCommand", status);
  Print(command, CommandText(command));
  return kOk;
}

int Run(const std::vector<std::string>& args) {
  if (args.empty()) {
    std::cerr << kUsage << "\n";
    return kUsageError;
  }
  if (args[0] == "help") {
    std::cout << kUsage << "\n\nEvery flag: heraldctl --help\n";
    return kOk;
  }
  // "devices list", "notify", ...: one or two words.
  std::string command = args[0];
  size_t consumed = 1;
  if (!CommandFlags().contains(command) && args.size() >= 2) {
    command = absl::StrCat(args[0], " ", args[1]);
    consumed = 2;
  }
  if (!CommandFlags().contains(command)) {
    return UsageError(absl::StrCat("unknown command `", absl::StrJoin(args, " "), "`"));
  }
  if (std::optional<std::string> misplaced = MisplacedFlag(command)) return UsageError(*misplaced);
  const std::vector<std::string> rest(args.begin() + consumed, args.end());
  auto expect = [&](size_t min, size_t max, const char* synopsis) -> std::optional<int> {
    if (rest.size() < min || rest.size() > max) {
      return UsageError(absl::StrCat("usage: heraldctl ", command, synopsis));
    }
    return std::nullopt;
  };

  if (command == "version") {
    if (auto error = expect(0, 0, "")) return *error;
    std::cout << "heraldctl " << HERALD_VERSION << "\n";
    return kOk;
  }

  std::string address = absl::GetFlag(FLAGS_address);
  if (!FlagChanged("address")) {
    if (const char* from_env = std::getenv("HERALDCTL_ADDRESS"); from_env != nullptr && *from_env) {
      address = from_env;
    }
  }
  const absl::Duration timeout = absl::GetFlag(FLAGS_timeout);
  if (timeout <= absl::ZeroDuration()) return UsageError("--timeout must be positive");
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = ChannelFromFlags(address);
  if (!channel.ok()) return UsageError(std::string(channel.status().message()));
  std::string api_key;
  if (const std::string file = absl::GetFlag(FLAGS_api_key_file); !file.empty()) {
    absl::StatusOr<std::string> content = ReadFlagFile(file, "api_key_file");
    if (!content.ok()) return UsageError(std::string(content.status().message()));
    api_key = std::string(absl::StripAsciiWhitespace(*content));
  } else if (const char* from_env = std::getenv("HERALD_API_KEY"); from_env != nullptr) {
    api_key = std::string(absl::StripAsciiWhitespace(from_env));
  }
  Client client(address, absl::GetFlag(FLAGS_json), timeout, *std::move(channel),
                std::move(api_key));

  const size_t kMany = static_cast<size_t>(-1);
  if (command == "devices create") {
    if (auto error = expect(1, kMany, " ID [KEY=VALUE...]")) return *error;
    return client.DevicesCreate(rest[0], {rest.begin() + 1, rest.end()});
  }
  if (command == "devices list") {
    if (auto error = expect(0, 0, "")) return *error;
    return client.DevicesList();
  }
  if (command == "devices get") {
    if (auto error = expect(1, 1, " ID")) return *error;
    return client.DevicesGet(rest[0]);
  }
  if (command == "devices delete") {
    if (auto error = expect(1, 1, " ID")) return *error;
    return client.DevicesDelete(rest[0]);
  }
  if (command == "notify") return client.Notify(rest);
  if (command == "notification get") {
    if (auto error = expect(1, 1, " ID")) return *error;
    return client.NotificationGet(rest[0]);
  }
  if (command == "notification list") {
    if (auto error = expect(0, 0, "")) return *error;
    return client.NotificationList();
  }
  if (command == "stats") {
    if (auto error = expect(0, 0, "")) return *error;
    return client.Stats();
  }
  if (command == "command send") {
    if (auto error = expect(2, kMany, " DEVICE ACTION [KEY=VALUE...]")) return *error;
    return client.CommandSend(rest[0], rest[1], {rest.begin() + 2, rest.end()});
  }
  if (command == "command get") {
    if (auto error = expect(1, 1, " ID")) return *error;
    return client.CommandGet(rest[0]);
  }
  return UsageError(absl::StrCat("unknown command `", command, "`"));
}

}  // namespace
}  // namespace herald::ctl

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(herald::ctl::kUsage);
  std::vector<char*> positional = absl::ParseCommandLine(argc, argv);
  return herald::ctl::Run(std::vector<std::string>(positional.begin() + 1, positional.end()));
}
