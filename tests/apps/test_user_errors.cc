// run_with_user_errors, the last-resort handler of every main: finch::Error sentences pass
// through (exit 1), memory and OS failures are sentences (exit 1), and anything else is an
// "internal error" by kind (exit 2) that never shows a library's text.
#include <gtest/gtest.h>

#include <filesystem>
#include <new>
#include <string>
#include <system_error>
#include <vector>

#include <nlohmann/json.hpp>

#include "apps/lib/user_errors.h"

using finch::apps::run_with_user_errors;

namespace {

struct Outcome {
  int code;
  std::string err;
};

template <typename Body>
Outcome outcome(Body&& body) {
  testing::internal::CaptureStderr();
  const int code = run_with_user_errors("prog", body);
  return {code, testing::internal::GetCapturedStderr()};
}

}  // namespace

TEST(UserErrors, SentencesAndExitCodes) {
  EXPECT_EQ(outcome([] { return 0; }).code, 0);
  const Outcome e = outcome([]() -> int { finch::fail("--lr must be positive, got -1"); });
  EXPECT_EQ(e.code, 1);
  EXPECT_EQ(e.err, "prog: --lr must be positive, got -1\n");
  const Outcome m = outcome([]() -> int { throw std::bad_alloc(); });
  EXPECT_EQ(m.code, 1);
  EXPECT_EQ(m.err.rfind("prog: out of memory: an allocation failed", 0), 0u) << m.err;
  const Outcome v = outcome([]() -> int {
    std::vector<double> big;
    big.reserve(size_t(-1) / 4);  // std::length_error: a size no vector can hold
    return 0;
  });
  EXPECT_EQ(v.code, 1);
  EXPECT_NE(v.err.find("out of memory"), std::string::npos) << v.err;
  const Outcome f = outcome([]() -> int {
    throw std::filesystem::filesystem_error("cannot create directories", "/no/such/dir",
                                            std::make_error_code(std::errc::permission_denied));
  });
  EXPECT_EQ(f.code, 1);
  EXPECT_EQ(f.err, "prog: /no/such/dir: Permission denied\n");
}

TEST(UserErrors, InternalErrorsNeverShowLibraryText) {
  const Outcome j = outcome([]() -> int { return nlohmann::json("text").get<int>(); });
  EXPECT_EQ(j.code, 2);
  EXPECT_EQ(j.err.find("json.exception"), std::string::npos) << j.err;
  EXPECT_NE(j.err.find("prog: internal error: an unexpected JSON type or key error"), std::string::npos) << j.err;
  const Outcome r = outcome([]() -> int { return std::vector<int>(2).at(5); });
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err.find("_M_range_check"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("internal error: an unexpected index out of range"), std::string::npos) << r.err;
  const Outcome u = outcome([]() -> int { throw 42; });
  EXPECT_EQ(u.code, 2);
  EXPECT_NE(u.err.find("internal error: an unknown exception"), std::string::npos) << u.err;
}
