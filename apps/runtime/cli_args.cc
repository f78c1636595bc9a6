// finch_run's and sorter's shared argument helpers (see cli_args.h).
#include "apps/runtime/cli_args.h"

#include <cerrno>
#include <cstdlib>

#include "framework/error.h"

namespace finch::apps {

std::string flag_value(int argc, char** argv, int& i) {
  if (i + 1 >= argc) fail(argv[i], ": expected a value after it");
  return argv[++i];
}

int64_t parse_int_flag(const std::string& flag, const std::string& s, int64_t lo, int64_t hi,
                       const std::string& expected) {
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || errno == ERANGE || v < lo || v > hi) {
    if (expected.empty()) fail(flag, ": expected an integer in ", lo, "..", hi, ", found '", s, "'");
    fail(flag, ": expected ", expected, ", found '", s, "'");
  }
  return v;
}

}  // namespace finch::apps
