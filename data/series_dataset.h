// Sequence datasets: labelled time series (F32 [C, T_i]) and token sequences (I64 [T_i]) held in
// memory, for the DataLoader (which pads a batch of different lengths, data/dataloader.h).
//
// Shapes: N series, C channels, T_i steps of series i (may differ between series), K target
// values of a regression sample.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace finch::data {

// What every series reader returns (data/ts_file.h, data/ucr_text.h, data/csv_series.h).
// Classification: labels[i] is the class index into `classes`; targets empty.
// Regression/forecasting: targets[i] is F32 (a .ts regression value is [1]; a forecasting
// window's future is [K, H]); labels are all 0 and `classes` is empty. Unlabelled data (a .ts
// file with `@classLabel false`) has neither: labels all 0, no classes, no targets.
struct SeriesSet {
  std::vector<Tensor> series;  // F32 [C, T_i], contiguous
  std::vector<int64_t> labels;
  std::vector<Tensor> targets;
  std::vector<std::string> classes;
  std::string name;  // the problem's name (.ts @problemName, or the file name)

  int64_t size() const { return int64_t(series.size()); }
  bool is_regression() const { return !targets.empty(); }
  int64_t channels() const { return series.empty() ? 0 : series[0].size(0); }
  int64_t min_length() const;
  int64_t max_length() const;
  bool equal_length() const { return min_length() == max_length(); }
  // The series as one F32 [N, C, T] tensor; throws unless every series has the same length.
  Tensor stacked() const;
};

// Throws naming `what` when `set` is inconsistent: a series that is not F32 [C, T] with T >= 1,
// different channel counts, a label outside [0, classes), or a labels/targets count that does
// not match the series count.
void check_series_set(const SeriesSet& set, const std::string& what);

// The series of a SeriesSet as a Dataset: get(i) gives image = series[i] (F32 [C, T_i]),
// label = labels[i], target = targets[i] (undefined for classification). stratified_split
// (data/dataset.h) works on it through label().
class SeriesDataset : public Dataset {
 public:
  explicit SeriesDataset(SeriesSet set, Transform transform = nullptr);
  int64_t size() const override { return set_.size(); }
  Sample get(int64_t index, Generator& gen) const override;
  int64_t label(int64_t index) const override;
  const SeriesSet& set() const { return set_; }

 private:
  SeriesSet set_;
  Transform transform_;
};

// Per-channel z-score statistics: x' = (x - mean[c]) / std[c]. Fitted on the training data only
// and kept (with the model) so predictions can be mapped back with invert().
struct ChannelStats {
  std::vector<double> mean, std;
  // Fits over every step of every series (population std; a constant channel gets std 1 so it
  // maps to 0 instead of dividing by zero).
  static ChannelStats fit(const std::vector<Tensor>& series);
  Tensor apply(const Tensor& x) const;   // F32 [C, T] → F32 [C, T]
  Tensor invert(const Tensor& x) const;  // the inverse of apply
};

// Token-id sequences (I64 [T_i], ids >= 0) with class labels: what the text readers produce.
class TokenDataset : public Dataset {
 public:
  TokenDataset(std::vector<std::vector<int64_t>> ids, std::vector<int64_t> labels,
               std::vector<std::string> classes = {});
  int64_t size() const override { return int64_t(ids_.size()); }
  Sample get(int64_t index, Generator& gen) const override;
  int64_t label(int64_t index) const override;
  const std::vector<std::string>& classes() const { return classes_; }
  const std::vector<int64_t>& ids(int64_t index) const { return ids_[size_t(index)]; }

 private:
  std::vector<std::vector<int64_t>> ids_;
  std::vector<int64_t> labels_;
  std::vector<std::string> classes_;
};

}  // namespace finch::data
