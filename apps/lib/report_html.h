// report.html: a self-contained page (inline CSS and SVG, no scripts, no network) with the run's
// summary, loss and accuracy curves per epoch and the confusion matrix.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

namespace finch::apps {

// `summary` is summary.json's object; `history` the per-epoch rows (objects with epoch,
// train_loss, test_loss, train_acc, test_acc; may be empty for --eval-only).
std::string render_report_html(const nlohmann::json& summary, const nlohmann::json& history);

// Renders and writes atomically.
void write_report_html(const std::string& path, const nlohmann::json& summary, const nlohmann::json& history);

}  // namespace finch::apps
