// Ready-made callbacks for fit(): a one-line summary per epoch on stderr, the metrics CSV
// rewritten after each epoch, and a report.html rewritten after each epoch so a long run can be
// watched in a browser. (Checkpoints: CheckpointCallback in train/checkpoint.h. QAT phases are a
// callback of quant-aware code in apps/, since train/ may not include quant/.)
#pragma once
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "train/loop.h"
#include "train/report.h"

namespace finch::train {

// "epoch 3/10: train loss 0.4123 acc 85.12%, test loss … (best), 12.3 s (1234 img/s)".
class EpochLogCallback : public Callback {
 public:
  void on_epoch_end(Context& ctx, const EpochEnd& e) override;
};

// Writes the chosen columns of state.history (one row per epoch) to `path` atomically after each
// epoch. "epoch" and "images" are written as integers, the rest as numbers.
class MetricsCsvCallback : public Callback {
 public:
  explicit MetricsCsvCallback(std::string path,
                              std::vector<std::string> columns = {"epoch", "lr", "train_loss", "train_acc",
                                                                  "test_loss", "test_acc", "seconds",
                                                                  "images_per_second"});
  void on_epoch_end(Context& ctx, const EpochEnd& e) override;

 private:
  std::string path_;
  std::vector<std::string> columns_;
};

// Writes state.history as CSV with `columns` (what MetricsCsvCallback does after each epoch).
void write_metrics_csv(const std::string& path, const nlohmann::json& history,
                       const std::vector<std::string>& columns);

// Rewrites report.html after each epoch from `summary()` (the run so far) and the history.
class ReportCallback : public Callback {
 public:
  ReportCallback(std::string path, std::function<nlohmann::json()> summary, ReportExtras extras = {});
  void on_epoch_end(Context& ctx, const EpochEnd& e) override;

 private:
  std::string path_;
  std::function<nlohmann::json()> summary_;
  ReportExtras extras_;
};

}  // namespace finch::train
