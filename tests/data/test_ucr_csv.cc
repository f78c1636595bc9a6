// UCR text files (both separators, numeric label order, NaN padding) and CSV forecasting windows
// (split, stride, normalization fitted on the training rows only — numbers checked by hand).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "data/csv_series.h"
#include "data/series_file.h"
#include "data/ucr_text.h"
#include "tests/error_text.h"
#include "tests/temp_dir.h"

using namespace finch;
using namespace finch::data;
using finch::test::TempDir;

namespace {

std::string write(const TempDir& dir, const std::string& name, const std::string& body) {
  const std::string p = dir / name;
  std::ofstream(p) << body;
  return p;
}

}  // namespace

TEST(UcrText, WhitespaceAndCommaSeparatedGiveTheSameSet) {
  TempDir dir("ucr");
  const std::string ws = write(dir, "A_TRAIN.txt",
                               "  2.0000000e+00\t1.5e+00  2\t3\n"
                               "-1 4 5 6\n"
                               "1.0000000e+00 7 8 9\n"
                               "\n"
                               "2 1 1 1\n");
  const std::string cs = write(dir, "A_TRAIN.csv", "2,1.5,2,3\n-1,4,5,6\n1,7,8,9\n2,1,1,1\n");
  for (const std::string& p : {ws, cs}) {
    const SeriesSet s = read_ucr_text(p);
    ASSERT_EQ(s.size(), 4) << p;
    // Numeric labels: classes sorted by value, named by their shortest spelling.
    EXPECT_EQ(s.classes, (std::vector<std::string>{"-1", "1", "2"})) << p;
    EXPECT_EQ(s.labels, (std::vector<int64_t>{2, 0, 1, 2})) << p;
    EXPECT_EQ(s.series[0].shape(), (Shape{1, 3}));
    EXPECT_EQ(s.series[0].to_vector<float>(), (std::vector<float>{1.5f, 2, 3}));
  }
}

TEST(UcrText, StringLabelsNaNPaddingAndMissing) {
  TempDir dir("ucr");
  // Trailing NaNs are variable-length padding (cut); inner NaNs follow the policy.
  const std::string p = write(dir, "v.tsv", "b 1 NaN 3 NaN NaN\na 5 6\n");
  const SeriesSet s = read_ucr_text(p);
  EXPECT_EQ(s.classes, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(s.labels, (std::vector<int64_t>{1, 0}));
  EXPECT_EQ(s.series[0].to_vector<float>(), (std::vector<float>{1, 2, 3}));
  EXPECT_EQ(s.series[1].shape(), (Shape{1, 2}));
  EXPECT_EQ(read_ucr_text(p, {Missing::zero}).series[0].to_vector<float>(), (std::vector<float>{1, 0, 3}));
  EXPECT_ERROR_HAS(read_ucr_text(p, {Missing::fail}), "v.tsv line 1: the series has missing values and the missing-value policy is fail");
  EXPECT_ERROR_HAS(read_ucr_text(write(dir, "b1.txt", "1 2 3\n1 2 x\n")), "b1.txt line 2: value 2 is 'x', not a finite number");
  EXPECT_ERROR_HAS(read_ucr_text(write(dir, "b2.txt", "1 2 3\n\n7\n")), "b2.txt line 3: expected a label followed by at least one value");
  EXPECT_ERROR_HAS(read_ucr_text(write(dir, "b3.txt", "1 NaN NaN\n")), "b3.txt line 1: the series has no values (all 2 are missing)");
  EXPECT_ERROR_HAS(read_ucr_text(write(dir, "b4.txt", "NaN 1 2\n")), "b4.txt line 1: the label (first field) is missing");
  EXPECT_ERROR_HAS(read_ucr_text(write(dir, "b5.txt", "\n\n")), "b5.txt has no series");
}

TEST(UcrText, RealFileWhenPresent) {
  const std::string p = "/work/shared/data/timeseries/ECG5000_TRAIN.txt";
  if (!std::filesystem::exists(p)) GTEST_SKIP() << p << " is not on this machine";
  const SeriesSet s = read_ucr_text(p);
  EXPECT_EQ(s.size(), 500);
  EXPECT_EQ(s.series[0].shape(), (Shape{1, 140}));
  EXPECT_EQ(s.classes, (std::vector<std::string>{"1", "2", "3", "4", "5"}));
}

namespace {

// Ten rows: a = 1 … 10, b = 2a, a quoted date column.
std::string ten_rows(const TempDir& dir) {
  std::string body = "\"Month\",a,\"b\"\n";
  for (int i = 1; i <= 10; ++i) body += "\"2000-" + std::to_string(i) + "\"," + std::to_string(i) + "," + std::to_string(2 * i) + "\n";
  return write(dir, "ten.csv", body);
}

}  // namespace

TEST(CsvSeries, TableRecognizesDateColumns) {
  TempDir dir("csv");
  const CsvTable t = read_csv_table(ten_rows(dir));
  EXPECT_EQ(t.rows, 10);
  EXPECT_EQ(t.names, (std::vector<std::string>{"Month", "a", "b"}));
  EXPECT_EQ(t.is_text, (std::vector<bool>{true, false, false}));
  EXPECT_EQ(t.values[2][9], 20.f);
  // A column named otherwise but holding dates is text too.
  const CsvTable u = read_csv_table(write(dir, "u.csv", "when,x\n2001-01-01 00:00:00,1\n2001-01-01 01:00:00,NA\n"
                                                         "2001-01-01 02:00:00,3\n"));
  EXPECT_EQ(u.is_text, (std::vector<bool>{true, false}));
  EXPECT_EQ(u.values[1], (std::vector<float>{1, 2, 3}));  // NA interpolated
}

TEST(CsvSeries, WindowsSplitAndNormalizationFittedOnTrainOnly) {
  TempDir dir("csv");
  ForecastOptions o;
  o.targets = {"a"};
  o.inputs = {"a", "b"};
  o.window = 3;
  o.horizon = 2;
  o.val_fraction = 0.2;
  o.test_fraction = 0.2;
  const ForecastData f = read_csv_forecast(ten_rows(dir), o);
  EXPECT_EQ(f.train_rows, 6);
  EXPECT_EQ(f.val_rows, 2);
  EXPECT_EQ(f.test_rows, 2);
  // Train rows a = 1 … 6: mean 3.5, population std sqrt(17.5 / 6); b is twice that.
  const double sd = std::sqrt(17.5 / 6.0);
  ASSERT_EQ(f.input_stats.mean.size(), 2u);
  EXPECT_DOUBLE_EQ(f.input_stats.mean[0], 3.5);
  EXPECT_NEAR(f.input_stats.std[0], sd, 1e-12);
  EXPECT_DOUBLE_EQ(f.input_stats.mean[1], 7.0);
  EXPECT_NEAR(f.input_stats.std[1], 2 * sd, 1e-12);
  EXPECT_DOUBLE_EQ(f.target_stats.mean[0], 3.5);
  // Train: windows whose targets lie in rows 1 … 6: starts 0 and 1.
  ASSERT_EQ(f.train.size(), 2);
  EXPECT_EQ(f.train.series[0].shape(), (Shape{2, 3}));
  EXPECT_EQ(f.train.targets[0].shape(), (Shape{1, 2}));
  auto z = [&](double v) { return float((v - 3.5) / sd); };
  const auto x0 = f.train.series[0].to_vector<float>();
  EXPECT_FLOAT_EQ(x0[0], z(1));
  EXPECT_FLOAT_EQ(x0[2], z(3));
  EXPECT_FLOAT_EQ(x0[3], float((2 - 7.0) / (2 * sd)));
  EXPECT_EQ(f.train.targets[0].to_vector<float>(), (std::vector<float>{z(4), z(5)}));
  EXPECT_EQ(f.train.targets[1].to_vector<float>(), (std::vector<float>{z(5), z(6)}));
  // Val: targets rows 7, 8; inputs reach back into train (rows 4 … 6).
  ASSERT_EQ(f.val.size(), 1);
  EXPECT_EQ(f.val.series[0].to_vector<float>()[0], z(4));
  EXPECT_EQ(f.val.targets[0].to_vector<float>(), (std::vector<float>{z(7), z(8)}));
  ASSERT_EQ(f.test.size(), 1);
  EXPECT_EQ(f.test.targets[0].to_vector<float>(), (std::vector<float>{z(9), z(10)}));
  // invert() maps a prediction back to data units.
  EXPECT_NEAR(f.target_stats.invert(f.test.targets[0]).to_vector<float>()[1], 10.f, 1e-5);
  // The statistics survive a save/load through tensors.
  std::map<std::string, Tensor> saved;
  for (auto& [k, v] : f.stats_tensors()) saved[k] = v;
  ChannelStats in, tg;
  load_stats(saved, in, tg);
  EXPECT_NEAR(in.std[1], 2 * sd, 1e-6);
  EXPECT_NEAR(tg.mean[0], 3.5, 1e-6);
  saved.erase("normalization.target_std");
  EXPECT_ERROR_HAS(load_stats(saved, in, tg), "expected the tensor normalization.target_std, found none");
  saved["normalization.target_std"] = from_vector<float>({0.f}, {1});
  EXPECT_ERROR_HAS(load_stats(saved, in, tg), "expected a finite mean and a finite std > 0");
}

TEST(CsvSeries, StrideNoNormalizationAndDefaults) {
  TempDir dir("csv");
  ForecastOptions o;
  o.targets = {"b"};
  o.window = 2;
  o.horizon = 1;
  o.stride = 3;
  o.val_fraction = 0;
  o.test_fraction = 0.3;
  o.normalize = false;
  const ForecastData f = read_csv_forecast(ten_rows(dir), o);
  EXPECT_EQ(f.input_columns, (std::vector<std::string>{"b"}));  // inputs default to the targets
  EXPECT_EQ(f.train_rows, 7);
  EXPECT_EQ(f.val.size(), 0);
  // Train starts 0, 3 (3 + 3 = 6 rows ≤ 7); test targets in rows 8 … 10: starts 5, 8 → only 5 fits.
  ASSERT_EQ(f.train.size(), 2);
  EXPECT_EQ(f.train.series[1].to_vector<float>(), (std::vector<float>{8, 10}));
  EXPECT_EQ(f.train.targets[1].to_vector<float>(), (std::vector<float>{12}));
  ASSERT_EQ(f.test.size(), 1);
  EXPECT_EQ(f.test.targets[0].to_vector<float>(), (std::vector<float>{16}));
}

TEST(CsvSeries, BadFilesAndOptions) {
  TempDir dir("csv");
  const std::string p = ten_rows(dir);
  ForecastOptions o;
  o.targets = {"c"};
  EXPECT_ERROR_HAS(read_csv_forecast(p, o), "has no column 'c' (columns: Month, a, b)");
  o.targets = {"Month"};
  EXPECT_ERROR_HAS(read_csv_forecast(p, o), "column 'Month' is a date/text column");
  o.targets = {"a"};
  o.window = 9;
  EXPECT_ERROR_HAS(read_csv_forecast(p, o), "the training part has 7 of 10 rows, fewer than window + horizon = 10");
  o.window = 0;
  EXPECT_ERROR_HAS(read_csv_forecast(p, o), "expected window, horizon and stride >= 1, found 0, 1, 1");
  o.window = 2;
  o.val_fraction = 0.5;
  o.test_fraction = 0.5;
  EXPECT_ERROR_HAS(read_csv_forecast(p, o), "expected val and test fractions >= 0 with a sum below 1");
  o.val_fraction = 0.05;  // 0.5 rows → 1 row, too short for a horizon of 2
  o.test_fraction = 0.1;
  o.horizon = 2;
  EXPECT_ERROR_HAS(read_csv_forecast(p, o), "the val part (rows 9 to 9) is too short for one window");
  o.targets = {};
  EXPECT_ERROR_HAS(read_csv_forecast(p, o), "expected at least one target column");
  EXPECT_ERROR_HAS(read_csv_table(write(dir, "f.csv", "a,b\n1,2\n3\n")), "f.csv line 3: expected 2 fields (as the header), found 1");
  EXPECT_ERROR_HAS(read_csv_table(write(dir, "g.csv", "a,b\n1,2\n3,x\n")), "g.csv line 3: column 'b' holds 'x', not a finite number");
  EXPECT_ERROR_HAS(read_csv_table(write(dir, "h.csv", "a,a\n1,2\n")), "h.csv line 1: the column name 'a' appears twice");
  EXPECT_ERROR_HAS(read_csv_table(write(dir, "i.csv", "a\n")), "i.csv has a header but no data rows");
  EXPECT_ERROR_HAS(read_csv_table(write(dir, "j.csv", "a,\"b\n1,2\n")), "j.csv line 1: unterminated quote");
  EXPECT_ERROR_HAS(read_csv_table(write(dir, "k.csv", "a,b\n1,\n2,\n"), {Missing::interpolate}), "column 'b' has no values at all");
  EXPECT_ERROR_HAS(read_csv_table(write(dir, "l.csv", "a,b\n1,\n2,3\n"), {Missing::fail}), "column 'b' has missing values");
}

TEST(SeriesFile, ChoosesTheReaderByExtensionAndChecksTrainTestAgreement) {
  TempDir dir("sf");
  const SeriesSet a = read_series_file(write(dir, "a.ts", "@problemName A\n@classLabel true x y\n@data\n1,2:x\n3,4:y\n"));
  const SeriesSet b = read_series_file(write(dir, "b.tsv", "1 1 2\n2 3 4\n"));
  EXPECT_EQ(a.classes, (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(b.classes, (std::vector<std::string>{"1", "2"}));
  EXPECT_ERROR_HAS(read_series_file(write(dir, "c.csv", "a\n1\n")), "c.csv is a CSV file");
  EXPECT_ERROR_HAS(read_series_file(write(dir, "d.arff", "")), "expected a .ts, .txt or .tsv file, found the extension '.arff'");
  EXPECT_ERROR_HAS(check_same_problem(a, b), "has the classes [1 2] but A has [x y]");
  check_same_problem(a, a);
  const SeriesSet m = read_series_file(write(dir, "m.ts", "@univariate false\n@classLabel true x y\n@data\n1:2:x\n"));
  EXPECT_ERROR_HAS(check_same_problem(a, m), "has 2 channels but A has 1");
}
