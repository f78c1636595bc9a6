// CSV time series for forecasting (monthly-sunspots.csv, AirPassengers.csv, ETTh1.csv): a header
// row, one row per time step, optional date/text columns, numeric columns cut into sliding
// windows with a chronological train/val/test split and z-score normalization fitted on the
// training part only.
//
// Shapes: R rows (time steps), W window (input steps), H horizon (predicted steps), C input
// columns, K target columns. A window sample is image F32 [C, W] (rows s … s+W-1) and target
// F32 [K, H] (rows s+W … s+W+H-1).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "data/series_dataset.h"
#include "data/series_text.h"
#include "framework/safetensors.h"

namespace finch::data {

// A parsed CSV file. A column is text (a date or a name: skipped for modelling) when its header
// is date/time/datetime/timestamp/month/day/year (any case) or its first value is not a number;
// every other column must hold numbers in every row (empty, NaN or NA are missing values, filled
// by options.missing). Fields may be double-quoted ("1749-01").
struct CsvTable {
  std::vector<std::string> names;     // every column, in file order
  std::vector<bool> is_text;          // per column
  std::vector<std::vector<float>> values;  // per column (empty for text columns), R each
  int64_t rows = 0;
  std::string path;
  int64_t column(const std::string& name) const;  // index, or -1
};
CsvTable read_csv_table(const std::string& path, const SeriesReadOptions& options = {});

struct ForecastOptions {
  std::vector<std::string> targets;  // K >= 1 column names (--target)
  std::vector<std::string> inputs;   // C column names; empty: the targets themselves
  int64_t window = 24, horizon = 1, stride = 1;
  // Rows split in time order: the first 1 - val - test of them train, then val, then test.
  double val_fraction = 0.1, test_fraction = 0.2;
  bool normalize = true;
};

// The windows of each part, and the normalization that made them. A window belongs to the part
// that holds all of its H target rows; its W input rows may reach back into the part before
// (known history at forecast time, as the ETT benchmarks cut val and test). Train windows use
// train rows only, so nothing of val/test reaches training or the statistics. Windows start
// every `stride` rows from the part's first usable start.
struct ForecastData {
  SeriesSet train, val, test;  // regression sets; val/test empty when their fraction is 0
  std::vector<std::string> input_columns, target_columns;
  // Fitted on the training rows only (every train row, not per window); mean 0 / std 1 when
  // normalize is off. Apply to new inputs; invert() maps model outputs back to data units.
  ChannelStats input_stats, target_stats;
  int64_t train_rows = 0, val_rows = 0, test_rows = 0;
  // The statistics as tensors to save beside the model ("<prefix>input_mean", "…input_std",
  // "…target_mean", "…target_std", F32 [C] / [K]); load_stats reverses it.
  NamedTensors stats_tensors(const std::string& prefix = "normalization.") const;
};
ForecastData make_forecast(const CsvTable& table, const ForecastOptions& options);
ForecastData read_csv_forecast(const std::string& path, const ForecastOptions& options,
                               const SeriesReadOptions& read = {});
// The input and target statistics saved by stats_tensors (throws naming the missing tensor or a
// shape/positivity problem).
void load_stats(const std::map<std::string, Tensor>& tensors, ChannelStats& input, ChannelStats& target,
                const std::string& prefix = "normalization.");

}  // namespace finch::data
