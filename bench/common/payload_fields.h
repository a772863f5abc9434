// Reads one string field out of a JSON payload without parsing the whole
// document, for the subscriber's per-message path.
//
// Why not Protobuf's JSON parser (which the rest of Herald uses): the
// subscriber shares two cores with Herald, PostgreSQL and the broker, and
// parsing every one of 50,000 messages a second into a Struct would cost
// it several times the CPU of this scan, so the benchmark would slow down
// what it measures. The payloads are machine-written (Herald's and the bare
// publisher's), and the bench keys are plain ASCII with no escapes, which
// is all this reader supports.
//
//   std::optional<std::string_view> t = FindJsonString(payload, "bench_t");
//
// Thread-safe (pure).
#ifndef HERALD_BENCH_COMMON_PAYLOAD_FIELDS_H_
#define HERALD_BENCH_COMMON_PAYLOAD_FIELDS_H_

#include <cstdint>
#include <optional>
#include <string_view>

namespace herald::bench {

// The value of the first `"key": "value"` pair anywhere in `json` (nested
// objects included), or nullopt. The value must not contain escapes.
std::optional<std::string_view> FindJsonString(std::string_view json, std::string_view key);

// FindJsonString parsed as a decimal integer, or nullopt.
std::optional<int64_t> FindJsonInt(std::string_view json, std::string_view key);

}  // namespace herald::bench

#endif  // HERALD_BENCH_COMMON_PAYLOAD_FIELDS_H_
