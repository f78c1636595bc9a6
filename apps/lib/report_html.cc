// report.html rendering: line charts and a confusion-matrix heat map as inline SVG.
#include "apps/lib/report_html.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "framework/atomic_file.h"

namespace finch::apps {
namespace {

std::string esc(const std::string& s) {
  std::string r;
  for (char c : s) {
    switch (c) {
      case '&': r += "&amp;"; break;
      case '<': r += "&lt;"; break;
      case '>': r += "&gt;"; break;
      case '"': r += "&quot;"; break;
      default: r += c;
    }
  }
  return r;
}

std::string num(double v, int prec = 4) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*g", prec, v);
  return buf;
}

struct Series {
  std::string name, color;
  std::vector<double> y;
};

// A line chart of series over epochs 1..n with axes, ticks and a legend.
std::string line_chart(const std::string& title, const std::vector<Series>& series, bool percent) {
  const double W = 460, H = 280, L = 56, R = 12, T = 28, B = 40;
  size_t n = 0;
  double lo = INFINITY, hi = -INFINITY;
  for (const auto& s : series) {
    n = std::max(n, s.y.size());
    for (double v : s.y)
      if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
  }
  std::ostringstream o;
  o << "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H
    << "\" viewBox=\"0 0 " << W << " " << H << "\">\n";
  o << "<text x=\"" << W / 2 << "\" y=\"18\" text-anchor=\"middle\" font-weight=\"bold\">" << esc(title)
    << "</text>\n";
  if (n == 0 || !std::isfinite(lo)) {
    o << "<text x=\"" << W / 2 << "\" y=\"" << H / 2 << "\" text-anchor=\"middle\">no epochs</text></svg>\n";
    return o.str();
  }
  if (hi - lo < 1e-9) lo -= 0.5, hi += 0.5;
  const double pad = 0.05 * (hi - lo);
  lo -= pad, hi += pad;
  auto X = [&](size_t i) { return L + (n == 1 ? (W - L - R) / 2 : (W - L - R) * double(i) / double(n - 1)); };
  auto Y = [&](double v) { return T + (H - T - B) * (hi - v) / (hi - lo); };
  o << "<rect x=\"" << L << "\" y=\"" << T << "\" width=\"" << W - L - R << "\" height=\"" << H - T - B
    << "\" fill=\"none\" stroke=\"#888\"/>\n";
  for (int k = 0; k <= 4; ++k) {
    const double v = lo + (hi - lo) * k / 4.0, y = Y(v);
    o << "<line x1=\"" << L << "\" x2=\"" << W - R << "\" y1=\"" << y << "\" y2=\"" << y
      << "\" stroke=\"#ddd\"/><text x=\"" << L - 4 << "\" y=\"" << y + 4 << "\" text-anchor=\"end\" font-size=\"11\">"
      << (percent ? num(100 * v, 3) + "%" : num(v, 3)) << "</text>\n";
  }
  const size_t step = std::max<size_t>(1, n / 8);
  for (size_t i = 0; i < n; i += step)
    o << "<text x=\"" << X(i) << "\" y=\"" << H - B + 16 << "\" text-anchor=\"middle\" font-size=\"11\">" << i + 1
      << "</text>\n";
  o << "<text x=\"" << L + (W - L - R) / 2 << "\" y=\"" << H - 6 << "\" text-anchor=\"middle\" font-size=\"12\">epoch</text>\n";
  double ly = T + 14;
  for (const auto& s : series) {
    std::ostringstream pts;
    for (size_t i = 0; i < s.y.size(); ++i)
      if (std::isfinite(s.y[i])) pts << X(i) << "," << Y(s.y[i]) << " ";
    o << "<polyline fill=\"none\" stroke=\"" << s.color << "\" stroke-width=\"2\" points=\"" << pts.str() << "\"/>\n";
    for (size_t i = 0; i < s.y.size(); ++i)
      if (std::isfinite(s.y[i]))
        o << "<circle cx=\"" << X(i) << "\" cy=\"" << Y(s.y[i]) << "\" r=\"2.5\" fill=\"" << s.color << "\"/>\n";
    o << "<rect x=\"" << W - R - 110 << "\" y=\"" << ly - 9 << "\" width=\"10\" height=\"10\" fill=\"" << s.color
      << "\"/><text x=\"" << W - R - 96 << "\" y=\"" << ly << "\" font-size=\"12\">" << esc(s.name) << "</text>\n";
    ly += 16;
  }
  o << "</svg>\n";
  return o.str();
}

// Rows: true class, columns: predicted; cell shade by the row-normalized count.
std::string confusion_svg(const nlohmann::json& cm, const std::vector<std::string>& names) {
  const size_t k = cm.size();
  const double cell = k <= 12 ? 40 : (k <= 30 ? 18 : 7), left = k <= 30 ? 110 : 20, top = 30;
  const double W = left + cell * double(k) + 10, H = top + cell * double(k) + 40;
  std::ostringstream o;
  o << "<svg class=\"confusion\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H
    << "\" viewBox=\"0 0 " << W << " " << H << "\">\n";
  o << "<text x=\"" << left << "\" y=\"18\" font-size=\"12\">rows: true class, columns: predicted class</text>\n";
  for (size_t i = 0; i < k; ++i) {
    int64_t total = 0;
    for (size_t j = 0; j < k; ++j) total += cm[i][j].get<int64_t>();
    if (k <= 30)
      o << "<text x=\"" << left - 4 << "\" y=\"" << top + cell * (double(i) + 0.6)
        << "\" text-anchor=\"end\" font-size=\"11\">" << esc(i < names.size() ? names[i] : std::to_string(i))
        << "</text>\n";
    for (size_t j = 0; j < k; ++j) {
      const int64_t c = cm[i][j].get<int64_t>();
      const double f = total ? double(c) / double(total) : 0.0;
      const int shade = int(std::lround(255 * (1 - f)));
      const char* fill = i == j ? "#1f6f3f" : "#a02020";
      o << "<rect x=\"" << left + cell * double(j) << "\" y=\"" << top + cell * double(i) << "\" width=\"" << cell
        << "\" height=\"" << cell << "\" fill=\"" << (c ? fill : "#ffffff") << "\" fill-opacity=\""
        << (c ? num(std::max(0.08, f), 3) : "1") << "\" stroke=\"#ccc\"><title>true "
        << esc(i < names.size() ? names[i] : std::to_string(i)) << ", predicted "
        << esc(j < names.size() ? names[j] : std::to_string(j)) << ": " << c << "</title></rect>\n";
      if (k <= 12 && c)
        o << "<text x=\"" << left + cell * (double(j) + 0.5) << "\" y=\"" << top + cell * (double(i) + 0.62)
          << "\" text-anchor=\"middle\" font-size=\"11\" fill=\"" << (shade < 128 ? "#fff" : "#000") << "\">" << c
          << "</text>\n";
    }
  }
  o << "</svg>\n";
  return o.str();
}

std::vector<double> column(const nlohmann::json& history, const char* key) {
  std::vector<double> v;
  for (const auto& row : history)
    v.push_back(row.contains(key) && row[key].is_number() ? row[key].get<double>() : NAN);
  return v;
}

}  // namespace

std::string render_report_html(const nlohmann::json& summary, const nlohmann::json& history) {
  std::ostringstream o;
  const std::string model = summary.value("model", ""), dataset = summary.value("dataset", "");
  o << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>finch: " << esc(model) << " on "
    << esc(dataset) << "</title>\n<style>body{font-family:sans-serif;margin:2em;color:#222}"
       "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}"
       "svg{margin:0.5em 1em 0.5em 0}text{font-family:sans-serif}</style></head><body>\n";
  o << "<h1>" << esc(model) << " on " << esc(dataset) << "</h1>\n<table>\n";
  auto row = [&](const std::string& k, const std::string& v) {
    o << "<tr><th>" << esc(k) << "</th><td>" << esc(v) << "</td></tr>\n";
  };
  auto pct = [&](const char* key) {
    return summary.contains(key) && summary[key].is_number() ? num(100 * summary[key].get<double>(), 4) + " %" : "-";
  };
  row("test accuracy", pct("test_accuracy"));
  if (summary.contains("best_test_accuracy")) row("best test accuracy", pct("best_test_accuracy"));
  for (const char* k : {"float_test_accuracy", "qat_test_accuracy", "converted_test_accuracy"})
    if (summary.contains(k)) row(k, pct(k));
  for (const char* k : {"parameters", "model_file_bytes", "float_model_bytes", "converted_model_bytes", "epochs",
                        "train_images_per_second", "wall_seconds", "threads", "finch_version", "command_line"})
    if (summary.contains(k)) row(k, summary[k].is_string() ? summary[k].get<std::string>() : summary[k].dump());
  o << "</table>\n";
  if (!history.empty()) {
    o << "<h2>Training curves</h2>\n<div>\n";
    o << line_chart("loss", {{"train", "#1f77b4", column(history, "train_loss")},
                             {"test", "#d62728", column(history, "test_loss")}},
                    false);
    o << line_chart("accuracy", {{"train", "#1f77b4", column(history, "train_acc")},
                                 {"test", "#d62728", column(history, "test_acc")}},
                    true);
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
        o << "<tr><td>" << esc(i < names.size() ? names[i] : std::to_string(i)) << "</td><td>"
          << (pc[i].is_number() ? num(100 * pc[i].get<double>(), 4) + " %" : "-") << "</td></tr>\n";
      o << "</table>\n";
    }
  }
  if (summary.contains("variants")) {  // finch quantize: fp32 and the quantized variant side by side
    o << "<h2>Quantization</h2>\n<table><tr><th>variant</th><th>size KB</th><th>accuracy</th><th>ms/image</th></tr>\n";
    for (const auto& v : summary["variants"])
      o << "<tr><td>" << esc(v.value("name", "")) << "</td><td>" << num(v.value("size_bytes", 0.0) / 1024, 6)
        << "</td><td>" << num(100 * v.value("accuracy", 0.0), 4) << " %</td><td>" << num(v.value("latency_ms", 0.0), 4)
        << "</td></tr>\n";
    o << "</table>\n";
  }
  if (summary.contains("debug") && !summary["debug"].empty()) {
    // Seed 002's debugger: rmse/scale 0.289 is pure rounding; rows above 0.7 are marked.
    o << "<h2>Quantization debugger</h2>\n<p>fake_quant(x) &minus; x on the calibration data; rmse/scale "
         "&asymp; 0.289 is rounding noise alone, rows above 0.7 are marked.</p>\n<table><tr><th>fake-quant</th>"
         "<th>scale</th><th>zero point</th><th>mean |err|</th><th>max |err|</th><th>MSE</th><th>rmse/scale</th></tr>\n";
    for (const auto& d : summary["debug"]) {
      const bool flag = d.value("flagged", false);
      o << "<tr" << (flag ? " style=\"background:#fdd\"" : "") << "><td>" << esc(d.value("name", "")) << "</td><td>"
        << num(d.value("scale", 0.0)) << "</td><td>" << d.value("zero_point", 0) << "</td><td>"
        << num(d.value("mean_abs_error", 0.0)) << "</td><td>" << num(d.value("max_abs_error", 0.0)) << "</td><td>"
        << num(d.value("mse", 0.0)) << "</td><td>" << num(d.value("rmse_over_scale", 0.0), 3) << "</td></tr>\n";
    }
    o << "</table>\n";
  }
  o << "</body></html>\n";
  return o.str();
}

void write_report_html(const std::string& path, const nlohmann::json& summary, const nlohmann::json& history) {
  write_file_atomically(path, render_report_html(summary, history));
}

}  // namespace finch::apps
