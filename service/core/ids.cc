#include "service/core/ids.h"

#include <cstdint>

#include "absl/random/random.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"

namespace herald {

std::string NewUuid() {
  thread_local absl::BitGen bit_gen;
  // RFC 9562 version 7: 48 bits of Unix milliseconds, the version, 12 bits
  // of the sub-millisecond fraction (so that ids of one process sort by
  // time within a millisecond too), the variant and 62 random bits.
  const int64_t micros = absl::ToUnixMicros(absl::Now());
  const uint64_t millis = static_cast<uint64_t>(micros / 1000) & 0xFFFFFFFFFFFFULL;
  const uint64_t fraction = static_cast<uint64_t>(micros % 1000) * 4096 / 1000;  // 12 bits
  const uint64_t high = (millis << 16) | 0x7000ULL | fraction;
  uint64_t low = absl::Uniform<uint64_t>(bit_gen);
  low = (low & 0x3FFFFFFFFFFFFFFFULL) | 0x8000000000000000ULL;  // RFC 9562 variant
  return absl::StrFormat("%08x-%04x-%04x-%04x-%012x", high >> 32, (high >> 16) & 0xFFFF,
                         high & 0xFFFF, low >> 48, low & 0xFFFFFFFFFFFFULL);
}

}  // namespace herald
