// report.html rendering: summary table, charts, confusion matrix, thumbnails.
#include "train/report.h"

#include <cmath>
#include <sstream>

#include "framework/atomic_file.h"
#include "train/report_svg.h"

namespace finch::train {
namespace {

std::vector<double> column(const nlohmann::json& history, const char* key) {
  std::vector<double> v;
  for (const auto& row : history)
    v.push_back(row.contains(key) && row[key].is_number() ? row[key].get<double>() : NAN);
  return v;
}

// A summary value for the table: integers as they are, other numbers to 4 significant digits.
std::string cell(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_integer() || v.is_number_unsigned()) return v.dump();
  if (v.is_number_float()) return fmt_num(v.get<double>(), 4);
  return v.dump();
}

void thumbnails(std::ostringstream& o, const std::vector<Thumbnail>& mistakes, const std::vector<std::string>& names) {
  auto name = [&](int64_t k) {
    return html_escape(k >= 0 && size_t(k) < names.size() ? names[size_t(k)] : std::to_string(k));
  };
  o << "<h2>Most confidently wrong test images</h2>\n<div class=\"thumbs\">\n";
  for (const Thumbnail& t : mistakes)
    o << "<figure class=\"thumb\"><img src=\"" << t.data_uri << "\" alt=\"test image " << t.index
      << "\" width=\"96\" height=\"96\"><figcaption>#" << t.index << "<br>true <b>" << name(t.label)
      << "</b><br>predicted <b>" << name(t.predicted) << "</b><br>" << fmt_num(100 * t.confidence, 3)
      << " % sure</figcaption></figure>\n";
  o << "</div>\n";
}

}  // namespace

std::string render_report_html(const nlohmann::json& summary, const nlohmann::json& history,
                               const ReportExtras& extras) {
  std::ostringstream o;
  const std::string model = summary.value("model", ""), dataset = summary.value("dataset", "");
  o << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>finch: " << html_escape(model)
    << " on " << html_escape(dataset)
    << "</title>\n<style>body{font-family:sans-serif;margin:2em;color:#222}"
       "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}"
       "td.num{text-align:right}svg{margin:0.5em 1em 0.5em 0}text{font-family:sans-serif}"
       ".thumbs{display:flex;flex-wrap:wrap;gap:10px}.thumb{margin:0;width:110px;font-size:12px}"
       ".thumb img{image-rendering:pixelated;border:1px solid #ccc}</style></head><body>\n";
  o << "<h1>" << html_escape(model) << " on " << html_escape(dataset) << "</h1>\n<table>\n";
  auto row = [&](const std::string& k, const std::string& v) {
    o << "<tr><th>" << html_escape(k) << "</th><td>" << html_escape(v) << "</td></tr>\n";
  };
  auto pct = [&](const char* key) {
    return summary.contains(key) && summary[key].is_number() ? fmt_num(100 * summary[key].get<double>(), 4) + " %"
                                                             : "-";
  };
  row("test accuracy", pct("test_accuracy"));
  if (summary.contains("best_test_accuracy")) row("best test accuracy", pct("best_test_accuracy"));
  // Model selection on validation data (apps/lib/model_selection.h): the chosen epoch, its
  // validation and test numbers, and which epoch the model file holds.
  if (summary.contains("validation") && summary["validation"].is_object())
    row("validation", cell(summary["validation"].value("source", "")) + ", " +
                          cell(summary["validation"].value("samples", nlohmann::json(0))) + " samples");
  for (const char* k : {"best_epoch", "best_val_accuracy", "best_val_loss", "best_epoch_test_accuracy",
                        "best_epoch_test_loss", "last_epoch", "last_val_accuracy", "last_epoch_test_accuracy",
                        "kept", "model_epoch", "stopped_early"})
    if (summary.contains(k) && !summary[k].is_null())
      row(k, std::string(k).find("accuracy") != std::string::npos ? pct(k) : cell(summary[k]));
  for (const char* k : {"float_test_accuracy", "qat_test_accuracy", "converted_test_accuracy"})
    if (summary.contains(k)) row(k, pct(k));
  // Sequence tasks (train_series, train_text): the other classification scores, or the errors.
  for (const char* k : {"balanced_accuracy", "macro_f1"})
    if (summary.contains(k)) row(k == std::string("macro_f1") ? "macro F1" : "balanced accuracy", pct(k));
  for (const char* k : {"cohen_kappa", "test_mse", "test_rmse", "test_mae", "test_rmse_original", "test_mae_original"})
    if (summary.contains(k)) row(k, cell(summary[k]));
  for (const char* k : {"parameters", "model_file_bytes", "float_model_bytes", "converted_model_bytes", "epochs",
                        "train_images_per_second", "wall_seconds", "threads", "finch_version", "command_line"})
    if (summary.contains(k)) row(k, cell(summary[k]));
  o << "</table>\n";
  if (!history.empty()) {
    const std::vector<double> epochs = column(history, "epoch");
    o << "<h2>Training curves</h2>\n<div>\n";
    ChartOptions lo;
    lo.title = "loss";
    // The validation curves when the run held out validation data (model_selection.h).
    const bool val = history.back().contains("val_loss");
    std::vector<Series> loss_curves = {{"train", "#1f77b4", epochs, column(history, "train_loss")},
                                       {"test", "#d62728", epochs, column(history, "test_loss")}};
    if (val) loss_curves.push_back({"validation", "#ff7f0e", epochs, column(history, "val_loss")});
    o << line_chart(loss_curves, lo);
    ChartOptions ao;
    ao.title = "accuracy";
    ao.percent = true;
    std::vector<Series> acc_curves = {{"train", "#1f77b4", epochs, column(history, "train_acc")},
                                      {"test", "#d62728", epochs, column(history, "test_acc")}};
    if (val) acc_curves.push_back({"validation", "#ff7f0e", epochs, column(history, "val_acc")});
    o << line_chart(acc_curves, ao);
    ChartOptions ro;
    ro.title = "learning rate";
    ro.y_from_zero = true;
    Series lr{"lr", "#2ca02c", {}, {}};
    if (!extras.lr_curve.empty()) {
      // The schedule per step: x in epochs from 0, so warm-up and restarts show.
      for (const auto& [x, v] : extras.lr_curve) lr.x.push_back(x), lr.y.push_back(v);
      lr.markers = false;
      ro.integer_x = false;
    } else {
      lr.x = epochs;
      lr.y = column(history, "lr");
    }
    o << "<span class=\"lr-curve\">" << line_chart({lr}, ro) << "</span>";
    o << "</div>\n";
  }
  std::vector<std::string> names;
  if (summary.contains("classes"))
    for (const auto& c : summary["classes"]) names.push_back(c.get<std::string>());
  if (summary.contains("confusion_matrix") && !summary["confusion_matrix"].empty()) {
    o << "<h2>Confusion matrix (test set)</h2>\n" << confusion_svg(summary["confusion_matrix"], names);
    if (summary.contains("per_class_accuracy")) {
      o << "<h2>Per-class accuracy</h2>\n<table><tr><th>class</th><th>accuracy</th></tr>\n";
      const auto& pc = summary["per_class_accuracy"];
      for (size_t i = 0; i < pc.size(); ++i)
        o << "<tr><td>" << html_escape(i < names.size() ? names[i] : std::to_string(i)) << "</td><td class=\"num\">"
          << (pc[i].is_number() ? fmt_num(100 * pc[i].get<double>(), 4) + " %" : "-") << "</td></tr>\n";
      o << "</table>\n";
    }
  }
  if (!extras.mistakes.empty()) thumbnails(o, extras.mistakes, names);
  if (summary.contains("variants")) {  // finch quantize: fp32 and the quantized variant side by side
    o << "<h2>Quantization</h2>\n<table><tr><th>variant</th><th>size KB</th><th>accuracy</th><th>ms/image</th></tr>\n";
    for (const auto& v : summary["variants"])
      o << "<tr><td>" << html_escape(v.value("name", "")) << "</td><td class=\"num\">"
        << fmt_num(v.value("size_bytes", 0.0) / 1024, 4) << "</td><td class=\"num\">"
        << fmt_num(100 * v.value("accuracy", 0.0), 4) << " %</td><td class=\"num\">"
        << fmt_num(v.value("latency_ms", 0.0), 4) << "</td></tr>\n";
    o << "</table>\n";
  }
  if (summary.contains("debug") && !summary["debug"].empty()) {
    // Seed 002's debugger: rmse/scale 0.289 is pure rounding; rows above 0.7 are marked.
    o << "<h2>Quantization debugger</h2>\n<p>fake_quant(x) &minus; x on the calibration data; rmse/scale "
         "&asymp; 0.289 is rounding noise alone, rows above 0.7 are marked.</p>\n<table><tr><th>fake-quant</th>"
         "<th>scale</th><th>zero point</th><th>mean |err|</th><th>max |err|</th><th>MSE</th><th>rmse/scale</th></tr>\n";
    for (const auto& d : summary["debug"]) {
      const bool flag = d.value("flagged", false);
      o << "<tr" << (flag ? " style=\"background:#fdd\"" : "") << "><td>" << html_escape(d.value("name", ""))
        << "</td><td>" << fmt_num(d.value("scale", 0.0)) << "</td><td>" << d.value("zero_point", 0) << "</td><td>"
        << fmt_num(d.value("mean_abs_error", 0.0)) << "</td><td>" << fmt_num(d.value("max_abs_error", 0.0))
        << "</td><td>" << fmt_num(d.value("mse", 0.0)) << "</td><td>" << fmt_num(d.value("rmse_over_scale", 0.0), 3)
        << "</td></tr>\n";
    }
    o << "</table>\n";
  }
  o << "</body></html>\n";
  return o.str();
}

void write_report_html(const std::string& path, const nlohmann::json& summary, const nlohmann::json& history,
                       const ReportExtras& extras) {
  write_file_atomically(path, render_report_html(summary, history, extras));
}

}  // namespace finch::train
