// The sorter's actuators: an external command per decision (`--actuator-cmd 'CMD {class}'`,
// run with posix_spawn, never through a shell) and GPIO output lines through libgpiod (built in
// when FINCH_HAVE_GPIOD is defined), mapped class → line by a small config file.
//
// GPIO config file (--gpio-config), one setting per line, '#' starts a comment:
//   chip gpiochip0      the GPIO chip (name, path or number as gpiod_chip_open_lookup takes it;
//                       default gpiochip0, the Raspberry Pi's header pins)
//   pulse_ms 150        how long a line is driven high per decision: 1..60000 (default 100)
//   line cat 17         class → line offset on the chip: 0..1023; "reject" is a class too
// Classes without a line move no gate. Every number is validated; a class the program does not
// have, a repeated class or line, or an unknown key is an error naming the file and line number.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace finch::apps {

// Splits a command template into words at spaces; '...' or "..." quote a word (no escapes).
// Throws a finch::Error for an empty template or an unterminated quote.
std::vector<std::string> split_command(const std::string& text);

// Runs the command `words` with {class}, {file} and {confidence} replaced in every word (a file
// name is one argv element, whatever it contains, so it cannot inject commands) and waits up to
// `timeout_ms` for it. Returns "" on exit status 0, else the reason ("exit status 3", "killed
// after 5000 ms", "cannot start: …") for the log; the sorter goes on either way.
std::string run_actuator(const std::vector<std::string>& words, const std::map<std::string, std::string>& vars,
                         int timeout_ms);

struct GpioConfig {
  std::string chip = "gpiochip0";
  int pulse_ms = 100;
  std::map<std::string, int> lines;  // class → line offset
};

// Reads and validates the file above; `classes` are the names a line may be mapped from.
GpioConfig read_gpio_config(const std::string& path, const std::vector<std::string>& classes);

// The requested output lines (all low at start). Without libgpiod the constructor throws a
// sentence saying the sorter was built without it.
class GpioOutputs {
 public:
  explicit GpioOutputs(GpioConfig config);
  ~GpioOutputs();
  GpioOutputs(const GpioOutputs&) = delete;
  GpioOutputs& operator=(const GpioOutputs&) = delete;
  // Drives the class's line high for pulse_ms, then low. Returns "" or the reason it failed.
  std::string pulse(const std::string& cls);

 private:
  struct Impl;
  GpioConfig config_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace finch::apps
