#include "service/core/database_url.h"

#include <cctype>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_replace.h"

namespace herald {
namespace {

constexpr std::string_view kMask = "***";

bool IsUrl(std::string_view text) {
  return text.rfind("postgresql://", 0) == 0 || text.rfind("postgres://", 0) == 0;
}

// One `key=value` setting in a connection string: where its value is and
// what it means once unescaped or percent-decoded.
struct Setting {
  std::string key;
  size_t value_begin = 0;
  size_t value_end = 0;
  std::string value;  // decoded
};

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string PercentDecode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size()) {
      const int high = HexDigit(text[i + 1]);
      const int low = HexDigit(text[i + 2]);
      if (high >= 0 && low >= 0) {
        out += static_cast<char>(high * 16 + low);
        i += 2;
        continue;
      }
    }
    out += text[i];
  }
  return out;
}

// Where the authority of a URL starts (after "scheme://").
size_t AuthorityBegin(std::string_view url) { return url.find("://") + 3; }

// The settings of a URL: the userinfo password (as key "password") and the
// query parameters. libpq takes the userinfo to end at the first '@' unless a
// '/' comes first; we follow it so that we redact exactly what libpq reads.
std::vector<Setting> ParseUrl(std::string_view url) {
  std::vector<Setting> settings;
  const size_t begin = AuthorityBegin(url);
  const size_t stop = url.find_first_of("@/", begin);
  if (stop != std::string_view::npos && url[stop] == '@') {
    const size_t colon = url.find(':', begin);
    if (colon != std::string_view::npos && colon < stop) {
      settings.push_back({.key = "password",
                          .value_begin = colon + 1,
                          .value_end = stop,
                          .value = PercentDecode(url.substr(colon + 1, stop - colon - 1))});
    }
  }
  const size_t query = url.find('?', stop == std::string_view::npos ? begin : stop);
  if (query == std::string_view::npos) return settings;
  size_t pos = query + 1;
  while (pos <= url.size()) {
    size_t end = url.find('&', pos);
    if (end == std::string_view::npos) end = url.size();
    const std::string_view pair = url.substr(pos, end - pos);
    const size_t equals = pair.find('=');
    if (equals != std::string_view::npos) {
      settings.push_back({.key = PercentDecode(pair.substr(0, equals)),
                          .value_begin = pos + equals + 1,
                          .value_end = end,
                          .value = PercentDecode(pair.substr(equals + 1))});
    }
    pos = end + 1;
  }
  return settings;
}

// The settings of a keyword/value string, with libpq's quoting rules: a value
// is either single-quoted (backslash escapes ' and \) or runs to the next
// whitespace (backslash escapes any character).
std::vector<Setting> ParseKeywordValue(std::string_view text) {
  std::vector<Setting> settings;
  size_t pos = 0;
  const auto skip_space = [&] {
    while (pos < text.size() && std::isspace(static_cast<unsigned char>(text[pos]))) ++pos;
  };
  while (true) {
    skip_space();
    if (pos >= text.size()) break;
    const size_t key_begin = pos;
    while (pos < text.size() && text[pos] != '=' &&
           !std::isspace(static_cast<unsigned char>(text[pos]))) {
      ++pos;
    }
    Setting setting;
    setting.key = std::string(text.substr(key_begin, pos - key_begin));
    skip_space();
    if (pos >= text.size() || text[pos] != '=') break;  // malformed: libpq refuses it anyway
    ++pos;
    skip_space();
    setting.value_begin = pos;
    if (pos < text.size() && text[pos] == '\'') {
      ++pos;
      while (pos < text.size() && text[pos] != '\'') {
        if (text[pos] == '\\' && pos + 1 < text.size()) ++pos;
        setting.value += text[pos++];
      }
      if (pos < text.size()) ++pos;  // closing quote
    } else {
      while (pos < text.size() && !std::isspace(static_cast<unsigned char>(text[pos]))) {
        if (text[pos] == '\\' && pos + 1 < text.size()) ++pos;
        setting.value += text[pos++];
      }
    }
    setting.value_end = pos;
    settings.push_back(std::move(setting));
  }
  return settings;
}

std::vector<Setting> ParseSettings(std::string_view database_url) {
  return IsUrl(database_url) ? ParseUrl(database_url) : ParseKeywordValue(database_url);
}

}  // namespace

std::string RedactDatabaseUrl(std::string_view database_url) {
  std::string out;
  size_t copied = 0;
  for (const Setting& setting : ParseSettings(database_url)) {
    if (setting.key != "password" || setting.value_end == setting.value_begin) continue;
    out.append(database_url.substr(copied, setting.value_begin - copied));
    out.append(kMask);
    copied = setting.value_end;
  }
  out.append(database_url.substr(copied));
  return out;
}

std::string RedactPassword(std::string_view text, std::string_view database_url) {
  std::vector<std::pair<std::string, std::string>> replacements;
  for (const Setting& setting : ParseSettings(database_url)) {
    if (setting.key != "password") continue;
    const std::string raw(
        database_url.substr(setting.value_begin, setting.value_end - setting.value_begin));
    // Longest first, so that a decoded form inside the raw one leaves no trace.
    for (const std::string& secret : {raw, setting.value}) {
      if (!secret.empty()) replacements.emplace_back(secret, std::string(kMask));
    }
  }
  std::string out(text);
  for (const auto& [secret, mask] : replacements) {
    out = absl::StrReplaceAll(out, {{secret, mask}});
  }
  return out;
}

std::string WithDefaultParameter(std::string_view database_url, std::string_view key,
                                 std::string_view value) {
  for (const Setting& setting : ParseSettings(database_url)) {
    if (setting.key == key) return std::string(database_url);
  }
  if (IsUrl(database_url)) {
    const size_t stop = database_url.find_first_of("@/", AuthorityBegin(database_url));
    const bool has_query =
        database_url.find('?', stop == std::string_view::npos ? 0 : stop) != std::string_view::npos;
    return std::string(database_url) + (has_query ? "&" : "?") + std::string(key) + "=" +
           std::string(value);
  }
  const std::string setting = std::string(key) + "=" + std::string(value);
  if (database_url.empty()) return setting;
  return std::string(database_url) + " " + setting;
}

}  // namespace herald
