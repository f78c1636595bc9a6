// The series-file dispatcher and the train/test consistency check.
#include "data/series_file.h"

#include <filesystem>

#include "data/ts_file.h"
#include "data/ucr_text.h"

namespace finch::data {

SeriesSet read_series_file(const std::string& path, const SeriesReadOptions& options) {
  const std::string ext = text::lower(std::filesystem::path(path).extension().string());
  if (ext == ".ts") return read_ts(path, options);
  if (ext == ".txt" || ext == ".tsv") return read_ucr_text(path, options);
  if (ext == ".csv")
    fail("read_series_file: ", path, " is a CSV file: forecasting data needs a target column and a window "
         "(read_csv_forecast, or --target and --window)");
  fail("read_series_file: ", path, ": expected a .ts, .txt or .tsv file, found the extension '", ext, "'");
}

void check_same_problem(const SeriesSet& train, const SeriesSet& test) {
  if (train.channels() != test.channels())
    fail("check_same_problem: ", test.name, " has ", test.channels(), " channels but ", train.name, " has ",
         train.channels());
  if (train.classes != test.classes) {
    auto list = [](const std::vector<std::string>& v) {
      std::string s;
      for (size_t i = 0; i < v.size(); ++i) s += (i ? " " : "") + v[i];
      return s;
    };
    fail("check_same_problem: ", test.name, " has the classes [", list(test.classes), "] but ", train.name,
         " has [", list(train.classes), "]; a test set must use the training set's classes in the same order");
  }
  if (train.is_regression() != test.is_regression())
    fail("check_same_problem: ", train.is_regression() ? train.name : test.name, " is regression data but ",
         train.is_regression() ? test.name : train.name, " is not");
}

}  // namespace finch::data
