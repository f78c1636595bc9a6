// Progress: a progress bar with rate, elapsed time, ETA and custom fields for long loops.
//
//   Progress bar(num_batches, "train");
//   for (...) { ...; bar.update(1, {{"loss", loss}, {"acc", acc}}); }
//   bar.finish();
//
// On a terminal the line is redrawn in place with '\r' at most ~10 times a second (redrawing
// every step would make printing cost more than small training steps). When the stream is not a
// terminal (CI logs, pipes, `2> log.txt`) there is no '\r' at all: a plain line is printed at
// each 10 % of progress or every 10 s, whichever comes first, so logs stay short and readable.
//
// Line: "train   45/100   45% [#########...........]  12.3 it/s  elapsed 0:04  eta 0:05  loss=0.53"
// With total <= 0 (unknown length) the percentage, bar and ETA are left out.
// Not thread-safe: call it from the loop's own thread.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace finch {

using ProgressFields = std::vector<std::pair<std::string, double>>;

struct ProgressOptions {
  std::ostream* out = nullptr;        // nullptr: std::cerr
  std::optional<bool> is_tty;         // unset: isatty(stderr) when out is std::cerr, else false
  std::function<double()> clock;      // seconds on a monotonic clock; unset: steady_clock
  double redraw_interval_s = 0.1;     // terminal: least time between redraws
  double line_interval_s = 10.0;      // not a terminal: most time between lines
  double line_every_fraction = 0.1;   // not a terminal: also a line at each such step of total
  std::string unit = "it";            // shown in the rate: "12.3 it/s"
};

class Progress {
 public:
  explicit Progress(int64_t total, std::string label = "", ProgressOptions options = {});
  ~Progress();  // finishes the line if finish() was not called (never throws)
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  // Advances by n items; `fields` (if given) replace the shown custom fields.
  void update(int64_t n = 1, const ProgressFields& fields = {});
  // Sets the shown custom fields without advancing.
  void set_fields(const ProgressFields& fields);
  // Prints the final line (and the newline on a terminal). Idempotent.
  void finish();

  // The current status line, without '\r' or newline (what the next draw would print).
  std::string line() const;
  int64_t count() const { return count_; }

 private:
  void maybe_draw();
  void draw();

  int64_t total_;
  std::string label_;
  ProgressOptions opt_;
  std::ostream* out_;
  bool tty_;
  double start_;
  double last_draw_ = 0;
  int64_t count_ = 0;
  int64_t last_line_count_ = 0;  // not a terminal: count at the last printed line
  ProgressFields fields_;
  bool finished_ = false;
  bool drawn_ = false;
};

// "0:07", "1:02:03" (h:mm:ss once an hour is reached; m:ss below). Negative/NaN: "?".
std::string format_duration(double seconds);
// "12.3 it/s", "1.23k it/s", "4.5M it/s"; below one per second "2.50 s/it". Zero/NaN: "? it/s".
std::string format_rate(double per_second, const std::string& unit = "it");
// A custom field value with 4 significant digits ("0.5312", "1.235e+05").
std::string format_field_value(double v);

}  // namespace finch
