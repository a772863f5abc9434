// JSON string escaping, for the text Herald writes as JSON by hand: the
// notification payload and JSON log lines. A module of its own so that the
// payload does not depend on the log (and the fuzzers build it alone).
//
//   out += "\"" + JsonEscape(title) + "\"";
#ifndef HERALD_SERVICE_CORE_JSON_TEXT_H_
#define HERALD_SERVICE_CORE_JSON_TEXT_H_

#include <string>
#include <string_view>

namespace herald {

// Escapes `text` for use inside a JSON string literal (no quotes added):
// '"', '\' and control characters; other bytes, UTF-8 included, as they are.
std::string JsonEscape(std::string_view text);

// The same, appended to `out`: no string of its own per field, for the
// payload written for every notification accepted.
void AppendJsonEscaped(std::string_view text, std::string* out);

}  // namespace herald

#endif  // HERALD_SERVICE_CORE_JSON_TEXT_H_
