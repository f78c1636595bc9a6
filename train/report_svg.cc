// report.html's SVG: nice ticks, line charts, confusion heat map.
#include "train/report_svg.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

namespace finch::train {

std::vector<double> nice_ticks(double lo, double hi, int target, bool integer) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) return {};
  if (lo > hi) std::swap(lo, hi);
  if (hi - lo < 1e-12 * std::max(1.0, std::fabs(hi))) {
    const double d = lo == 0 ? 1.0 : 0.1 * std::fabs(lo);
    lo -= d, hi += d;
  }
  const double raw = (hi - lo) / double(std::max(1, target));
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double norm = raw / mag;
  // The 1-2-5 sequence: the nearest of 1, 2, 5, 10 times the decade on a log scale (the cut
  // points are the geometric means √2, √10, √50).
  double step = (norm < 1.414 ? 1.0 : norm < 3.162 ? 2.0 : norm < 7.071 ? 5.0 : 10.0) * mag;
  if (integer) step = std::max(1.0, std::round(step));
  // Indices, not repeated addition, so 0.1·3 does not drift into 0.30000000000000004 ticks.
  const double first = std::floor(lo / step + 1e-9), last = std::ceil(hi / step - 1e-9);
  std::vector<double> t;
  for (double k = first; k <= last + 0.5; k += 1) {
    double v = k * step;
    char buf[40];
    std::snprintf(buf, sizeof buf, "%.12g", v);  // drop the last-bit noise of k·step
    v = std::strtod(buf, nullptr);
    t.push_back(v == 0 ? 0.0 : v);
  }
  return t;
}

std::string tick_label(double v, double step, bool percent) {
  if (percent) v *= 100, step *= 100;
  // Enough decimals to tell ticks `step` apart, no more.
  const int decimals = step >= 1 ? 0 : std::min(12, int(std::ceil(-std::log10(step) - 1e-9)));
  char buf[48];
  if (v != 0 && (std::fabs(v) < 1e-3 || std::fabs(v) >= 1e6)) std::snprintf(buf, sizeof buf, "%.3g", v);
  else std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return std::string(buf) + (percent ? "%" : "");
}

std::string html_escape(const std::string& s) {
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

std::string fmt_num(double v, int prec) {
  char buf[64];
  if (std::isfinite(v) && std::fabs(v) >= 1 && std::fabs(v) < 1e15) {
    // Large values keep their integer digits (16032.48 → 16030, not 1.603e+04).
    const double scale = std::pow(10.0, prec - 1 - int(std::floor(std::log10(std::fabs(v)))));
    const double r = std::round(v * scale) / scale;
    const int decimals = std::max(0, prec - 1 - int(std::floor(std::log10(std::fabs(r)))));
    std::snprintf(buf, sizeof buf, "%.*f", decimals, r);
  } else {
    std::snprintf(buf, sizeof buf, "%.*g", prec, v);
  }
  return buf;
}

std::string line_chart(const std::vector<Series>& series, const ChartOptions& opt) {
  const double W = 460, H = 280, L = 60, R = 12, T = 28, B = 40;
  double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
  for (const auto& s : series)
    for (size_t i = 0; i < s.y.size() && i < s.x.size(); ++i)
      if (std::isfinite(s.y[i]) && std::isfinite(s.x[i])) {
        xlo = std::min(xlo, s.x[i]), xhi = std::max(xhi, s.x[i]);
        ylo = std::min(ylo, s.y[i]), yhi = std::max(yhi, s.y[i]);
      }
  std::ostringstream o;
  o << "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H
    << "\" viewBox=\"0 0 " << W << " " << H << "\">\n";
  o << "<text x=\"" << L << "\" y=\"18\" font-weight=\"bold\">" << html_escape(opt.title) << "</text>\n";
  if (!std::isfinite(xlo)) {
    o << "<text x=\"" << W / 2 << "\" y=\"" << H / 2 << "\" text-anchor=\"middle\">no data</text></svg>\n";
    return o.str();
  }
  if (opt.y_from_zero) ylo = std::min(ylo, 0.0);
  const std::vector<double> xt = nice_ticks(xlo, xhi, 6, opt.integer_x), yt = nice_ticks(ylo, yhi, 5);
  // The axes span whole tick intervals, so the first and last gridlines are the frame.
  const double x0 = xt.front(), x1 = xt.back(), y0 = yt.front(), y1 = yt.back();
  auto X = [&](double x) { return L + (W - L - R) * (x - x0) / (x1 - x0); };
  auto Y = [&](double v) { return T + (H - T - B) * (y1 - v) / (y1 - y0); };
  o << "<rect x=\"" << L << "\" y=\"" << T << "\" width=\"" << W - L - R << "\" height=\"" << H - T - B
    << "\" fill=\"none\" stroke=\"#888\"/>\n";
  const double ystep = yt.size() > 1 ? yt[1] - yt[0] : 1, xstep = xt.size() > 1 ? xt[1] - xt[0] : 1;
  for (double v : yt) {
    const double y = Y(v);
    o << "<line x1=\"" << L << "\" x2=\"" << W - R << "\" y1=\"" << y << "\" y2=\"" << y
      << "\" stroke=\"#ddd\"/><text class=\"ytick\" x=\"" << L - 4 << "\" y=\"" << y + 4
      << "\" text-anchor=\"end\" font-size=\"11\">" << tick_label(v, ystep, opt.percent) << "</text>\n";
  }
  for (double v : xt)
    o << "<text class=\"xtick\" x=\"" << X(v) << "\" y=\"" << H - B + 16 << "\" text-anchor=\"middle\" font-size=\"11\">"
      << tick_label(v, xstep, false) << "</text>\n";
  o << "<text x=\"" << L + (W - L - R) / 2 << "\" y=\"" << H - 6 << "\" text-anchor=\"middle\" font-size=\"12\">"
    << html_escape(opt.x_label) << "</text>\n";
  if (!opt.y_label.empty())
    o << "<text x=\"14\" y=\"" << T + (H - T - B) / 2 << "\" text-anchor=\"middle\" font-size=\"12\" transform=\"rotate(-90 14 "
      << T + (H - T - B) / 2 << ")\">" << html_escape(opt.y_label) << "</text>\n";
  // The legend sits in the title row, right-aligned, so it never covers a curve.
  double lx = W - R - 70.0 * double(series.size());
  for (const auto& s : series) {
    std::ostringstream pts;
    for (size_t i = 0; i < s.y.size() && i < s.x.size(); ++i)
      if (std::isfinite(s.y[i])) pts << X(s.x[i]) << "," << Y(s.y[i]) << " ";
    o << "<polyline fill=\"none\" stroke=\"" << s.color << "\" stroke-width=\"2\" points=\"" << pts.str() << "\"/>\n";
    if (s.markers)
      for (size_t i = 0; i < s.y.size() && i < s.x.size(); ++i)
        if (std::isfinite(s.y[i]))
          o << "<circle cx=\"" << X(s.x[i]) << "\" cy=\"" << Y(s.y[i]) << "\" r=\"2.5\" fill=\"" << s.color << "\"/>\n";
    if (series.size() > 1) {
      o << "<rect x=\"" << lx << "\" y=\"9\" width=\"10\" height=\"10\" fill=\"" << s.color << "\"/><text x=\""
        << lx + 14 << "\" y=\"18\" font-size=\"12\">" << html_escape(s.name) << "</text>\n";
      lx += 70;
    }
  }
  o << "</svg>\n";
  return o.str();
}

std::string confusion_svg(const nlohmann::json& cm, const std::vector<std::string>& names) {
  const size_t k = cm.size();
  const double cell = k <= 12 ? 40 : (k <= 30 ? 18 : 7), left = k <= 30 ? 110 : 20, top = 30;
  const double W = left + cell * double(k) + 10, H = top + cell * double(k) + 40;
  auto name = [&](size_t i) { return html_escape(i < names.size() ? names[i] : std::to_string(i)); };
  std::ostringstream o;
  o << "<svg class=\"confusion\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H
    << "\" viewBox=\"0 0 " << W << " " << H << "\">\n";
  o << "<text x=\"" << left << "\" y=\"18\" font-size=\"12\">rows: true class, columns: predicted class</text>\n";
  for (size_t i = 0; i < k; ++i) {
    int64_t total = 0;
    for (size_t j = 0; j < k; ++j) total += cm[i][j].get<int64_t>();
    if (k <= 30)
      o << "<text x=\"" << left - 4 << "\" y=\"" << top + cell * (double(i) + 0.6)
        << "\" text-anchor=\"end\" font-size=\"11\">" << name(i) << "</text>\n";
    for (size_t j = 0; j < k; ++j) {
      const int64_t c = cm[i][j].get<int64_t>();
      const double f = total ? double(c) / double(total) : 0.0;
      const int shade = int(std::lround(255 * (1 - f)));
      const char* fill = i == j ? "#1f6f3f" : "#a02020";
      o << "<rect x=\"" << left + cell * double(j) << "\" y=\"" << top + cell * double(i) << "\" width=\"" << cell
        << "\" height=\"" << cell << "\" fill=\"" << (c ? fill : "#ffffff") << "\" fill-opacity=\""
        << (c ? fmt_num(std::max(0.08, f), 3) : "1") << "\" stroke=\"#ccc\"><title>true " << name(i)
        << ", predicted " << name(j) << ": " << c << "</title></rect>\n";
      if (k <= 12 && c)
        o << "<text x=\"" << left + cell * (double(j) + 0.5) << "\" y=\"" << top + cell * (double(i) + 0.62)
          << "\" text-anchor=\"middle\" font-size=\"11\" fill=\"" << (shade < 128 ? "#fff" : "#000") << "\">" << c
          << "</text>\n";
    }
  }
  o << "</svg>\n";
  return o.str();
}

}  // namespace finch::train
