// The hand-written argument parsing finch_run and sorter share (no CLI11: it would be most of
// their binary size): a flag's value and a flag's integer, each wrong one a finch::Error sentence.
#pragma once

#include <cstdint>
#include <string>

namespace finch::apps {

// argv[i + 1] (and i advanced past it); "FLAG: expected a value after it" when argv ends.
std::string flag_value(int argc, char** argv, int& i);

// `s` as a whole decimal integer in lo..hi; otherwise "FLAG: expected EXPECTED, found 's'", where
// an empty `expected` says "an integer in lo..hi".
int64_t parse_int_flag(const std::string& flag, const std::string& s, int64_t lo, int64_t hi,
                       const std::string& expected = "");

}  // namespace finch::apps
