// report.html: a self-contained page (inline CSS, SVG and PNG data URIs; no scripts, no
// network) with the run's summary, loss/accuracy/learning-rate curves, the confusion matrix,
// per-class accuracy and thumbnails of the most confidently wrong test images.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "train/thumbnail.h"

namespace finch::train {

struct ReportExtras {
  // (x in epochs, learning rate), e.g. schedule_curve(); empty: the history's per-epoch "lr".
  std::vector<std::pair<double, double>> lr_curve;
  std::vector<Thumbnail> mistakes;  // most confidently wrong test images (image tasks)
};

// `summary` is summary.json's object (keys shown when present: model, dataset, test_accuracy,
// classes, confusion_matrix, per_class_accuracy, …); `history` the per-epoch rows (epoch,
// train_loss, test_loss, train_acc, test_acc, lr; may be empty, e.g. for --eval-only).
std::string render_report_html(const nlohmann::json& summary, const nlohmann::json& history,
                               const ReportExtras& extras = {});

// Renders and writes atomically.
void write_report_html(const std::string& path, const nlohmann::json& summary, const nlohmann::json& history,
                       const ReportExtras& extras = {});

}  // namespace finch::train
