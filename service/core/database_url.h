// Helpers for PostgreSQL connection strings: both forms that libpq accepts,
// the `postgresql://user:password@host:port/db?param=value` URL and the
// `host=... password=...` keyword/value string.
//
// A database URL often carries a password, and error messages and logs leave
// the process, so everything that shows a URL or a libpq message goes through
// RedactDatabaseUrl or RedactPassword first.
//
//   LogInfo("connecting", {{"database", RedactDatabaseUrl(url)}});
//   std::string message = RedactPassword(error.what(), url);
//   std::string conninfo = WithDefaultParameter(url, "connect_timeout", "5");
#ifndef HERALD_SERVICE_CORE_DATABASE_URL_H_
#define HERALD_SERVICE_CORE_DATABASE_URL_H_

#include <string>
#include <string_view>

namespace herald {

// `database_url` with its password replaced by "***" (in the userinfo of a
// URL, in a `password=` URL query parameter, or in a `password=` keyword of a
// keyword/value string). Everything else is kept, so the result still says
// which server and database were meant.
std::string RedactDatabaseUrl(std::string_view database_url);

// `text` with every occurrence of the password of `database_url` (as written
// and, for URLs, percent-decoded) replaced by "***". For libpq and libpqxx
// messages, which may quote the connection string they were given.
std::string RedactPassword(std::string_view text, std::string_view database_url);

// `database_url` with `key=value` added unless the string already sets `key`.
// `value` must need no quoting or percent-encoding (digits, letters, '_').
std::string WithDefaultParameter(std::string_view database_url, std::string_view key,
                                 std::string_view value);

}  // namespace herald

#endif  // HERALD_SERVICE_CORE_DATABASE_URL_H_
