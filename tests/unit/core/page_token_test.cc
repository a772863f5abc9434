// Tests of service/core/page_token.h.
#include "service/core/page_token.h"

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fakes/status_matchers.h"

namespace herald {
namespace {

using ::herald::testing::IsOkAndHolds;
using ::herald::testing::StatusIs;
using ::testing::StartsWith;

::testing::Matcher<absl::StatusOr<std::string>> Refused() {
  return StatusIs(absl::StatusCode::kInvalidArgument, StartsWith("page_token: "));
}

TEST(PageTokenTest, RoundTrips) {
  for (const std::string& position :
       {std::string("sensor-001"), std::string(""), std::string("1769250600000000/3f1c-uuid"),
        std::string("with:colons:inside"), std::string("caf\xC3\xA9"), std::string(500, 'x'),
        std::string("a\0b", 3)}) {
    const std::string token = EncodePageToken("devices", position);
    EXPECT_THAT(DecodePageToken("devices", token), IsOkAndHolds(position)) << token;
  }
}

TEST(PageTokenTest, IsOpaqueAndUrlSafe) {
  const std::string token = EncodePageToken("devices", "sensor-001");
  EXPECT_EQ(token.find("sensor-001"), std::string::npos) << "the position is not shown in clear";
  for (char c : token) {
    EXPECT_TRUE(absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_')
        << "character '" << c << "' in " << token;
  }
}

TEST(PageTokenTest, IsStableAcrossProcessesAndReplicas) {
  // Tokens travel between replicas and survive restarts: the encoding must
  // not depend on per-process state (such as absl::Hash's seed).
  EXPECT_EQ(EncodePageToken("devices", "sensor-001"), EncodePageToken("devices", "sensor-001"));
  // Pinned (computed independently: web-safe base64, unpadded, of
  // "v1:devices:sensor-001:" + hex FNV-1a-64 of "herald-page-token:v1:devices:sensor-001"),
  // so that a change of format, which would invalidate the tokens clients
  // hold during a rolling update, is a deliberate one.
  EXPECT_EQ(EncodePageToken("devices", "sensor-001"),
            "djE6ZGV2aWNlczpzZW5zb3ItMDAxOmIzMjg2OGMzNDg1YWJkNTM");
}

TEST(PageTokenTest, RefusesATokenOfAnotherList) {
  const std::string token = EncodePageToken("devices", "sensor-001");
  EXPECT_THAT(DecodePageToken("notifications", token), Refused());
  EXPECT_THAT(DecodePageToken("device", token), Refused()) << "a prefix of the name";
  EXPECT_THAT(DecodePageToken("devices2", token), Refused());
}

TEST(PageTokenTest, RefusesATamperedPosition) {
  const std::string token = EncodePageToken("devices", "sensor-001");
  std::string raw;
  ASSERT_TRUE(absl::WebSafeBase64Unescape(token, &raw));
  // Same checksum, another position: what a client editing the token does.
  const std::string forged =
      absl::WebSafeBase64Escape(absl::StrReplaceAll(raw, {{"sensor-001", "sensor-999"}}));
  ASSERT_NE(forged, token);
  EXPECT_THAT(DecodePageToken("devices", forged), Refused());
  // The list name is covered by the checksum too.
  const std::string moved =
      absl::WebSafeBase64Escape(absl::StrReplaceAll(raw, {{"v1:devices:", "v1:groups:"}}));
  EXPECT_THAT(DecodePageToken("groups", moved), Refused());
}

TEST(PageTokenTest, RefusesAChangedCharacter) {
  std::string token = EncodePageToken("devices", "sensor-001");
  ASSERT_GT(token.size(), 8u);
  token[4] = token[4] == 'A' ? 'B' : 'A';  // a middle character: all its bits count
  EXPECT_THAT(DecodePageToken("devices", token), Refused());
}

TEST(PageTokenTest, RefusesGarbage) {
  for (const std::string& garbage :
       {std::string(""), std::string("not a token!"), std::string("%%%"),
        absl::WebSafeBase64Escape("no colon at all"),
        absl::WebSafeBase64Escape("v1:devices:sensor-001:deadbeef"),
        absl::WebSafeBase64Escape("v1:devices:sensor-001:"),
        absl::Base64Escape(std::string("\xFB\xFF\xFE", 3))}) {
    EXPECT_THAT(DecodePageToken("devices", garbage), Refused()) << garbage;
  }
}

}  // namespace
}  // namespace herald
