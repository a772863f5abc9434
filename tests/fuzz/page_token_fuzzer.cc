// Fuzzes page-token decoding: arbitrary tokens must be refused cleanly, and
// every token Herald issues must decode to the position it was made from.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdlib>
#include <string>

#include "service/core/page_token.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider input(data, size);
  const std::string list = input.ConsumeRandomLengthString(16);
  const std::string position = input.ConsumeRandomLengthString(128);
  const std::string token = input.ConsumeRemainingBytesAsString();
  (void)herald::DecodePageToken(list, token);
  absl::StatusOr<std::string> decoded =
      herald::DecodePageToken(list, herald::EncodePageToken(list, position));
  if (!decoded.ok() || *decoded != position) std::abort();
  return 0;
}
