#include "service/auth/api_key.h"

#include <set>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fakes/status_matchers.h"

namespace herald {
namespace {

using ::herald::testing::IsOk;
using ::herald::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

TEST(ApiKeyTest, GeneratedKeysParseBackAndMatchOnlyTheirOwnHash) {
  absl::StatusOr<GeneratedApiKey> key = GenerateApiKey();
  ASSERT_THAT(key, IsOk());
  EXPECT_EQ(key->key_id.size(), kApiKeyIdLength);
  EXPECT_EQ(key->secret.size(), kApiKeySecretLength);
  EXPECT_EQ(key->token, "hk_" + key->key_id + "_" + key->secret);
  EXPECT_EQ(key->secret_sha256.size(), 32u);

  absl::StatusOr<ParsedApiKey> parsed = ParseApiKey(key->token);
  ASSERT_THAT(parsed, IsOk());
  EXPECT_EQ(parsed->key_id, key->key_id);
  EXPECT_EQ(parsed->secret, key->secret);
  EXPECT_TRUE(SecretMatches(parsed->secret, key->secret_sha256));

  std::string other = key->secret;
  other[0] = other[0] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(SecretMatches(other, key->secret_sha256));
  EXPECT_FALSE(SecretMatches(key->secret, key->secret_sha256.substr(1)));
}

TEST(ApiKeyTest, KeysAreDistinct) {
  std::set<std::string> ids;
  std::set<std::string> secrets;
  for (int i = 0; i < 200; ++i) {
    absl::StatusOr<GeneratedApiKey> key = GenerateApiKey();
    ASSERT_THAT(key, IsOk());
    ids.insert(key->key_id);
    secrets.insert(key->secret);
  }
  EXPECT_EQ(ids.size(), 200u);
  EXPECT_EQ(secrets.size(), 200u);
}

TEST(ApiKeyTest, HashIsSha256) {
  // SHA-256("abc"), FIPS 180-2 test vector.
  const std::string digest = HashApiKeySecret("abc");
  ASSERT_EQ(digest.size(), 32u);
  EXPECT_EQ(static_cast<unsigned char>(digest[0]), 0xba);
  EXPECT_EQ(static_cast<unsigned char>(digest[31]), 0xad);
}

TEST(ApiKeyTest, MalformedTokensAreUnauthenticatedAndNotEchoed) {
  absl::StatusOr<GeneratedApiKey> key = GenerateApiKey();
  ASSERT_THAT(key, IsOk());
  const std::string good = key->token;
  for (const std::string& bad :
       {std::string(""), std::string("hk_"), good.substr(1), good + "x", "xx" + good.substr(2),
        "hk_" + std::string(12, 'G') + "_" + key->secret,
        "hk_" + key->key_id + "-" + key->secret,
        "hk_" + key->key_id + "_" + std::string(42, 'a') + "!"}) {
    absl::StatusOr<ParsedApiKey> parsed = ParseApiKey(bad);
    EXPECT_THAT(parsed, StatusIs(absl::StatusCode::kUnauthenticated)) << bad;
    if (bad.size() > 8) EXPECT_THAT(parsed.status().message(), Not(HasSubstr(bad)));
  }
}

TEST(ScopesTest, ParsesNamesAndAll) {
  absl::StatusOr<ScopeSet> scopes = ParseScopes({"notify", " devices:read"}, "--scopes");
  ASSERT_THAT(scopes, IsOk());
  EXPECT_TRUE(scopes->Contains(Scope::kNotify));
  EXPECT_TRUE(scopes->Contains(Scope::kDevicesRead));
  EXPECT_FALSE(scopes->Contains(Scope::kCommand));
  EXPECT_THAT(scopes->Names(), ElementsAre("notify", "devices:read"));

  absl::StatusOr<ScopeSet> all = ParseScopes({"all"}, "--scopes");
  ASSERT_THAT(all, IsOk());
  EXPECT_EQ(*all, ScopeSet::All());
  EXPECT_THAT(all->Names(),
              ElementsAre("notify", "command", "devices:write", "devices:read", "stats"));
}

TEST(ScopesTest, RefusesUnknownAndEmpty) {
  EXPECT_THAT(ParseScopes({"notify", "admin"}, "--scopes"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unknown scope \"admin\"")));
  EXPECT_THAT(ParseScopes({}, "--scopes"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("at least one scope")));
  EXPECT_THAT(ParseScopes({""}, "--scopes"), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace herald
