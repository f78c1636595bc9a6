// Line splitting, strict number parsing and missing-value filling for the series readers.
#include "data/series_text.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>

#include "framework/error.h"

namespace finch::data {

const char* missing_name(Missing m) {
  switch (m) {
    case Missing::interpolate: return "interpolate";
    case Missing::zero: return "zero";
    case Missing::fail: return "fail";
  }
  return "?";
}

Missing missing_from_name(const std::string& name) {
  for (Missing m : {Missing::interpolate, Missing::zero, Missing::fail})
    if (name == missing_name(m)) return m;
  fail("missing-value policy: expected interpolate, zero or fail, found '", name, "'");
}

namespace text {

std::string read_file(const std::string& path, const char* op) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(op, ": cannot open ", path, " (missing file or no permission)");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) fail(op, ": error while reading ", path);
  return ss.str();
}

std::vector<std::string_view> split_lines(std::string_view all) {
  std::vector<std::string_view> lines;
  size_t start = 0;
  while (start < all.size()) {
    size_t end = all.find('\n', start);
    if (end == std::string_view::npos) end = all.size();
    std::string_view line = all.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    start = end + 1;
  }
  return lines;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (;;) {
    const size_t end = s.find(sep, start);
    out.push_back(trim(s.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start)));
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return out;
}

std::vector<std::string_view> split_ws(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
    const size_t start = i;
    while (i < s.size() && s[i] != ' ' && s[i] != '\t') ++i;
    if (i > start) out.push_back(s.substr(start, i - start));
  }
  return out;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = char(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool parse_number(std::string_view field, double& out) {
  if (field.empty()) return false;
  double v = 0;
  const auto r = std::from_chars(field.data(), field.data() + field.size(), v);
  if (r.ec != std::errc() || r.ptr != field.data() + field.size()) return false;
  // from_chars accepts "inf"/"nan" spellings; a value that a float cannot hold would become inf.
  if (!std::isfinite(v) || std::fabs(v) > double(std::numeric_limits<float>::max())) return false;
  out = v;
  return true;
}

bool is_missing(std::string_view field) { return field == "?" || lower(field) == "nan"; }

bool parse_int(std::string_view field, int64_t lo, int64_t hi, int64_t& out) {
  int64_t v = 0;
  const auto r = std::from_chars(field.data(), field.data() + field.size(), v);
  if (field.empty() || r.ec != std::errc() || r.ptr != field.data() + field.size() || v < lo || v > hi)
    return false;
  out = v;
  return true;
}

std::string quote(std::string_view field) {
  std::string s(field.substr(0, 40));
  if (field.size() > 40) s += "...";
  return "'" + s + "'";
}

bool fill_missing(float* x, int64_t T, Missing policy) {
  int64_t prev = -1;  // the last present step before the current gap
  bool any_missing = false;
  for (int64_t t = 0; t < T; ++t)
    if (std::isnan(x[t])) any_missing = true;
  if (!any_missing) return true;
  if (policy == Missing::fail) return false;
  if (policy == Missing::zero) {
    for (int64_t t = 0; t < T; ++t)
      if (std::isnan(x[t])) x[t] = 0.0f;
    return true;
  }
  for (int64_t t = 0; t <= T; ++t) {
    if (t < T && std::isnan(x[t])) continue;
    // [prev + 1, t) is a gap (possibly empty) between present values prev and t.
    if (t - prev > 1) {
      if (prev < 0 && t == T) return false;  // nothing present in the channel
      for (int64_t g = prev + 1; g < t; ++g) {
        if (prev < 0) x[g] = x[t];
        else if (t == T) x[g] = x[prev];
        else x[g] = float(double(x[prev]) + (double(x[t]) - x[prev]) * double(g - prev) / double(t - prev));
      }
    }
    prev = t;
  }
  return true;
}

}  // namespace text
}  // namespace finch::data
