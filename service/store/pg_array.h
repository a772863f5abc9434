// PostgreSQL text[] literals. libpqxx 6.4 cannot bind a std::vector, so the
// stores pass lists (device ids, topics, outcome fields) as one array literal
// bound to a `$1::text[]` parameter; the server parses it, which keeps a query
// with 100,000 values to a single parameter and a single round trip.
//
//   tx.exec_prepared("resolve_by_ids", tenant, PgTextArrayLiteral(device_ids));
//   // SQL: ... WHERE device_id = ANY($2::text[])
//   absl::StatusOr<std::vector<std::string>> groups = ParsePgTextArray(row["groups"].c_str());
#ifndef HERALD_SERVICE_STORE_PG_ARRAY_H_
#define HERALD_SERVICE_STORE_PG_ARRAY_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace herald {

// The literal of a one-dimensional text[] holding `values`, e.g.
// {"a","b \"c\"","NULL"}. Every element is double-quoted with '"' and '\'
// backslash-escaped, so any string (commas, braces, spaces, the word NULL,
// the empty string) survives the round trip unchanged. Values must not
// contain NUL bytes, which PostgreSQL text cannot hold.
std::string PgTextArrayLiteral(const std::vector<std::string>& values);

// Appends the literal of one array element (quoted and escaped) to `out`;
// for callers building arrays of other element types.
void AppendPgArrayElement(std::string_view value, std::string* out);

// The elements of a one-dimensional text[] in PostgreSQL's output format.
// kInvalidArgument for a NULL element or a nested array, which Herald never
// stores.
absl::StatusOr<std::vector<std::string>> ParsePgTextArray(const std::string& literal);

}  // namespace herald

#endif  // HERALD_SERVICE_STORE_PG_ARRAY_H_
