// Progress bar rendering and the terminal / plain-log redraw policies.
#include "framework/progress.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>

namespace finch {
namespace {

constexpr int kBarWidth = 20;

double steady_seconds() {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}

// Three significant digits: enough to read a rate, stable enough not to flicker.
std::string three_digits(double v) {
  char buf[32];
  if (v < 9.995) std::snprintf(buf, sizeof buf, "%.2f", v);
  else if (v < 99.95) std::snprintf(buf, sizeof buf, "%.1f", v);
  else std::snprintf(buf, sizeof buf, "%.0f", v);
  return buf;
}

}  // namespace

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0 || seconds > 1e9) return "?";
  const int64_t s = std::llround(seconds);
  char buf[48];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", (long long)(s / 3600),
                  (long long)(s / 60 % 60), (long long)(s % 60));
  else
    std::snprintf(buf, sizeof buf, "%lld:%02lld", (long long)(s / 60), (long long)(s % 60));
  return buf;
}

std::string format_rate(double per_second, const std::string& unit) {
  if (!std::isfinite(per_second) || per_second <= 0) return "? " + unit + "/s";
  // Slow loops (an epoch per item) read better as seconds per item.
  if (per_second < 1) return three_digits(1 / per_second) + " s/" + unit;
  const char* suffix[] = {"", "k", "M", "G", "T"};
  int i = 0;
  // 999.96 would print as "1000": move to the next suffix at the rounding boundary instead.
  while (per_second >= 999.5 && i < 4) per_second /= 1000, ++i;
  return three_digits(per_second) + suffix[i] + " " + unit + "/s";
}

std::string format_field_value(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

Progress::Progress(int64_t total, std::string label, ProgressOptions options)
    : total_(total), label_(std::move(label)), opt_(std::move(options)) {
  out_ = opt_.out ? opt_.out : &std::cerr;
  if (opt_.is_tty) tty_ = *opt_.is_tty;
  else tty_ = out_ == &std::cerr && ::isatty(STDERR_FILENO);
  if (!opt_.clock) opt_.clock = steady_seconds;
  start_ = opt_.clock();
  // A terminal shows the bar from the first update; a plain log waits for its first interval or
  // 10 % step, so a short loop does not print a noise line per update.
  last_draw_ = tty_ ? -1e300 : start_;
}

Progress::~Progress() {
  try {
    finish();
  } catch (...) {  // a destructor must not throw; losing the last line is acceptable
  }
}

void Progress::update(int64_t n, const ProgressFields& fields) {
  count_ += n;
  if (!fields.empty()) fields_ = fields;
  maybe_draw();
}

void Progress::set_fields(const ProgressFields& fields) { fields_ = fields; }

void Progress::finish() {
  if (finished_) return;
  finished_ = true;
  if (tty_) {
    draw();
    *out_ << '\n';
  } else if (!drawn_ || count_ != last_line_count_) {
    draw();  // the plain log's last line holds the final count, unless it was just printed
  }
  out_->flush();
}

void Progress::maybe_draw() {
  if (finished_) return;
  const double now = opt_.clock();
  bool due = false;
  if (tty_) {
    due = due || now - last_draw_ >= opt_.redraw_interval_s || (total_ > 0 && count_ >= total_);
  } else {
    due = due || now - last_draw_ >= opt_.line_interval_s;
    if (total_ > 0 && opt_.line_every_fraction > 0) {
      // A line each time progress enters a new step of line_every_fraction (10 %, 20 %, ...).
      const double step = double(total_) * opt_.line_every_fraction;
      due = due || std::floor(double(count_) / step) > std::floor(double(last_line_count_) / step);
    }
    due = due && count_ != last_line_count_;
  }
  if (due) draw();
}

void Progress::draw() {
  last_draw_ = opt_.clock();
  last_line_count_ = count_;
  drawn_ = true;
  // "\033[K" clears what a previous, longer line left to the right of the cursor.
  if (tty_) *out_ << '\r' << line() << "\033[K";
  else *out_ << line() << '\n';
  out_->flush();
}

std::string Progress::line() const {
  const double elapsed = opt_.clock() - start_;
  const double rate = elapsed > 0 ? double(count_) / elapsed : 0.0;
  std::string s = label_;
  if (!s.empty()) s += "  ";
  if (total_ > 0) {
    const std::string tot = std::to_string(total_);
    std::string cnt = std::to_string(count_);
    if (cnt.size() < tot.size()) cnt.insert(0, tot.size() - cnt.size(), ' ');  // steady width
    const double frac = std::clamp(double(count_) / double(total_), 0.0, 1.0);
    char pct[8];
    std::snprintf(pct, sizeof pct, "%3d%%", int(frac * 100));
    const int filled = int(frac * kBarWidth);
    s += cnt + "/" + tot + "  " + pct + " [" + std::string(size_t(filled), '#') +
         std::string(size_t(kBarWidth - filled), '.') + "]";
  } else {
    s += std::to_string(count_);
  }
  s += "  " + format_rate(rate, opt_.unit) + "  elapsed " + format_duration(elapsed);
  if (total_ > 0) {
    const int64_t left = total_ - count_;
    const double eta = left <= 0 ? 0.0 : rate > 0 ? double(left) / rate : -1.0;
    s += "  eta " + format_duration(eta);
  }
  for (const auto& [k, v] : fields_) s += "  " + k + "=" + format_field_value(v);
  return s;
}

}  // namespace finch
