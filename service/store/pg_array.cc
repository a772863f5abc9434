#include "service/store/pg_array.h"

#include <pqxx/array>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace herald {

void AppendPgArrayElement(std::string_view value, std::string* out) {
  out->push_back('"');
  for (char c : value) {
    if (c == '"' || c == '\\') out->push_back('\\');
    out->push_back(c);
  }
  out->push_back('"');
}

std::string PgTextArrayLiteral(const std::vector<std::string>& values) {
  size_t size = 2;
  for (const std::string& value : values) size += value.size() + 3;
  std::string out;
  out.reserve(size + size / 16);
  out.push_back('{');
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out.push_back(',');
    AppendPgArrayElement(values[i], &out);
  }
  out.push_back('}');
  return out;
}

absl::StatusOr<std::vector<std::string>> ParsePgTextArray(const std::string& literal) {
  std::vector<std::string> values;
  try {
    // UTF-8 needs no encoding-aware scanning: its multi-byte sequences never
    // contain the ASCII bytes that delimit elements.
    pqxx::array_parser parser(literal.c_str());
    int depth = 0;
    while (true) {
      auto [juncture, value] = parser.get_next();
      switch (juncture) {
        case pqxx::array_parser::row_start:
          if (++depth > 1) {
            return absl::InvalidArgumentError("text array: nested arrays are not supported");
          }
          break;
        case pqxx::array_parser::row_end: --depth; break;
        case pqxx::array_parser::null_value:
          return absl::InvalidArgumentError("text array: unexpected NULL element");
        case pqxx::array_parser::string_value: values.push_back(std::move(value)); break;
        case pqxx::array_parser::done: return values;
      }
    }
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("text array: malformed literal: ", e.what()));
  }
}

}  // namespace herald
