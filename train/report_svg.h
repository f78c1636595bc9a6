// The SVG pieces of report.html: round axis ticks (1-2-5 steps), line charts over a numeric x
// axis, and the confusion-matrix heat map.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace finch::train {

// Tick values covering [lo, hi] at a "round" step (1, 2 or 5 × 10^k) chosen so that there are
// about `target` intervals; the first tick is ≤ lo and the last ≥ hi. `integer` forces a step of
// at least 1 (epochs). lo == hi widens the range around the value.
std::vector<double> nice_ticks(double lo, double hi, int target = 5, bool integer = false);

// A tick's label: shortest text at the step's precision ("0.25", "80%", "2e-05").
std::string tick_label(double v, double step, bool percent);

// Text escaped for HTML/SVG content and attributes.
std::string html_escape(const std::string& s);
// A number with `prec` significant digits ("16030" for 16032.48 at 4).
std::string fmt_num(double v, int prec = 4);

struct Series {
  std::string name, color;
  std::vector<double> x, y;  // same length; non-finite y values are skipped
  bool markers = true;       // dots at each point (off for dense curves such as the LR per step)
};

struct ChartOptions {
  std::string title, x_label = "epoch", y_label;
  bool percent = false;    // y values are fractions shown as %
  bool integer_x = true;   // x ticks at whole numbers
  bool y_from_zero = false;
};

// An inline <svg class="chart"> line chart with gridlines at nice ticks and a legend.
std::string line_chart(const std::vector<Series>& series, const ChartOptions& o);

// Rows: true class, columns: predicted; cell shade by the row-normalized count.
std::string confusion_svg(const nlohmann::json& cm, const std::vector<std::string>& names);

}  // namespace finch::train
