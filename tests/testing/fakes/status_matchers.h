// gMock matchers and assertions for absl::Status and absl::StatusOr<T>, which
// Debian's Abseil (20220623) does not ship. One copy for the project's
// tests (STYLE.md rule 3).
//
//   EXPECT_THAT(store.GetDevice("default", "x"), StatusIs(absl::StatusCode::kNotFound));
//   EXPECT_THAT(status, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("device_id")));
//   EXPECT_THAT(ParseThing("1"), IsOkAndHolds(1));
//   ASSERT_OK(store.DeleteDevice("default", "s1"));
//   ASSERT_OK_AND_ASSIGN(Device device, store.GetDevice("default", "s1"));
#ifndef HERALD_TESTS_TESTING_FAKES_STATUS_MATCHERS_H_
#define HERALD_TESTS_TESTING_FAKES_STATUS_MATCHERS_H_

#include <ostream>
#include <string>
#include <type_traits>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace herald::testing {

inline const absl::Status& GetStatus(const absl::Status& status) { return status; }
template <typename T>
const absl::Status& GetStatus(const absl::StatusOr<T>& status_or) {
  return status_or.status();
}

MATCHER(IsOk, negation ? "is not OK" : "is OK") {
  const absl::Status& status = ::herald::testing::GetStatus(arg);
  if (!status.ok()) *result_listener << "whose status is " << status;
  return status.ok();
}

MATCHER_P(StatusIs, code,
          std::string(negation ? "does not have" : "has") + " status code " +
              absl::StatusCodeToString(code)) {
  const absl::Status& status = ::herald::testing::GetStatus(arg);
  *result_listener << "whose status is " << status;
  return status.code() == code;
}

MATCHER_P2(StatusIs, code, message_matcher,
           std::string(negation ? "does not have" : "has") + " status code " +
               absl::StatusCodeToString(code) + " and a matching message") {
  const absl::Status& status = ::herald::testing::GetStatus(arg);
  *result_listener << "whose status is " << status;
  if (status.code() != code) return false;
  return ::testing::ExplainMatchResult(message_matcher, std::string(status.message()),
                                       result_listener);
}

// IsOkAndHolds(m): an OK absl::StatusOr<T> whose value matches `m`.
template <typename InnerMatcher>
class IsOkAndHoldsMatcher {
 public:
  explicit IsOkAndHoldsMatcher(InnerMatcher inner) : inner_(std::move(inner)) {}

  template <typename StatusOrType>
  operator ::testing::Matcher<StatusOrType>() const {  // NOLINT: implicit by design
    return ::testing::Matcher<StatusOrType>(new Impl<const StatusOrType&>(inner_));
  }

 private:
  template <typename StatusOrRef>
  class Impl : public ::testing::MatcherInterface<StatusOrRef> {
    using StatusOrT = std::remove_cv_t<std::remove_reference_t<StatusOrRef>>;
    using T = typename StatusOrT::value_type;

   public:
    explicit Impl(const InnerMatcher& inner)
        : inner_(::testing::SafeMatcherCast<const T&>(inner)) {}

    void DescribeTo(std::ostream* os) const override {
      *os << "is OK and holds a value that ";
      inner_.DescribeTo(os);
    }
    void DescribeNegationTo(std::ostream* os) const override {
      *os << "is not OK, or holds a value that ";
      inner_.DescribeNegationTo(os);
    }
    bool MatchAndExplain(StatusOrRef actual,
                         ::testing::MatchResultListener* listener) const override {
      if (!actual.ok()) {
        *listener << "whose status is " << actual.status();
        return false;
      }
      return ::testing::ExplainMatchResult(inner_, *actual, listener);
    }

   private:
    const ::testing::Matcher<const T&> inner_;
  };

  InnerMatcher inner_;
};

template <typename InnerMatcher>
IsOkAndHoldsMatcher<std::decay_t<InnerMatcher>> IsOkAndHolds(InnerMatcher&& inner) {
  return IsOkAndHoldsMatcher<std::decay_t<InnerMatcher>>(std::forward<InnerMatcher>(inner));
}

}  // namespace herald::testing

#define HERALD_TESTING_CONCAT_INNER_(a, b) a##b
#define HERALD_TESTING_CONCAT_(a, b) HERALD_TESTING_CONCAT_INNER_(a, b)

#define EXPECT_OK(expr) EXPECT_THAT((expr), ::herald::testing::IsOk())
#define ASSERT_OK(expr) ASSERT_THAT((expr), ::herald::testing::IsOk())

// Asserts that `expr` (an absl::StatusOr) is OK and moves its value into
// `lhs`, which may declare a variable.
#define ASSERT_OK_AND_ASSIGN(lhs, expr) \
  ASSERT_OK_AND_ASSIGN_IMPL_(HERALD_TESTING_CONCAT_(herald_statusor_, __LINE__), lhs, expr)
#define ASSERT_OK_AND_ASSIGN_IMPL_(statusor, lhs, expr)             \
  auto statusor = (expr);                                           \
  ASSERT_TRUE(statusor.ok()) << #expr << ": " << statusor.status(); \
  lhs = std::move(statusor).value()

#endif  // HERALD_TESTS_TESTING_FAKES_STATUS_MATCHERS_H_
