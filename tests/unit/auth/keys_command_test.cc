#include "service/admin/keys_command.h"

#include <sstream>

#include "absl/strings/ascii.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/auth/authenticator.h"
#include "tests/testing/fakes/fake_auth_store.h"
#include "tests/testing/fakes/status_matchers.h"

namespace herald {
namespace {

using ::herald::testing::FakeAuthStore;
using ::herald::testing::IsOk;
using ::herald::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::SizeIs;
using ::testing::StartsWith;

struct Result {
  int code;
  std::string out;
  std::string err;
};

Result RunKeys(FakeAuthStore& store, KeysCommand command) {
  std::ostringstream out;
  std::ostringstream err;
  const int code = RunKeysCommand(command, store, out, err);
  return {code, out.str(), err.str()};
}

TEST(KeysCommandTest, CreatePrintsAWorkingKeyOnceAndListShowsItWithoutTheSecret) {
  FakeAuthStore store;
  Result created = RunKeys(store, {.action = "create", .tenant_id = "acme",
                               .scopes = {"notify", "devices:read"}, .name = "billing"});
  ASSERT_EQ(created.code, 0) << created.err;
  const std::string token(absl::StripTrailingAsciiWhitespace(created.out));
  EXPECT_THAT(token, StartsWith("hk_"));
  EXPECT_THAT(created.err, HasSubstr("prefix: acme/"));
  EXPECT_THAT(created.err, Not(HasSubstr(token)));

  Authenticator authenticator(store, {});
  absl::StatusOr<Caller> caller = authenticator.Authenticate("Bearer " + token);
  ASSERT_THAT(caller, IsOk());
  EXPECT_EQ(caller->tenant_id, "acme");
  EXPECT_TRUE(caller->scopes.Contains(Scope::kDevicesRead));

  Result listed = RunKeys(store, {.action = "list", .tenant_id = "acme"});
  ASSERT_EQ(listed.code, 0) << listed.err;
  EXPECT_THAT(listed.out, HasSubstr(caller->key_id));
  EXPECT_THAT(listed.out, HasSubstr("notify,devices:read"));
  EXPECT_THAT(listed.out, HasSubstr("billing"));
  EXPECT_THAT(listed.out, Not(HasSubstr(token.substr(16))));
}

TEST(KeysCommandTest, RevokeStopsTheKey) {
  FakeAuthStore store;
  Result created = RunKeys(store, {.action = "create", .tenant_id = "acme", .scopes = {"all"}});
  ASSERT_EQ(created.code, 0) << created.err;
  const std::string token(absl::StripTrailingAsciiWhitespace(created.out));
  const std::string key_id = token.substr(3, kApiKeyIdLength);
  Result revoked = RunKeys(store, {.action = "revoke", .key_id = key_id});
  ASSERT_EQ(revoked.code, 0) << revoked.err;
  Authenticator authenticator(store, {});
  EXPECT_THAT(authenticator.Authenticate("Bearer " + token),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("revoked")));
  EXPECT_EQ(RunKeys(store, {.action = "revoke", .key_id = "000000000000"}).code, 2);
  // The whole key is accepted too, and never printed back.
  Result again = RunKeys(store, {.action = "revoke", .key_id = token});
  EXPECT_EQ(again.code, 0);
  EXPECT_THAT(again.out, Not(HasSubstr(token)));
}

TEST(KeysCommandTest, BadInputIsExitCodeTwoWithTheRule) {
  FakeAuthStore store;
  Result no_scopes = RunKeys(store, {.action = "create", .tenant_id = "acme"});
  EXPECT_EQ(no_scopes.code, 2);
  EXPECT_THAT(no_scopes.err, HasSubstr("--scopes"));
  Result bad_tenant = RunKeys(store, {.action = "create", .tenant_id = "Acme!", .scopes = {"all"}});
  EXPECT_EQ(bad_tenant.code, 2);
  EXPECT_THAT(bad_tenant.err, HasSubstr("--tenant"));
  Result bad_prefix = RunKeys(store, {.action = "create", .tenant_id = "acme", .scopes = {"all"},
                                  .topic_prefix = "a/b"});
  EXPECT_EQ(bad_prefix.code, 2);
  EXPECT_THAT(bad_prefix.err, HasSubstr("--topic_prefix"));
  Result default_prefix = RunKeys(store, {.action = "create", .tenant_id = "default",
                                      .scopes = {"all"}, .topic_prefix = "x"});
  EXPECT_EQ(default_prefix.code, 2);
  EXPECT_THAT(store.ListApiKeys(std::nullopt).value(), SizeIs(0));
}

TEST(KeysCommandTest, ATenantKeepsItsPrefixAndPrefixesAreNotShared) {
  FakeAuthStore store;
  ASSERT_EQ(RunKeys(store, {.action = "create", .tenant_id = "acme", .scopes = {"all"},
                        .topic_prefix = "acme-eu"}).code, 0);
  EXPECT_EQ(RunKeys(store, {.action = "create", .tenant_id = "acme", .scopes = {"all"}}).code, 0);
  Result other_prefix = RunKeys(store, {.action = "create", .tenant_id = "acme", .scopes = {"all"},
                                    .topic_prefix = "acme-us"});
  EXPECT_EQ(other_prefix.code, 2);
  Result taken = RunKeys(store, {.action = "create", .tenant_id = "globex", .scopes = {"all"},
                             .topic_prefix = "acme-eu"});
  EXPECT_EQ(taken.code, 2);
  EXPECT_THAT(store.ListApiKeys(std::nullopt).value(), SizeIs(2));
}

TEST(KeysCommandTest, AnUnavailableStoreIsExitCodeOne) {
  FakeAuthStore store;
  store.SetUnavailable(absl::UnavailableError("connection refused"));
  EXPECT_EQ(RunKeys(store, {.action = "create", .tenant_id = "acme", .scopes = {"all"}}).code, 1);
  EXPECT_EQ(RunKeys(store, {.action = "list"}).code, 1);
}

}  // namespace
}  // namespace herald
