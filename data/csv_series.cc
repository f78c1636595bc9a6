// The CSV forecasting reader: parsing, date columns, sliding windows, split and normalization.
#include "data/csv_series.h"

#include <cmath>
#include <limits>

namespace finch::data {

namespace {

// Splits one CSV line on commas outside double quotes; quotes are removed ("" is a quote).
// Returns false on an unterminated quote.
bool split_csv(std::string_view line, std::vector<std::string>& out) {
  out.clear();
  std::string cur;
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') cur += '"', ++i;
      else if (c == '"') quoted = false;
      else cur += c;
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      out.emplace_back(text::trim(cur));
      cur.clear();
    } else {
      cur += c;
    }
  }
  out.emplace_back(text::trim(cur));
  return !quoted;
}

bool is_date_name(const std::string& name) {
  const std::string l = text::lower(name);
  for (const char* d : {"date", "time", "datetime", "timestamp", "month", "day", "year"})
    if (l == d) return true;
  return false;
}

bool is_csv_missing(std::string_view f) { return f.empty() || text::is_missing(f) || text::lower(f) == "na"; }

}  // namespace

int64_t CsvTable::column(const std::string& name) const {
  for (size_t i = 0; i < names.size(); ++i)
    if (names[i] == name) return int64_t(i);
  return -1;
}

CsvTable read_csv_table(const std::string& path, const SeriesReadOptions& options) {
  const std::string all = text::read_file(path, "read_csv_table");
  const auto lines = text::split_lines(all);
  CsvTable t;
  t.path = path;
  size_t i = 0;
  while (i < lines.size() && text::trim(lines[i]).empty()) ++i;
  if (i == lines.size()) fail("read_csv_table: ", path, " is empty; expected a header row and data rows");
  std::vector<std::string> f;
  if (!split_csv(lines[i], f)) fail("read_csv_table: ", path, " line ", i + 1, ": unterminated quote");
  t.names = f;
  for (size_t c = 0; c < f.size(); ++c) {
    if (f[c].empty()) fail("read_csv_table: ", path, " line ", i + 1, ": column ", c + 1, " has no name");
    for (size_t d = 0; d < c; ++d)
      if (f[d] == f[c]) fail("read_csv_table: ", path, " line ", i + 1, ": the column name '", f[c], "' appears twice");
  }
  const size_t ncol = t.names.size();
  t.is_text.assign(ncol, false);
  t.values.assign(ncol, {});
  for (size_t c = 0; c < ncol; ++c) t.is_text[c] = is_date_name(t.names[c]);
  bool first_row = true;
  for (++i; i < lines.size(); ++i) {
    if (text::trim(lines[i]).empty()) continue;
    auto where = [&] { return "read_csv_table: " + path + " line " + std::to_string(i + 1) + ": "; };
    if (!split_csv(lines[i], f)) fail(where(), "unterminated quote");
    if (f.size() != ncol) fail(where(), "expected ", ncol, " fields (as the header), found ", f.size());
    for (size_t c = 0; c < ncol; ++c) {
      if (first_row && !t.is_text[c]) {
        double v = 0;
        if (!is_csv_missing(f[c]) && !text::parse_number(f[c], v)) t.is_text[c] = true;  // a date or a name
      }
      if (t.is_text[c]) continue;
      double v = 0;
      if (is_csv_missing(f[c])) t.values[c].push_back(std::numeric_limits<float>::quiet_NaN());
      else if (text::parse_number(f[c], v)) t.values[c].push_back(float(v));
      else fail(where(), "column '", t.names[c], "' holds ", text::quote(f[c]), ", not a finite number");
    }
    first_row = false;
    ++t.rows;
  }
  if (t.rows == 0) fail("read_csv_table: ", path, " has a header but no data rows");
  for (size_t c = 0; c < ncol; ++c) {
    if (t.is_text[c]) continue;
    if (!text::fill_missing(t.values[c].data(), t.rows, options.missing))
      fail("read_csv_table: ", path, ": column '", t.names[c], "' ",
           options.missing == Missing::fail ? "has missing values and the missing-value policy is fail"
                                            : "has no values at all");
  }
  return t;
}

NamedTensors ForecastData::stats_tensors(const std::string& prefix) const {
  auto vec = [](const std::vector<double>& v) {
    std::vector<float> f(v.begin(), v.end());
    return from_vector<float>(f, {int64_t(f.size())});
  };
  return {{prefix + "input_mean", vec(input_stats.mean)},
          {prefix + "input_std", vec(input_stats.std)},
          {prefix + "target_mean", vec(target_stats.mean)},
          {prefix + "target_std", vec(target_stats.std)}};
}

void load_stats(const std::map<std::string, Tensor>& tensors, ChannelStats& input, ChannelStats& target,
                const std::string& prefix) {
  auto get = [&](const std::string& name) {
    auto it = tensors.find(prefix + name);
    if (it == tensors.end()) fail("load_stats: expected the tensor ", prefix + name, ", found none");
    const Tensor& t = it->second;
    if (t.dim() != 1 || t.size(0) < 1)
      fail("load_stats: expected ", prefix + name, " to be [n] with n >= 1, found ", shape_str(t.shape()));
    return t.to_vector<double>();
  };
  auto pair = [&](const std::string& what, ChannelStats& st) {
    st.mean = get(what + "_mean");
    st.std = get(what + "_std");
    if (st.mean.size() != st.std.size())
      fail("load_stats: ", prefix, what, "_mean has ", st.mean.size(), " values but ", prefix, what, "_std has ",
           st.std.size());
    for (size_t i = 0; i < st.std.size(); ++i)
      if (!(st.std[i] > 0.0) || !std::isfinite(st.std[i]) || !std::isfinite(st.mean[i]))
        fail("load_stats: ", prefix, what, " channel ", i, " has mean ", st.mean[i], " and std ", st.std[i],
             "; expected a finite mean and a finite std > 0");
  };
  pair("input", input);
  pair("target", target);
}

ForecastData make_forecast(const CsvTable& table, const ForecastOptions& o) {
  const std::string op = "make_forecast: " + table.path;
  if (o.targets.empty()) fail(op, ": expected at least one target column, found none");
  if (o.window < 1 || o.horizon < 1 || o.stride < 1)
    fail(op, ": expected window, horizon and stride >= 1, found ", o.window, ", ", o.horizon, ", ", o.stride);
  if (!(o.val_fraction >= 0 && o.test_fraction >= 0 && o.val_fraction + o.test_fraction < 1))
    fail(op, ": expected val and test fractions >= 0 with a sum below 1, found ", o.val_fraction, " and ",
         o.test_fraction);
  ForecastData out;
  out.target_columns = o.targets;
  out.input_columns = o.inputs.empty() ? o.targets : o.inputs;
  auto resolve = [&](const std::vector<std::string>& names) {
    std::vector<size_t> idx;
    for (const auto& n : names) {
      const int64_t c = table.column(n);
      if (c < 0) {
        std::string have;
        for (size_t k = 0; k < table.names.size(); ++k) have += (k ? ", " : "") + table.names[k];
        fail(op, ": has no column '", n, "' (columns: ", have, ")");
      }
      if (table.is_text[size_t(c)]) fail(op, ": column '", n, "' is a date/text column, not a numeric one");
      for (size_t k : idx)
        if (k == size_t(c)) fail(op, ": column '", n, "' is named twice");
      idx.push_back(size_t(c));
    }
    return idx;
  };
  const auto in_cols = resolve(out.input_columns), tg_cols = resolve(out.target_columns);
  const int64_t R = table.rows, W = o.window, H = o.horizon;
  out.test_rows = int64_t(std::llround(o.test_fraction * double(R)));
  out.val_rows = int64_t(std::llround(o.val_fraction * double(R)));
  out.train_rows = R - out.val_rows - out.test_rows;
  if (out.train_rows < W + H)
    fail(op, ": the training part has ", out.train_rows, " of ", R, " rows, fewer than window + horizon = ", W + H,
         "; use a shorter window or smaller val/test fractions");
  // Statistics over the training rows only.
  auto fit = [&](const std::vector<size_t>& cols) {
    ChannelStats st;
    for (size_t c : cols) {
      Tensor x = from_vector<float>(std::vector<float>(table.values[c].begin(), table.values[c].begin() + out.train_rows),
                                    {1, out.train_rows});
      const ChannelStats one = o.normalize ? ChannelStats::fit({x}) : ChannelStats{{0.0}, {1.0}};
      st.mean.push_back(one.mean[0]);
      st.std.push_back(one.std[0]);
    }
    return st;
  };
  out.input_stats = fit(in_cols);
  out.target_stats = fit(tg_cols);
  auto cut = [&](int64_t a, int64_t b, SeriesSet& set, const char* part) {
    set.name = table.path + " (" + part + ")";
    if (b <= a) return;
    for (int64_t s = std::max<int64_t>(0, a - W); s + W + H <= b; s += o.stride) {
      Tensor x = empty({int64_t(in_cols.size()), W}, DType::f32);
      Tensor y = empty({int64_t(tg_cols.size()), H}, DType::f32);
      for (size_t c = 0; c < in_cols.size(); ++c)
        for (int64_t t = 0; t < W; ++t)
          x.data<float>()[int64_t(c) * W + t] = float(
              (table.values[in_cols[c]][size_t(s + t)] - out.input_stats.mean[c]) / out.input_stats.std[c]);
      for (size_t k = 0; k < tg_cols.size(); ++k)
        for (int64_t t = 0; t < H; ++t)
          y.data<float>()[int64_t(k) * H + t] = float(
              (table.values[tg_cols[k]][size_t(s + W + t)] - out.target_stats.mean[k]) / out.target_stats.std[k]);
      set.series.push_back(x);
      set.targets.push_back(y);
      set.labels.push_back(0);
    }
    if (set.series.empty())
      fail(op, ": the ", part, " part (rows ", a + 1, " to ", b, ") is too short for one window of ", W,
           " input and ", H, " target rows");
  };
  cut(0, out.train_rows, out.train, "train");
  cut(out.train_rows, out.train_rows + out.val_rows, out.val, "val");
  cut(out.train_rows + out.val_rows, R, out.test, "test");
  return out;
}

ForecastData read_csv_forecast(const std::string& path, const ForecastOptions& options,
                               const SeriesReadOptions& read) {
  return make_forecast(read_csv_table(path, read), options);
}

}  // namespace finch::data
