// The .ts reader: header tags, then series lines checked against them.
#include "data/ts_file.h"

#include <cmath>
#include <limits>
#include <map>

namespace finch::data {

namespace {

using text::quote;

// Errors read "read_ts: <file> line <n>: <what is wrong>".
struct Where {
  const std::string& path;
  size_t line = 0;
  template <typename... A>
  [[noreturn]] void fail(const A&... a) const {
    finch::fail("read_ts: ", path, " line ", line, ": ", a...);
  }
};

bool parse_bool(std::string_view v, const Where& at, std::string_view tag) {
  const std::string l = text::lower(v);
  if (l == "true") return true;
  if (l == "false") return false;
  at.fail("@", tag, " must be true or false, found ", quote(v));
}

// One header line (after '@'); returns true at @data.
bool parse_tag(std::string_view line, const Where& at, TsHeader& h, std::map<std::string, size_t>& seen) {
  line.remove_prefix(1);
  const size_t sp = line.find_first_of(" \t");
  const std::string tag = text::lower(line.substr(0, sp));
  const std::string_view rest = sp == std::string_view::npos ? std::string_view() : text::trim(line.substr(sp));
  const auto words = text::split_ws(rest);
  if (seen.count(tag)) at.fail("@", tag, " appears twice (first on line ", seen[tag], ")");
  seen[tag] = at.line;
  auto one = [&](const char* what) {
    if (words.size() != 1) at.fail("@", tag, " expects ", what, ", found ", words.size(), " words");
    return words[0];
  };
  if (tag == "data") {
    if (!rest.empty()) at.fail("@data takes no value, found ", quote(rest));
    return true;
  } else if (tag == "problemname") {
    h.problem_name = std::string(rest);
  } else if (tag == "timestamps") {
    if (parse_bool(one("true or false"), at, "timeStamps"))
      at.fail("@timeStamps true (series of (time,value) pairs) is not supported; convert the file to "
              "equally spaced values with @timeStamps false");
  } else if (tag == "missing") {
    h.missing = parse_bool(one("true or false"), at, "missing");
  } else if (tag == "univariate") {
    h.univariate = parse_bool(one("true or false"), at, "univariate");
  } else if (tag == "dimensions") {
    if (!text::parse_int(one("a count"), 1, 1 << 20, h.dimensions))
      at.fail("@dimensions must be a whole number in [1, 1048576], found ", quote(rest));
  } else if (tag == "equallength") {
    h.equal_length = parse_bool(one("true or false"), at, "equalLength");
  } else if (tag == "serieslength") {
    if (!text::parse_int(one("a length"), 1, int64_t(1) << 40, h.series_length))
      at.fail("@seriesLength must be a whole number >= 1, found ", quote(rest));
  } else if (tag == "classlabel") {
    if (words.empty()) at.fail("@classLabel expects true followed by the labels, or false");
    h.has_class_label = parse_bool(words[0], at, "classLabel");
    if (!h.has_class_label && words.size() > 1) at.fail("@classLabel false takes no labels, found ", words.size() - 1);
    if (h.has_class_label && words.size() < 2) at.fail("@classLabel true lists no labels");
    for (size_t i = 1; i < words.size(); ++i) {
      for (const auto& l : h.class_labels)
        if (l == words[i]) at.fail("@classLabel lists the label ", quote(words[i]), " twice");
      h.class_labels.emplace_back(words[i]);
    }
  } else if (tag == "targetlabel") {
    h.target_label = parse_bool(one("true or false"), at, "targetLabel");
  } else {
    at.fail("unknown header tag @", tag, " (expected @problemName, @timeStamps, @missing, @univariate, "
            "@dimensions, @equalLength, @seriesLength, @classLabel, @targetLabel or @data)");
  }
  return false;
}

}  // namespace

SeriesSet read_ts(const std::string& path, const SeriesReadOptions& options, TsHeader* header_out) {
  const std::string all = text::read_file(path, "read_ts");
  const auto lines = text::split_lines(all);
  TsHeader h;
  std::map<std::string, size_t> seen;
  Where at{path};
  size_t i = 0;
  bool data = false;
  for (; i < lines.size() && !data; ++i) {
    at.line = i + 1;
    const std::string_view l = text::trim(lines[i]);
    if (l.empty() || l[0] == '#') continue;
    if (l[0] != '@') at.fail("expected a @tag or a # comment before @data, found ", quote(l));
    data = parse_tag(l, at, h, seen);
  }
  if (!data) finch::fail("read_ts: ", path, " has no @data line (", lines.size(), " lines read)");
  if (h.has_class_label && h.target_label)
    finch::fail("read_ts: ", path, " has both @classLabel true and @targetLabel true; a file is either "
                "classification or regression");
  if (h.univariate && h.dimensions > 1)
    finch::fail("read_ts: ", path, " says @univariate true but @dimensions ", h.dimensions);
  const bool has_label = h.has_class_label || h.target_label;
  int64_t dims = h.dimensions > 0 ? h.dimensions : (h.univariate && seen.count("univariate") ? 1 : 0);

  SeriesSet out;
  out.name = h.problem_name;
  out.classes = h.class_labels;
  std::vector<float> values;
  for (; i < lines.size(); ++i) {
    at.line = i + 1;
    const std::string_view l = text::trim(lines[i]);
    if (l.empty() || l[0] == '#') continue;
    if (l[0] == '@') at.fail("header tag ", quote(l), " after @data");
    if (l.find('(') != std::string_view::npos)
      at.fail("found a (time,value) pair, but time stamps are not supported (the header says "
              "@timeStamps false or nothing)");
    auto fields = text::split(l, ':');
    std::string_view label;
    if (has_label) {
      if (fields.size() < 2) at.fail("expected the series followed by ':' and its label, found no ':'");
      label = fields.back();
      fields.pop_back();
    }
    const int64_t C = int64_t(fields.size());
    if (dims == 0) dims = C;  // @univariate false without @dimensions: the first series decides
    if (C != dims) {
      const char* source = h.dimensions > 0 ? "@dimensions says "
                           : seen.count("univariate") && h.univariate ? "@univariate true means "
                                                                       : "the first series has ";
      at.fail("the series has ", C, " dimensions but ", source, dims,
              has_label ? " (the last ':' field is the label)" : "");
    }
    int64_t T = -1;
    values.clear();
    for (int64_t c = 0; c < C; ++c) {
      const auto vals = text::split(fields[size_t(c)], ',');
      if (T < 0) T = int64_t(vals.size());
      else if (int64_t(vals.size()) != T)
        at.fail("dimension ", c + 1, " has ", vals.size(), " values but dimension 1 has ", T,
                "; the channels of one series must have the same length");
      for (size_t k = 0; k < vals.size(); ++k) {
        double v = 0;
        if (text::is_missing(vals[k])) {
          if (seen.count("missing") && !h.missing)
            at.fail("missing value ", quote(vals[k]), " at dimension ", c + 1, ", value ", k + 1,
                    " but the header says @missing false");
          values.push_back(std::numeric_limits<float>::quiet_NaN());
        } else if (text::parse_number(vals[k], v)) {
          values.push_back(float(v));
        } else {
          at.fail("value ", k + 1, " of dimension ", c + 1, " is ", quote(vals[k]),
                  ", not a finite number (or '?' for a missing value)");
        }
      }
    }
    if (h.equal_length && h.series_length > 0 && T != h.series_length)
      at.fail("the series has ", T, " values but @seriesLength is ", h.series_length,
              " and @equalLength is true");
    if (h.equal_length && !out.series.empty() && T != out.series[0].size(1))
      at.fail("the series has ", T, " values but the first series has ", out.series[0].size(1),
              " and @equalLength is true");
    Tensor s = empty({C, T}, DType::f32);
    float* d = s.data<float>();
    std::copy(values.begin(), values.end(), d);
    for (int64_t c = 0; c < C; ++c)
      if (!text::fill_missing(d + c * T, T, options.missing))
        at.fail(options.missing == Missing::fail
                    ? "dimension " + std::to_string(c + 1) + " has missing values and the missing-value policy is fail"
                    : "dimension " + std::to_string(c + 1) + " has only missing values, nothing to interpolate from");
    out.series.push_back(std::move(s));
    if (h.has_class_label) {
      int64_t k = -1;
      for (size_t j = 0; j < h.class_labels.size(); ++j)
        if (h.class_labels[j] == label) k = int64_t(j);
      if (k < 0) {
        std::string known;
        for (const auto& c : h.class_labels) known += (known.empty() ? "" : " ") + c;
        at.fail("label ", quote(label), " is not one of the @classLabel labels (", known, ")");
      }
      out.labels.push_back(k);
    } else if (h.target_label) {
      double v = 0;
      if (!text::parse_number(label, v)) at.fail("the regression target ", quote(label), " is not a finite number");
      out.labels.push_back(0);
      out.targets.push_back(from_vector<float>({float(v)}, {1}));
    } else {
      out.labels.push_back(0);
    }
  }
  if (out.series.empty()) finch::fail("read_ts: ", path, " has no series after @data");
  if (out.name.empty()) out.name = path;
  if (h.dimensions == 0) h.dimensions = dims;
  if (header_out) *header_out = h;
  return out;
}

}  // namespace finch::data
