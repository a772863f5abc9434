// Tests of service/core/logging.h: JSON escaping, level and format parsing,
// and the shape of a log line.
#include "service/core/logging.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/core/json_text.h"

namespace herald {
namespace {

using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::Optional;

TEST(JsonEscapeTest, EscapesQuotesBackslashesAndControls) {
  EXPECT_EQ(JsonEscape(R"(say "hi")"), R"(say \"hi\")");
  EXPECT_EQ(JsonEscape(R"(C:\temp)"), R"(C:\\temp)");
  EXPECT_EQ(JsonEscape("a\nb\rc\td"), R"(a\nb\rc\td)");
  EXPECT_EQ(JsonEscape(std::string("\x01\x1f", 2)), R"(\u0001\u001f)");
  EXPECT_EQ(JsonEscape(std::string("nul\0", 4)), R"(nul\u0000)");
}

TEST(JsonEscapeTest, LeavesEverythingElseAlone) {
  EXPECT_EQ(JsonEscape(""), "");
  EXPECT_EQ(JsonEscape("plain text / 42 {}"), "plain text / 42 {}");
  EXPECT_EQ(JsonEscape("caf\xC3\xA9 \xF0\x9F\x98\x80"), "caf\xC3\xA9 \xF0\x9F\x98\x80");
  EXPECT_EQ(JsonEscape("\x7f"), "\x7f") << "DEL needs no escape in JSON";
}

TEST(LogParseTest, LevelsAndFormats) {
  EXPECT_THAT(ParseLogLevel("debug"), Optional(LogLevel::kDebug));
  EXPECT_THAT(ParseLogLevel("info"), Optional(LogLevel::kInfo));
  EXPECT_THAT(ParseLogLevel("warn"), Optional(LogLevel::kWarning));
  EXPECT_THAT(ParseLogLevel("warning"), Optional(LogLevel::kWarning));
  EXPECT_THAT(ParseLogLevel("error"), Optional(LogLevel::kError));
  EXPECT_EQ(ParseLogLevel("verbose"), std::nullopt);
  EXPECT_THAT(ParseLogFormat("json"), Optional(LogFormat::kJson));
  EXPECT_THAT(ParseLogFormat("text"), Optional(LogFormat::kText));
  EXPECT_EQ(ParseLogFormat("xml"), std::nullopt);
}

// Restores the process-wide log settings after each test.
class LogLineTest : public ::testing::Test {
 protected:
  void TearDown() override {
    SetLogLevel(LogLevel::kInfo);
    SetLogFormat(LogFormat::kText);
  }
};

TEST_F(LogLineTest, JsonLineEscapesMessageAndFields) {
  SetLogFormat(LogFormat::kJson);
  ::testing::internal::CaptureStderr();
  LogWarning("door \"front\"", {{"topic", "a/b"}, {"error", "line1\nline2"}});
  const std::string line = ::testing::internal::GetCapturedStderr();
  EXPECT_THAT(line, HasSubstr(R"("level":"warning")"));
  EXPECT_THAT(line, HasSubstr(R"("msg":"door \"front\"")"));
  EXPECT_THAT(line, HasSubstr(R"("topic":"a/b")"));
  EXPECT_THAT(line, HasSubstr(R"("error":"line1\nline2")"));
  EXPECT_THAT(line, EndsWith("}\n"));
  EXPECT_EQ(line.find('\n'), line.size() - 1) << "one line per event";
}

TEST_F(LogLineTest, TextLineQuotesValuesThatNeedIt) {
  SetLogFormat(LogFormat::kText);
  ::testing::internal::CaptureStderr();
  LogInfo("connected", {{"uri", "tcp://h:1883"}, {"reason", "two words"}, {"empty", ""}});
  const std::string line = ::testing::internal::GetCapturedStderr();
  EXPECT_THAT(line, HasSubstr(" info connected uri=tcp://h:1883 reason=\"two words\" empty=\"\""));
  EXPECT_THAT(line, EndsWith("\n"));
}

TEST_F(LogLineTest, LevelFilters) {
  SetLogLevel(LogLevel::kError);
  EXPECT_FALSE(LogEnabled(LogLevel::kWarning));
  EXPECT_TRUE(LogEnabled(LogLevel::kError));
  ::testing::internal::CaptureStderr();
  LogWarning("hidden");
  LogDebug("hidden too");
  LogError("shown");
  const std::string out = ::testing::internal::GetCapturedStderr();
  EXPECT_THAT(out, Not(HasSubstr("hidden")));
  EXPECT_THAT(out, HasSubstr("shown"));
}

}  // namespace
}  // namespace herald
