// The .ts reader: univariate, multivariate, variable-length, missing values, regression, and
// every bad-file case's sentence (file, line, what is wrong).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "data/ts_file.h"
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

std::vector<float> values(const Tensor& t) { return t.to_vector<float>(); }

const char* kUni =
    "# a comment\n"
    "@problemName Tiny\n"
    "@timeStamps false\n"
    "@missing false\n"
    "@univariate true\n"
    "@equalLength true\n"
    "@seriesLength 3\n"
    "@classLabel true b a c\n"
    "@data\n"
    "1,2,3:a\n"
    "\n"
    "4.5,-5e-1,6:c\r\n"
    "7,8,9:b\n";

}  // namespace

TEST(TsFile, Univariate) {
  TempDir dir("ts");
  TsHeader h;
  const SeriesSet s = read_ts(write(dir, "u.ts", kUni), {}, &h);
  EXPECT_EQ(s.name, "Tiny");
  ASSERT_EQ(s.size(), 3);
  EXPECT_EQ(s.series[0].shape(), (Shape{1, 3}));
  EXPECT_EQ(values(s.series[1]), (std::vector<float>{4.5f, -0.5f, 6.f}));
  // Labels are indices in the header's order, not sorted.
  EXPECT_EQ(s.classes, (std::vector<std::string>{"b", "a", "c"}));
  EXPECT_EQ(s.labels, (std::vector<int64_t>{1, 2, 0}));
  EXPECT_FALSE(s.is_regression());
  EXPECT_TRUE(h.equal_length);
  EXPECT_EQ(h.series_length, 3);
  EXPECT_EQ(h.dimensions, 1);
  EXPECT_EQ(s.stacked().shape(), (Shape{3, 1, 3}));
}

TEST(TsFile, MultivariateVariableLength) {
  TempDir dir("ts");
  const std::string p = write(dir, "m.ts",
                              "@PROBLEMNAME M\n@univariate false\n@dimensions 2\n@equalLength false\n"
                              "@classLabel true x y\n@data\n"
                              "1,2,3:10,20,30:y\n"
                              "4,5:40,50:x\n");
  const SeriesSet s = read_ts(p);
  ASSERT_EQ(s.size(), 2);
  EXPECT_EQ(s.series[0].shape(), (Shape{2, 3}));
  EXPECT_EQ(s.series[1].shape(), (Shape{2, 2}));
  EXPECT_EQ(values(s.series[0]), (std::vector<float>{1, 2, 3, 10, 20, 30}));
  EXPECT_EQ(values(s.series[1]), (std::vector<float>{4, 5, 40, 50}));
  EXPECT_EQ(s.labels, (std::vector<int64_t>{1, 0}));
  EXPECT_FALSE(s.equal_length());
  EXPECT_EQ(s.min_length(), 2);
  EXPECT_EQ(s.max_length(), 3);
  EXPECT_ERROR_HAS(s.stacked(), "lengths 2 to 3");
  // Without @dimensions, the first series decides the count.
  const SeriesSet d = read_ts(write(dir, "d.ts", "@univariate false\n@classLabel true x\n@data\n1:2:3:x\n4:5:6:x\n"));
  EXPECT_EQ(d.series[0].shape(), (Shape{3, 1}));
}

TEST(TsFile, MissingValuesByPolicy) {
  TempDir dir("ts");
  const std::string p = write(dir, "miss.ts",
                              "@missing true\n@univariate false\n@dimensions 2\n@classLabel true 1\n@data\n"
                              "?,2,?,?,8,?:NaN,1,1,1,1,1:1\n");
  // Default: interpolate inside gaps, extend the nearest value at the ends.
  const SeriesSet a = read_ts(p);
  EXPECT_EQ(values(a.series[0]), (std::vector<float>{2, 2, 4, 6, 8, 8, 1, 1, 1, 1, 1, 1}));
  const SeriesSet z = read_ts(p, {Missing::zero});
  EXPECT_EQ(values(z.series[0]), (std::vector<float>{0, 2, 0, 0, 8, 0, 0, 1, 1, 1, 1, 1}));
  EXPECT_ERROR_HAS(read_ts(p, {Missing::fail}), "line 6: dimension 1 has missing values and the missing-value policy is fail");
  const std::string all = write(dir, "all.ts", "@classLabel true 1\n@data\n?,?:1\n");
  EXPECT_ERROR_HAS(read_ts(all), "all.ts line 3: dimension 1 has only missing values");
  // @missing false and a '?' disagree.
  const std::string lie = write(dir, "lie.ts", "@missing false\n@classLabel true 1\n@data\n1,2:1\n1,?:1\n");
  EXPECT_ERROR_HAS(read_ts(lie), "lie.ts line 5: missing value '?' at dimension 1, value 2 but the header says @missing false");
  EXPECT_EQ(missing_from_name("zero"), Missing::zero);
  EXPECT_ERROR_HAS(missing_from_name("mean"), "expected interpolate, zero or fail, found 'mean'");
}

TEST(TsFile, Regression) {
  TempDir dir("ts");
  const SeriesSet s = read_ts(write(dir, "r.ts", "@problemName R\n@classLabel false\n@targetLabel true\n@data\n"
                                                  "1,2:0.25\n3,4:-7\n"));
  ASSERT_TRUE(s.is_regression());
  ASSERT_EQ(s.targets.size(), 2u);
  EXPECT_EQ(s.targets[0].shape(), (Shape{1}));
  EXPECT_FLOAT_EQ(s.targets[0].item(), 0.25f);
  EXPECT_FLOAT_EQ(s.targets[1].item(), -7.f);
  EXPECT_TRUE(s.classes.empty());
  EXPECT_ERROR_HAS(read_ts(write(dir, "r2.ts", "@targetLabel true\n@data\n1,2:high\n")),
                   "r2.ts line 3: the regression target 'high' is not a finite number");
  // Unlabelled data (@classLabel false) reads as series with no classes.
  const SeriesSet u = read_ts(write(dir, "u.ts", "@classLabel false\n@data\n1,2\n3,4,5\n"));
  EXPECT_EQ(u.size(), 2);
  EXPECT_EQ(u.series[1].shape(), (Shape{1, 3}));
}

TEST(TsFile, BadFilesNameFileLineAndProblem) {
  TempDir dir("ts");
  auto err = [&](const std::string& body) {
    return finch::test::error_of([&] { read_ts(write(dir, "bad.ts", body)); });
  };
  auto has = [](const std::string& msg, const std::string& want) {
    EXPECT_NE(msg.find(want), std::string::npos) << "message: " << msg;
    EXPECT_NE(msg.find("bad.ts"), std::string::npos) << "message: " << msg;
  };
  has(err("@problemName X\n@classLabel true a\n1,2:a\n"), "line 3: expected a @tag or a # comment before @data, found '1,2:a'");
  has(err("@problemName X\n@classLabel true a\n"), "has no @data line");
  has(err("@univariate false\n@dimensions 2\n@classLabel true a\n@data\n1,2:3,4:a\n1,2:a\n"),
      "line 6: the series has 1 dimensions but @dimensions says 2");
  has(err("@univariate false\n@classLabel true a\n@data\n1:2:a\n1:2:3:a\n"),
      "line 5: the series has 3 dimensions but the first series has 2");
  has(err("@univariate true\n@classLabel true a\n@data\n1:2:a\n"), "line 4: the series has 2 dimensions but @univariate true means 1");
  has(err("@classLabel true a b\n@data\n1,2:a\n1,2:c\n"), "line 4: label 'c' is not one of the @classLabel labels (a b)");
  has(err("@classLabel true a\n@data\n1,x2:a\n"), "line 3: value 2 of dimension 1 is 'x2', not a finite number");
  has(err("@classLabel true a\n@data\n1,,2:a\n"), "line 3: value 2 of dimension 1 is '', not a finite number");
  has(err("@classLabel true a\n@data\n1,1e999:a\n"), "value 2 of dimension 1 is '1e999'");
  has(err("@equalLength true\n@seriesLength 3\n@classLabel true a\n@data\n1,2,3:a\n1,2:a\n"),
      "line 6: the series has 2 values but @seriesLength is 3 and @equalLength is true");
  has(err("@equalLength true\n@classLabel true a\n@data\n1,2,3:a\n1,2:a\n"),
      "line 5: the series has 2 values but the first series has 3 and @equalLength is true");
  has(err("@univariate false\n@classLabel true a\n@data\n1,2:3:a\n"),
      "line 4: dimension 2 has 1 values but dimension 1 has 2");
  has(err("@timeStamps true\n@data\n"), "line 1: @timeStamps true (series of (time,value) pairs) is not supported");
  has(err("@classLabel true a\n@data\n(0,1),(1,2):a\n"), "line 3: found a (time,value) pair");
  has(err("@dimensions 0\n@data\n"), "line 1: @dimensions must be a whole number in [1, 1048576], found '0'");
  has(err("@dimensions 99999999999999999999\n@data\n"), "@dimensions must be a whole number");
  has(err("@seriesLength -4\n@data\n"), "line 1: @seriesLength must be a whole number >= 1, found '-4'");
  has(err("@univariate maybe\n@data\n"), "line 1: @univariate must be true or false, found 'maybe'");
  has(err("@classLabel true a a\n@data\n"), "line 1: @classLabel lists the label 'a' twice");
  has(err("@classLabel true\n@data\n"), "line 1: @classLabel true lists no labels");
  has(err("@classLabel true a\n@classLabel true b\n@data\n"), "line 2: @classlabel appears twice (first on line 1)");
  has(err("@colour red\n@data\n"), "line 1: unknown header tag @colour");
  has(err("@classLabel true a\n@data\n1,2:a\n@missing true\n"), "line 4: header tag '@missing true' after @data");
  has(err("@classLabel true a\n@data\n1,2\n"), "line 3: expected the series followed by ':' and its label, found no ':'");
  has(err("@classLabel true a\n@targetLabel true\n@data\n"), "has both @classLabel true and @targetLabel true");
  has(err("@univariate true\n@dimensions 3\n@data\n"), "says @univariate true but @dimensions 3");
  has(err("@classLabel true a\n@data\n\n# only a comment\n"), "has no series after @data");
  EXPECT_ERROR_HAS(read_ts((dir / "absent.ts")), "read_ts: cannot open");
}

// The real UCR/UEA files, when this machine has them (CI does not).
TEST(TsFile, RealArchiveFileWhenPresent) {
  const std::string p = "/work/shared/data/timeseries/BasicMotions_TRAIN.ts";
  if (!std::filesystem::exists(p)) GTEST_SKIP() << p << " is not on this machine";
  TsHeader h;
  const SeriesSet s = read_ts(p, {}, &h);
  EXPECT_EQ(s.size(), 40);
  EXPECT_EQ(s.series[0].shape(), (Shape{6, 100}));
  EXPECT_EQ(s.classes, (std::vector<std::string>{"Standing", "Running", "Walking", "Badminton"}));
  EXPECT_EQ(h.problem_name, "BasicMotions");
}
