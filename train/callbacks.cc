// The ready-made callbacks of fit(): epoch log line, metrics CSV, live report.
#include "train/callbacks.h"

#include <cstdio>

#include "framework/results.h"

namespace finch::train {

void EpochLogCallback::on_epoch_end(Context& ctx, const EpochEnd& e) {
  const EpochStats& st = e.train;
  std::fprintf(stderr,
               "epoch %lld/%lld: train loss %.4f acc %.2f%%, test loss %.4f acc %.2f%%%s, %.1f s (%.0f img/s)\n",
               static_cast<long long>(e.epoch + 1), static_cast<long long>(ctx.config.epochs), st.loss,
               100 * st.accuracy, e.test.loss, 100 * e.test.accuracy, e.best ? " (best)" : "", st.seconds,
               st.images_per_second());
}

MetricsCsvCallback::MetricsCsvCallback(std::string path, std::vector<std::string> columns)
    : path_(std::move(path)), columns_(std::move(columns)) {}

void MetricsCsvCallback::on_epoch_end(Context& ctx, const EpochEnd&) {
  write_metrics_csv(path_, ctx.state.history, columns_);
}

void write_metrics_csv(const std::string& path, const nlohmann::json& history,
                       const std::vector<std::string>& columns) {
  CsvWriter csv(columns);
  for (const auto& row : history) {
    std::vector<CsvCell> cells;
    for (const std::string& k : columns) {
      const nlohmann::json& v = row.at(k);
      if (v.is_boolean()) cells.emplace_back(v.get<bool>());
      else if (v.is_number_integer()) cells.emplace_back(v.get<int64_t>());
      else cells.emplace_back(v.is_null() ? std::nan("") : v.get<double>());
    }
    csv.add_row(std::move(cells));
  }
  csv.save(path);
}

ReportCallback::ReportCallback(std::string path, std::function<nlohmann::json()> summary, ReportExtras extras)
    : path_(std::move(path)), summary_(std::move(summary)), extras_(std::move(extras)) {}

void ReportCallback::on_epoch_end(Context& ctx, const EpochEnd&) {
  write_report_html(path_, summary_ ? summary_() : nlohmann::json::object(), ctx.state.history, extras_);
}

}  // namespace finch::train
