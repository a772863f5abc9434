#include "service/auth/authenticator.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fakes/fake_auth_store.h"
#include "tests/testing/fakes/fake_clock.h"
#include "tests/testing/fakes/status_matchers.h"

namespace herald {
namespace {

using ::herald::testing::FakeAuthStore;
using ::herald::testing::FakeClock;
using ::herald::testing::IsOk;
using ::herald::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;

class AuthenticatorTest : public ::testing::Test {
 protected:
  AuthenticatorTest()
      : authenticator_(store_, {.cache_ttl = absl::Seconds(10),
                                .max_cached_keys = 4,
                                .clock = [this] { return clock_.Now(); }}) {}

  // A stored key of `tenant` with `scopes`; returns the token.
  std::string MakeKey(const std::string& tenant, std::vector<std::string> scopes) {
    absl::StatusOr<GeneratedApiKey> key = GenerateApiKey();
    EXPECT_THAT(key, IsOk());
    absl::StatusOr<ScopeSet> parsed = ParseScopes(scopes, "scopes");
    EXPECT_THAT(parsed, IsOk());
    EXPECT_THAT(store_.CreateApiKey({.key_id = key->key_id,
                                     .tenant_id = tenant,
                                     .name = "test",
                                     .scopes = *parsed,
                                     .secret_sha256 = key->secret_sha256}),
                IsOk());
    return key->token;
  }

  FakeClock clock_;
  FakeAuthStore store_;
  Authenticator authenticator_;
};

TEST_F(AuthenticatorTest, AValidKeyYieldsItsTenantPrefixAndScopes) {
  const std::string token = MakeKey("acme", {"notify", "stats"});
  absl::StatusOr<Caller> caller = authenticator_.Authenticate("Bearer " + token);
  ASSERT_THAT(caller, IsOk());
  EXPECT_EQ(caller->tenant_id, "acme");
  EXPECT_EQ(caller->topic_prefix, "acme");
  EXPECT_EQ(caller->key_id, token.substr(3, kApiKeyIdLength));
  EXPECT_TRUE(caller->scopes.Contains(Scope::kNotify));
  EXPECT_FALSE(caller->scopes.Contains(Scope::kCommand));
  // The scheme is case-insensitive, as HTTP's is.
  EXPECT_THAT(authenticator_.Authenticate("bearer " + token), IsOk());
}

TEST_F(AuthenticatorTest, MissingMalformedWrongAndUnknownKeysAreRefused) {
  const std::string token = MakeKey("acme", {"all"});
  EXPECT_THAT(authenticator_.Authenticate(""),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("missing API key")));
  EXPECT_THAT(authenticator_.Authenticate(token),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("Bearer")));
  EXPECT_THAT(authenticator_.Authenticate("Basic dXNlcjpwYXNz"),
              StatusIs(absl::StatusCode::kUnauthenticated));
  std::string wrong = token;
  wrong.back() = wrong.back() == 'A' ? 'B' : 'A';
  absl::StatusOr<Caller> refused = authenticator_.Authenticate("Bearer " + wrong);
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("invalid API key")));
  // The secret never appears in the message.
  EXPECT_THAT(refused.status().message(), Not(HasSubstr(wrong.substr(16))));
  absl::StatusOr<GeneratedApiKey> unknown = GenerateApiKey();
  ASSERT_THAT(unknown, IsOk());
  EXPECT_THAT(authenticator_.Authenticate("Bearer " + unknown->token),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("invalid API key")));
}

TEST_F(AuthenticatorTest, KeysAreCachedAndRevocationTakesEffectWhenTheCacheExpires) {
  const std::string token = MakeKey("acme", {"notify"});
  ASSERT_THAT(authenticator_.Authenticate("Bearer " + token), IsOk());
  ASSERT_THAT(authenticator_.Authenticate("Bearer " + token), IsOk());
  EXPECT_EQ(store_.get_calls(), 1);

  ASSERT_THAT(store_.RevokeApiKey(token.substr(3, kApiKeyIdLength)), IsOk());
  clock_.Advance(absl::Seconds(5));
  EXPECT_THAT(authenticator_.Authenticate("Bearer " + token), IsOk());  // still cached
  clock_.Advance(absl::Seconds(6));
  EXPECT_THAT(authenticator_.Authenticate("Bearer " + token),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("revoked")));
  EXPECT_EQ(store_.get_calls(), 2);
}

TEST_F(AuthenticatorTest, UnknownKeysAreCachedSoAFloodCostsOneQueryPerKey) {
  absl::StatusOr<GeneratedApiKey> unknown = GenerateApiKey();
  ASSERT_THAT(unknown, IsOk());
  for (int i = 0; i < 100; ++i) {
    EXPECT_THAT(authenticator_.Authenticate("Bearer " + unknown->token),
                StatusIs(absl::StatusCode::kUnauthenticated));
  }
  EXPECT_EQ(store_.get_calls(), 1);
}

TEST_F(AuthenticatorTest, TheCacheIsBounded) {
  // max_cached_keys = 4: a fifth key clears the cache, costing queries only.
  std::vector<std::string> tokens;
  for (int i = 0; i < 5; ++i) tokens.push_back(MakeKey("acme", {"notify"}));
  for (const std::string& token : tokens) {
    ASSERT_THAT(authenticator_.Authenticate("Bearer " + token), IsOk());
  }
  EXPECT_EQ(store_.get_calls(), 5);
  ASSERT_THAT(authenticator_.Authenticate("Bearer " + tokens[0]), IsOk());
  EXPECT_EQ(store_.get_calls(), 6);
}

TEST_F(AuthenticatorTest, AnUncachedKeyWithTheDatabaseAwayIsUnavailable) {
  const std::string token = MakeKey("acme", {"notify"});
  store_.SetUnavailable(absl::UnavailableError("connection refused"));
  EXPECT_THAT(authenticator_.Authenticate("Bearer " + token),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("cannot check the API key")));
  store_.SetUnavailable(absl::OkStatus());
  EXPECT_THAT(authenticator_.Authenticate("Bearer " + token), IsOk());
}

TEST_F(AuthenticatorTest, UncachedLookupsAreRateLimited) {
  FakeClock clock;
  FakeAuthStore store;
  Authenticator limited(store, {.max_lookups_per_second = 10,
                                .max_lookup_burst = 10,
                                .clock = [&clock] { return clock.Now(); }});
  for (int i = 0; i < 10; ++i) {
    absl::StatusOr<GeneratedApiKey> made_up = GenerateApiKey();
    ASSERT_THAT(made_up, IsOk());
    EXPECT_THAT(limited.Authenticate("Bearer " + made_up->token),
                StatusIs(absl::StatusCode::kUnauthenticated));
  }
  absl::StatusOr<GeneratedApiKey> made_up = GenerateApiKey();
  ASSERT_THAT(made_up, IsOk());
  EXPECT_THAT(limited.Authenticate("Bearer " + made_up->token),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("too many unknown API keys")));
  EXPECT_EQ(store.get_calls(), 10);
  clock.Advance(absl::Milliseconds(100));
  EXPECT_THAT(limited.Authenticate("Bearer " + made_up->token),
              StatusIs(absl::StatusCode::kUnauthenticated));
}

}  // namespace
}  // namespace herald
