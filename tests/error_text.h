// error_of / EXPECT_ERROR_HAS: run a statement and check the sentence of the finch::Error it
// throws (empty text when it throws none, so a missing error fails the expectation too).
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "framework/error.h"

namespace finch::test {

inline std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace finch::test

#define EXPECT_ERROR_HAS(stmt, text)                                                \
  do {                                                                              \
    const std::string msg_ = ::finch::test::error_of([&] { stmt; });                \
    EXPECT_NE(msg_.find(text), std::string::npos) << "message: " << msg_;          \
  } while (0)
