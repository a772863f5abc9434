// API keys: how callers prove who they are (issue 6). A key is
//
//   hk_<key id>_<secret>      e.g. hk_3f9a0c1d2e4b_Zq8...  (67 characters)
//
// The key id (12 hex digits) is public: it names the key in logs, in
// `herald keys list` and in the database. The secret (43 base64url
// characters, 256 random bits) is shown once, when the key is made, and
// stored only as its SHA-256. A slow password hash would add nothing: the
// secret is random and as long as the hash, so it cannot be guessed from
// the digest, while every authenticated call would pay for the slowness.
//
//   GeneratedApiKey key = GenerateApiKey();      // print key.token once
//   absl::StatusOr<ParsedApiKey> parsed = ParseApiKey(token);
//   bool ok = SecretMatches(parsed->secret, stored_sha256);
//
// Scopes say what a key may do; every RPC needs one of them.
//
// Thread-safe (pure functions over OpenSSL's thread-safe primitives).
#ifndef HERALD_SERVICE_AUTH_API_KEY_H_
#define HERALD_SERVICE_AUTH_API_KEY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace herald {

// What a key may do. The names are the contract of `herald keys create
// --scopes` and of PERMISSION_DENIED messages.
enum class Scope : uint8_t {
  kNotify,        // NotificationService: send, read, watch, cancel
  kCommand,       // CommandService
  kDevicesWrite,  // DeviceService: create, update, delete
  kDevicesRead,   // DeviceService: get, list
  kStats,         // StatsService
};

inline constexpr Scope kAllScopes[] = {Scope::kNotify, Scope::kCommand, Scope::kDevicesWrite,
                                       Scope::kDevicesRead, Scope::kStats};

// "notify", "command", "devices:write", "devices:read", "stats".
absl::string_view ScopeName(Scope scope);

// A set of scopes (a bit per Scope).
class ScopeSet {
 public:
  ScopeSet() = default;
  static ScopeSet All();

  void Add(Scope scope) { bits_ |= Bit(scope); }
  bool Contains(Scope scope) const { return (bits_ & Bit(scope)) != 0; }
  bool empty() const { return bits_ == 0; }
  bool operator==(const ScopeSet& other) const = default;

  // The names in kAllScopes order.
  std::vector<std::string> Names() const;

 private:
  static uint8_t Bit(Scope scope) { return static_cast<uint8_t>(1u << static_cast<int>(scope)); }
  uint8_t bits_ = 0;
};

// Parses scope names, each of them or "all" (every scope). kInvalidArgument
// naming `field` and the unknown name; an empty list is refused (a key that
// may do nothing is a mistake).
absl::StatusOr<ScopeSet> ParseScopes(const std::vector<std::string>& names,
                                     absl::string_view field);

inline constexpr char kApiKeyPrefix[] = "hk_";
inline constexpr size_t kApiKeyIdLength = 12;      // hex digits
inline constexpr size_t kApiKeySecretLength = 43;  // base64url characters (32 bytes)

struct GeneratedApiKey {
  std::string key_id;
  std::string secret;
  std::string token;          // what the caller sends: hk_<key_id>_<secret>
  std::string secret_sha256;  // 32 raw bytes, what the database keeps
};

// A new key from the operating system's random source (OpenSSL RAND_bytes).
// kInternal only if that source fails.
absl::StatusOr<GeneratedApiKey> GenerateApiKey();

struct ParsedApiKey {
  std::string key_id;
  std::string secret;
};

// Splits a token into key id and secret. kUnauthenticated for anything that
// is not shaped like a key; the message never repeats the token.
absl::StatusOr<ParsedApiKey> ParseApiKey(absl::string_view token);

// SHA-256 of `secret`, 32 raw bytes.
std::string HashApiKeySecret(absl::string_view secret);

// Whether SHA-256(secret) equals `secret_sha256`, in constant time.
bool SecretMatches(absl::string_view secret, absl::string_view secret_sha256);

}  // namespace herald

#endif  // HERALD_SERVICE_AUTH_API_KEY_H_
