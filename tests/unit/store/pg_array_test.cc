#include "service/store/pg_array.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace herald {
namespace {

TEST(PgTextArrayLiteralTest, EmptyListIsEmptyArray) { EXPECT_EQ(PgTextArrayLiteral({}), "{}"); }

TEST(PgTextArrayLiteralTest, QuotesEveryElement) {
  EXPECT_EQ(PgTextArrayLiteral({"a", "b"}), R"({"a","b"})");
}

TEST(PgTextArrayLiteralTest, EscapesQuotesAndBackslashes) {
  EXPECT_EQ(PgTextArrayLiteral({R"(say "hi")", R"(C:\dir)"}), R"({"say \"hi\"","C:\\dir"})");
}

TEST(PgTextArrayLiteralTest, KeepsSpecialCharactersInsideQuotes) {
  // Commas, braces, spaces and the word NULL mean something unquoted.
  EXPECT_EQ(PgTextArrayLiteral({"a,b", "{x}", " padded ", "NULL", ""}),
            R"({"a,b","{x}"," padded ","NULL",""})");
}

TEST(PgTextArrayLiteralTest, RoundTripsThroughTheParser) {
  const std::vector<std::string> values = {"plain",     "with space",    "comma,inside", "{braces}",
                                           R"(quote")", R"(back\slash)", "NULL",         "",
                                           "ünïcødé ✓", "tab\there",     "new\nline",    R"(\")"};
  absl::StatusOr<std::vector<std::string>> parsed = ParsePgTextArray(PgTextArrayLiteral(values));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(*parsed, values);
}

TEST(ParsePgTextArrayTest, ReadsPostgresOutputFormat) {
  // PostgreSQL quotes only the elements that need it.
  absl::StatusOr<std::vector<std::string>> parsed =
      ParsePgTextArray(R"({factory/floor-3,"a b","x\"y",""})");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(*parsed, (std::vector<std::string>{"factory/floor-3", "a b", R"(x"y)", ""}));
}

TEST(ParsePgTextArrayTest, EmptyArray) {
  absl::StatusOr<std::vector<std::string>> parsed = ParsePgTextArray("{}");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_TRUE(parsed->empty());
}

TEST(ParsePgTextArrayTest, RefusesNullElements) {
  absl::StatusOr<std::vector<std::string>> parsed = ParsePgTextArray("{a,NULL}");
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ParsePgTextArrayTest, RefusesNestedArrays) {
  absl::StatusOr<std::vector<std::string>> parsed = ParsePgTextArray("{{a},{b}}");
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(AppendPgArrayElementTest, AppendsOneQuotedElement) {
  std::string out = "{";
  AppendPgArrayElement(R"(a"b)", &out);
  EXPECT_EQ(out, R"({"a\"b")");
}

}  // namespace
}  // namespace herald
