// Shared pieces of the text series readers (.ts, UCR text, CSV): line splitting, strict number
// parsing and the missing-value policy.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace finch::data {

// What a reader does with a missing value (`?` in .ts, `NaN` in .ts and UCR text).
enum class Missing {
  // Default: linear interpolation between the nearest present values of the same channel;
  // missing steps before the first (after the last) present value take that value. A channel
  // with no present value at all is an error. Training can use the result as is.
  interpolate,
  zero,  // every missing value becomes 0
  fail,  // a missing value is an error naming the file and line
};
const char* missing_name(Missing m);
// "interpolate", "zero" or "fail" (for command-line options); throws on anything else.
Missing missing_from_name(const std::string& name);

struct SeriesReadOptions {
  Missing missing = Missing::interpolate;
};

namespace text {

// The whole file; throws "<op>: cannot open <path>" when it cannot be read.
std::string read_file(const std::string& path, const char* op);
// The file's lines without their "\n" / "\r\n" (line i of the result is line i + 1 of the file).
std::vector<std::string_view> split_lines(std::string_view all);
std::string_view trim(std::string_view s);
// Splits on one separator character; fields are trimmed; "a,,b" gives an empty middle field.
std::vector<std::string_view> split(std::string_view s, char sep);
// Splits on runs of spaces and tabs (no empty fields).
std::vector<std::string_view> split_ws(std::string_view s);
std::string lower(std::string_view s);

// Parses a whole field as a finite number (C locale, no leading '+'). False for anything else:
// text, an empty field, trailing characters, inf, or a value outside the float range.
bool parse_number(std::string_view field, double& out);
// True for the spellings of a missing value: "?" and NaN in any case.
bool is_missing(std::string_view field);
// Parses a whole field as an integer in [lo, hi]; false otherwise.
bool parse_int(std::string_view field, int64_t lo, int64_t hi, int64_t& out);
// The field quoted for an error message, cut to 40 characters.
std::string quote(std::string_view field);

// Fills the NaNs of one channel x[0, T) by `policy`. Returns false when the policy cannot
// (fail with any NaN; interpolate with no present value); the caller words the error.
bool fill_missing(float* x, int64_t T, Missing policy);

}  // namespace text
}  // namespace finch::data
