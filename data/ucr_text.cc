// The UCR text reader: label-first lines, comma or whitespace separated.
#include "data/ucr_text.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <sstream>

namespace finch::data {

namespace {

// "1.0000000e+00" → "1", "-1" → "-1", "0.5" → "0.5": the shortest spelling that reads back.
std::string number_name(double v) {
  std::ostringstream os;
  os.precision(17);
  os << v;
  for (int p = 1; p <= 17; ++p) {
    std::ostringstream s;
    s.precision(p);
    s << v;
    if (std::stod(s.str()) == v) return s.str();
  }
  return os.str();
}

}  // namespace

SeriesSet read_ucr_text(const std::string& path, const SeriesReadOptions& options) {
  const std::string all = text::read_file(path, "read_ucr_text");
  const auto lines = text::split_lines(all);
  std::vector<std::string> raw_labels;
  std::vector<size_t> line_of;
  SeriesSet out;
  out.name = path;
  std::vector<float> v;
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string_view l = text::trim(lines[i]);
    if (l.empty()) continue;
    auto where = [&] { return "read_ucr_text: " + path + " line " + std::to_string(i + 1) + ": "; };
    const auto fields = l.find(',') != std::string_view::npos ? text::split(l, ',') : text::split_ws(l);
    if (fields.size() < 2) fail(where(), "expected a label followed by at least one value, found ", fields.size(), " field");
    if (fields[0].empty() || text::is_missing(fields[0])) fail(where(), "the label (first field) is missing");
    v.clear();
    for (size_t k = 1; k < fields.size(); ++k) {
      double x = 0;
      if (text::is_missing(fields[k]) || fields[k].empty()) v.push_back(std::numeric_limits<float>::quiet_NaN());
      else if (text::parse_number(fields[k], x)) v.push_back(float(x));
      else fail(where(), "value ", k, " is ", text::quote(fields[k]), ", not a finite number (or NaN for a missing value)");
    }
    while (!v.empty() && std::isnan(v.back())) v.pop_back();  // variable-length padding
    if (v.empty()) fail(where(), "the series has no values (all ", fields.size() - 1, " are missing)");
    const int64_t T = int64_t(v.size());
    Tensor s = from_vector<float>(v, {1, T});
    if (!text::fill_missing(s.data<float>(), T, options.missing))
      fail(where(), "the series has missing values and the missing-value policy is fail");
    out.series.push_back(std::move(s));
    raw_labels.emplace_back(fields[0]);
    line_of.push_back(i + 1);
  }
  if (out.series.empty()) fail("read_ucr_text: ", path, " has no series (no non-empty line)");
  // Classes: numeric when every label parses as a number.
  std::vector<double> nums(raw_labels.size());
  bool numeric = true;
  for (size_t i = 0; i < raw_labels.size() && numeric; ++i) numeric = text::parse_number(raw_labels[i], nums[i]);
  if (numeric) {
    std::vector<double> distinct = nums;
    std::sort(distinct.begin(), distinct.end());
    distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
    for (double d : distinct) out.classes.push_back(number_name(d));
    for (double x : nums)
      out.labels.push_back(int64_t(std::lower_bound(distinct.begin(), distinct.end(), x) - distinct.begin()));
  } else {
    std::vector<std::string> distinct = raw_labels;
    std::sort(distinct.begin(), distinct.end());
    distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
    out.classes = distinct;
    for (const auto& s : raw_labels)
      out.labels.push_back(int64_t(std::lower_bound(distinct.begin(), distinct.end(), s) - distinct.begin()));
  }
  return out;
}

}  // namespace finch::data
