#include "service/core/database_url.h"

#include <string>

#include "gtest/gtest.h"

namespace herald {
namespace {

TEST(RedactDatabaseUrlTest, MasksUrlPassword) {
  EXPECT_EQ(RedactDatabaseUrl("postgresql://herald:s3cret@db:5432/herald"),
            "postgresql://herald:***@db:5432/herald");
  EXPECT_EQ(RedactDatabaseUrl("postgres://u:p%40ss@db/herald?sslmode=require"),
            "postgres://u:***@db/herald?sslmode=require");
}

TEST(RedactDatabaseUrlTest, KeepsUrlWithoutPassword) {
  EXPECT_EQ(RedactDatabaseUrl("postgresql://postgres@127.0.0.1:5432/postgres"),
            "postgresql://postgres@127.0.0.1:5432/postgres");
  EXPECT_EQ(RedactDatabaseUrl("postgresql:///herald"), "postgresql:///herald");
}

TEST(RedactDatabaseUrlTest, MasksPasswordQueryParameter) {
  EXPECT_EQ(RedactDatabaseUrl("postgresql://db/herald?user=u&password=hunter2&sslmode=disable"),
            "postgresql://db/herald?user=u&password=***&sslmode=disable");
}

TEST(RedactDatabaseUrlTest, MasksKeywordValuePassword) {
  EXPECT_EQ(RedactDatabaseUrl("host=db user=herald password=s3cret dbname=herald"),
            "host=db user=herald password=*** dbname=herald");
  EXPECT_EQ(RedactDatabaseUrl("host=db password = 'two words\\'' dbname=x"),
            "host=db password = *** dbname=x");
}

TEST(RedactPasswordTest, RemovesPasswordFromMessages) {
  const std::string url = "postgresql://u:p%40ss@db/herald";
  EXPECT_EQ(RedactPassword("bad uri p%40ss and p@ss", url), "bad uri *** and ***");
  EXPECT_EQ(RedactPassword("nothing secret", "host=db password=s3cret"), "nothing secret");
  EXPECT_EQ(RedactPassword("pw s3cret here", "host=db password=s3cret"), "pw *** here");
}

TEST(RedactPasswordTest, NoPasswordChangesNothing) {
  EXPECT_EQ(RedactPassword("message", "postgresql://postgres@db/x"), "message");
  EXPECT_EQ(RedactPassword("message", ""), "message");
}

TEST(WithDefaultParameterTest, AddsToUrl) {
  EXPECT_EQ(WithDefaultParameter("postgresql://db/herald", "connect_timeout", "5"),
            "postgresql://db/herald?connect_timeout=5");
  EXPECT_EQ(WithDefaultParameter("postgresql://db/herald?sslmode=require", "connect_timeout", "5"),
            "postgresql://db/herald?sslmode=require&connect_timeout=5");
}

TEST(WithDefaultParameterTest, AddsToKeywordValueString) {
  EXPECT_EQ(WithDefaultParameter("host=db dbname=herald", "connect_timeout", "5"),
            "host=db dbname=herald connect_timeout=5");
  EXPECT_EQ(WithDefaultParameter("", "connect_timeout", "5"), "connect_timeout=5");
}

TEST(WithDefaultParameterTest, KeepsExplicitSetting) {
  EXPECT_EQ(WithDefaultParameter("postgresql://db/h?connect_timeout=30", "connect_timeout", "5"),
            "postgresql://db/h?connect_timeout=30");
  EXPECT_EQ(WithDefaultParameter("host=db connect_timeout=30", "connect_timeout", "5"),
            "host=db connect_timeout=30");
}

}  // namespace
}  // namespace herald
