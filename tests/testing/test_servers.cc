#include "tests/testing/test_servers.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <pqxx/pqxx>
#include <random>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "service/core/database_url.h"
#include "service/store/migrations.h"

namespace herald::testing {
namespace {

[[noreturn]] void Die(const std::string& message) {
  std::fprintf(stderr, "FATAL (test servers): %s\n", message.c_str());
  std::fflush(stderr);
  std::abort();
}

std::map<std::string, std::string> ReadEnvFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    Die(absl::StrCat("cannot read ", path,
                     "; run this test through ctest (the `servers` fixture starts PostgreSQL "
                     "and Mosquitto), or start them with scripts/test-servers.sh start DIR "
                     "and set HERALD_TEST_SERVERS_ENV=DIR/servers.env"));
  }
  std::map<std::string, std::string> values;
  std::string line;
  while (std::getline(in, line)) {
    const size_t equals = line.find('=');
    if (line.empty() || line[0] == '#' || equals == std::string::npos) continue;
    values[std::string(absl::StripAsciiWhitespace(line.substr(0, equals)))] =
        std::string(absl::StripAsciiWhitespace(line.substr(equals + 1)));
  }
  return values;
}

std::string Required(const std::map<std::string, std::string>& values, const std::string& key,
                     const std::string& path) {
  const auto it = values.find(key);
  if (it == values.end() || it->second.empty()) Die(absl::StrCat(path, " does not set ", key));
  return it->second;
}

// The URL of database `name` on the server of `url` (a postgresql:// URL
// whose path names a database, as servers.env writes it).
std::string WithDatabase(const std::string& url, const std::string& name) {
  const size_t authority = url.find("://");
  const size_t slash = url.find('/', authority == std::string::npos ? 0 : authority + 3);
  if (authority == std::string::npos || slash == std::string::npos) {
    Die(absl::StrCat("HERALD_TEST_DATABASE_URL is not a postgresql://host/db URL: ",
                     RedactDatabaseUrl(url)));
  }
  const size_t query = url.find('?', slash);
  return absl::StrCat(url.substr(0, slash + 1), name,
                      query == std::string::npos ? "" : url.substr(query));
}

// Lower-case letters, digits and '_' only, so the name needs no quoting.
std::string SanitizedPrefix(const std::string& prefix) {
  std::string out;
  for (char c : absl::AsciiStrToLower(prefix)) {
    out += (absl::ascii_isalnum(static_cast<unsigned char>(c)) ? c : '_');
  }
  if (out.empty() || absl::ascii_isdigit(static_cast<unsigned char>(out[0]))) out = "t_" + out;
  return out.substr(0, 30);
}

}  // namespace

const TestServers& TestServers::Get() {
  static const TestServers* const servers = [] {
    const char* env_path = std::getenv("HERALD_TEST_SERVERS_ENV");
    if (env_path == nullptr || *env_path == '\0') {
      Die("HERALD_TEST_SERVERS_ENV is not set; run this test through ctest, which starts the "
          "servers (fixture `servers`) and sets it");
    }
    const std::map<std::string, std::string> values = ReadEnvFile(env_path);
    auto* result = new TestServers;
    result->database_url = Required(values, "HERALD_TEST_DATABASE_URL", env_path);
    result->mqtt_uri = Required(values, "HERALD_TEST_MQTT_URI", env_path);
    if (!absl::SimpleAtoi(Required(values, "HERALD_TEST_PG_PORT", env_path), &result->pg_port) ||
        !absl::SimpleAtoi(Required(values, "HERALD_TEST_MQTT_PORT", env_path),
                          &result->mqtt_port)) {
      Die(absl::StrCat(env_path, ": the ports are not numbers"));
    }
    // tcp://HOST:PORT
    const size_t scheme = result->mqtt_uri.find("://");
    const size_t colon = result->mqtt_uri.rfind(':');
    result->mqtt_host = result->mqtt_uri.substr(scheme == std::string::npos ? 0 : scheme + 3,
                                                colon == std::string::npos || colon <= scheme + 3
                                                    ? std::string::npos
                                                    : colon - (scheme + 3));
    return result;
  }();
  return *servers;
}

std::string CreateScratchDatabase(const std::string& prefix, bool migrate) {
  static std::atomic<int> counter{0};
  const TestServers& servers = TestServers::Get();
  std::random_device entropy;
  const std::string name =
      absl::StrFormat("%s_%d_%d_%08x", SanitizedPrefix(prefix), static_cast<int>(getpid()),
                      counter.fetch_add(1), static_cast<uint32_t>(entropy()));
  try {
    pqxx::connection admin(servers.database_url);
    pqxx::nontransaction tx(admin);
    tx.exec(absl::StrCat("CREATE DATABASE ", tx.quote_name(name)));
  } catch (const std::exception& e) {
    Die(absl::StrCat("cannot create database ", name, " on ",
                     RedactDatabaseUrl(servers.database_url), ": ",
                     RedactPassword(e.what(), servers.database_url)));
  }
  const std::string url = WithDatabase(servers.database_url, name);
  if (migrate) {
    const absl::Status migrated = ApplyMigrations(url);
    if (!migrated.ok()) Die(absl::StrCat("cannot migrate ", name, ": ", migrated.ToString()));
  }
  return url;
}

std::string SourceDir() {
  const char* dir = std::getenv("HERALD_SOURCE_DIR");
  if (dir != nullptr && *dir != '\0') return dir;
  return HERALD_SOURCE_DIR_DEFAULT;
}

}  // namespace herald::testing
