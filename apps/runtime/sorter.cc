// sorter: the deployed sorting machine's program. Classifies photos with a .finch program and
// moves each file into its class's bin folder, one JSON line per decision; links the runtime only.
//
//   sorter --program P.finch --bins DIR (--list FILES.txt | --watch DIR | -) [options]
//   --list F           sort the files named in F (one path per line; empty lines and '#' skipped)
//   --watch DIR        sort the files already in DIR, then every file that appears there
//                      (inotify: closed after writing, or renamed in; names starting with '.' are
//                      ignored, so writers should write '.x.jpg' and rename it to 'x.jpg'); runs
//                      until SIGINT/SIGTERM, which finish the current file first
//   -                  sort the paths read from stdin, one per line, until end of input
//   --bins DIR         DIR/<class>/ per class and DIR/reject/ (confidence under --threshold, or a
//                      file that is not a readable image); DIR/.sorter/ holds the move protocol's
//                      state (sorter_files.h)
//   --threshold X      minimum confidence (softmax probability of the top class), 0..1; default 0.5
//   --copy             copy into the bins and keep the originals (a restarted sorter skips
//                      the files it already copied)
//   --move-by-copy     copy + fsync + unlink even when a rename would do (file systems whose rename
//                      is not trusted; the tests of the copy path)
//   --log F            also append every JSON line to F (flushed per line)
//   --actuator-cmd 'CMD {class}'   run CMD per decision ({class}, {file}, {confidence} replaced;
//                      no shell); --actuator-timeout-ms N (default 5000) kills a hanging one
//   --gpio-config F    pulse a GPIO line per class (format in sorter_actuator.h; needs libgpiod)
//   --threads N        compute threads (default: all cores)
//
// Each JSON line: {"file", "class" (top class, null for a bad file), "confidence", "latency_ms"
// (decode + preprocess + classify), "bin", "dest", and "reason" / "actuator" / "gpio" when
// something was rejected or failed}. The line is written after the file has moved, so a sorter
// killed between the two leaves a moved file without its line (never a line without its move).
// A bad image, a missing file or a failing actuator is logged and the sorter goes on.
#include <poll.h>
#include <signal.h>
#include <sys/inotify.h>
#include <unistd.h>
#include <fcntl.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "apps/lib/user_errors.h"
#include "apps/runtime/cli_args.h"
#include "apps/runtime/image_input.h"
#include "apps/runtime/sorter_actuator.h"
#include "apps/runtime/sorter_files.h"
#include "framework/error.h"
#include "framework/parallel.h"
#include "runtime/executor.h"
#include "runtime/program_file.h"

namespace {

using namespace finch;
using namespace finch::apps;
namespace fs = std::filesystem;

volatile std::sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

struct Args {
  std::string program, list, watch, bins, log, actuator_cmd, gpio_config;
  bool from_stdin = false, copy = false, move_by_copy = false;
  double threshold = 0.5;
  int64_t threads = 0, actuator_timeout_ms = 5000;
};

constexpr const char* kUsage =
    "usage: sorter --program P.finch --bins DIR (--list FILES.txt | --watch DIR | -) [--threshold X] [--copy] "
    "[--move-by-copy] [--log F] [--actuator-cmd 'CMD {class}'] [--actuator-timeout-ms N] [--gpio-config F] "
    "[--threads N]";

Args parse_args(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string s = argv[i];
    auto value = [&] { return flag_value(argc, argv, i); };
    if (s == "--program") a.program = value();
    else if (s == "--list") a.list = value();
    else if (s == "--watch") a.watch = value();
    else if (s == "-") a.from_stdin = true;
    else if (s == "--bins") a.bins = value();
    else if (s == "--log") a.log = value();
    else if (s == "--copy") a.copy = true;
    else if (s == "--move-by-copy") a.move_by_copy = true;
    else if (s == "--actuator-cmd") a.actuator_cmd = value();
    else if (s == "--actuator-timeout-ms") a.actuator_timeout_ms = parse_int_flag(s, value(), 1, 3600000);
    else if (s == "--gpio-config") a.gpio_config = value();
    else if (s == "--threads") a.threads = parse_int_flag(s, value(), 0, 4096);
    else if (s == "--threshold") {
      const std::string v = value();
      char* end = nullptr;
      a.threshold = std::strtod(v.c_str(), &end);
      if (v.empty() || *end != '\0' || !std::isfinite(a.threshold) || a.threshold < 0 || a.threshold > 1)
        fail("--threshold: expected a confidence between 0 and 1, found '", v, "'");
    } else if (s == "--help" || s == "-h") {
      std::printf("%s\n", kUsage);
      std::exit(0);
    } else {
      fail("unknown argument ", s, " (", kUsage, ")");
    }
  }
  if (a.program.empty() || a.bins.empty()) fail("--program and --bins are required (", kUsage, ")");
  const int sources = int(!a.list.empty()) + int(!a.watch.empty()) + int(a.from_stdin);
  if (sources != 1)
    fail("expected exactly one source (--list FILES.txt, --watch DIR or - for stdin), found ", sources);
  if (!a.watch.empty() && !fs::is_directory(a.watch)) fail("--watch: ", a.watch, " is not a folder");
  return a;
}

// Class names become folder names: refuse the ones that could escape or collide with BINS.
void check_bin_names(const std::vector<std::string>& classes, const std::string& program) {
  std::set<std::string> seen;
  for (const std::string& c : classes) {
    if (c.empty() || c == "." || c == ".." || c[0] == '.' || c.find('/') != std::string::npos ||
        c.find('\0') != std::string::npos || c == "reject")
      fail(program, ": class name '", c, "' cannot be a bin folder name (expected no '/', no leading '.', not 'reject')");
    if (!seen.insert(c).second) fail(program, ": class name '", c, "' appears twice; expected one bin per class");
  }
}

// The next path to sort, or false when the source has ended (or a signal asked to stop).
using Source = std::function<bool(std::string&)>;

Source line_source(std::istream& in) {
  return [&in](std::string& path) {
    std::string line;
    while (!g_stop && std::getline(in, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty() || line[0] == '#') continue;
      path = line;
      return true;
    }
    return false;
  };
}

bool visible_file(const fs::path& p) {
  const std::string name = p.filename().string();
  std::error_code ec;
  return !name.empty() && name[0] != '.' && fs::is_regular_file(p, ec);
}

// Files already in `dir` (sorted by name), then the ones inotify reports closed-after-write or
// renamed in. The watch is set before the scan, so a file arriving during the scan is not missed;
// `queued` keeps it from being sorted twice.
class WatchSource {
 public:
  explicit WatchSource(const std::string& dir) : dir_(dir) {
    fd_ = ::inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (fd_ < 0) fail("--watch: cannot start inotify (", std::strerror(errno), ")");
    if (::inotify_add_watch(fd_, dir.c_str(), IN_CLOSE_WRITE | IN_MOVED_TO) < 0)
      fail("--watch: cannot watch ", dir, " (", std::strerror(errno), ")");
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir))
      if (visible_file(e.path())) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    for (const auto& n : names) push(n);
  }
  ~WatchSource() { ::close(fd_); }
  bool next(std::string& path) {
    while (!g_stop) {
      if (!queue_.empty()) {
        const std::string name = queue_.front();
        queue_.pop_front();
        queued_.erase(name);
        path = (fs::path(dir_) / name).string();
        return true;
      }
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 200) <= 0) continue;  // timeout or EINTR: check g_stop again
      alignas(inotify_event) char buf[1 << 16];
      const ssize_t n = ::read(fd_, buf, sizeof buf);
      for (ssize_t off = 0; n > 0 && off < n;) {
        const auto* ev = reinterpret_cast<const inotify_event*>(buf + off);
        if (ev->len > 0 && visible_file(fs::path(dir_) / ev->name)) push(ev->name);
        off += ssize_t(sizeof(inotify_event) + ev->len);
      }
    }
    return false;
  }

 private:
  void push(const std::string& name) {
    if (queued_.insert(name).second) queue_.push_back(name);
  }
  std::string dir_;
  int fd_ = -1;
  std::deque<std::string> queue_;
  std::set<std::string> queued_;
};

// One line to stdout and to the log, each flushed: the log is opened O_APPEND and every line is
// one write(2), so concurrent readers (tail -f) never see half a line.
class Output {
 public:
  explicit Output(const std::string& log) {
    if (log.empty()) return;
    fd_ = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd_ < 0) fail("--log: cannot open ", log, " for appending (", std::strerror(errno), ")");
  }
  ~Output() {
    if (fd_ >= 0) ::close(fd_);
  }
  void line(const nlohmann::json& j) {
    const std::string s = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    std::fwrite(s.data(), 1, s.size(), stdout);
    std::fflush(stdout);
    if (fd_ >= 0 && ::write(fd_, s.data(), s.size()) != ssize_t(s.size()))
      fail("--log: cannot append to the decision log (", std::strerror(errno), ")");
  }

 private:
  int fd_ = -1;
};

int run(int argc, char** argv) {
  const Args a = parse_args(argc, argv);
  if (a.threads > 0) set_num_threads(int(a.threads));
  runtime::Program program(runtime::read_program(a.program), a.program, runtime::ProgramOptions{});
  const ImageInput in = image_input_of(program.graph(), a.program);
  const runtime::Value& out = program.graph().values[size_t(program.graph().outputs[0])];
  const int64_t n_classes = out.shape.empty() ? 0 : out.shape.back();
  std::vector<std::string> names = in.classes;
  for (int64_t k = int64_t(names.size()); k < n_classes; ++k) names.push_back(std::to_string(k));
  check_bin_names(names, a.program);
  std::vector<std::string> bins = names;
  bins.push_back("reject");

  std::vector<std::string> actuator;
  if (!a.actuator_cmd.empty()) actuator = split_command(a.actuator_cmd);
  std::unique_ptr<GpioOutputs> gpio;
  if (!a.gpio_config.empty()) gpio = std::make_unique<GpioOutputs>(read_gpio_config(a.gpio_config, bins));
  Output output(a.log);
  SortedFiles files(a.bins, a.copy, a.move_by_copy);
  if (!files.recovered().empty()) std::fprintf(stderr, "sorter: recovery: %s\n", files.recovered().c_str());

  struct sigaction sa {};
  sa.sa_handler = on_signal;  // no SA_RESTART: a blocking read of stdin returns and the loop ends
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);

  std::ifstream list_file;
  std::unique_ptr<WatchSource> watch;
  Source next;
  if (!a.list.empty()) {
    list_file.open(a.list);
    if (!list_file) fail("--list: cannot open ", a.list);
    next = line_source(list_file);
  } else if (!a.watch.empty()) {
    watch = std::make_unique<WatchSource>(a.watch);
    next = [&watch](std::string& p) { return watch->next(p); };
  } else {
    next = line_source(std::cin);
  }
  std::fprintf(stderr, "sorter: %s (%lld classes, input %s), bins %s, threshold %g\n", a.program.c_str(),
               static_cast<long long>(n_classes), shape_str(in.shape).c_str(), a.bins.c_str(), a.threshold);

  for (std::string path; !g_stop && next(path);) {
    nlohmann::json j{{"file", path}};
    std::error_code ec;
    if (a.copy && files.already_copied(path)) {
      j.update({{"class", nullptr}, {"skipped", "already copied into the bins by an earlier run"}});
      output.line(j);
      continue;
    }
    if (!fs::is_regular_file(path, ec)) {
      // Nothing to move: a list may name a file an earlier (killed) run already sorted.
      j.update({{"class", nullptr}, {"skipped", fs::exists(path, ec) ? "not a regular file" : "no such file"}});
      output.line(j);
      continue;
    }
    const auto t0 = std::chrono::steady_clock::now();
    std::string bin = "reject";
    try {
      const Tensor x = load_image(path, in);
      const Tensor y = program.run(x).to(DType::f32).contiguous();
      const Decision d = decide(y.data<float>(), y.numel(), in);
      j["class"] = names.at(size_t(d.index));
      j["confidence"] = d.confidence;
      if (d.confidence >= a.threshold) bin = names[size_t(d.index)];
      else {
        char why[96];
        std::snprintf(why, sizeof why, "confidence %.4g under the threshold %.4g", double(d.confidence), a.threshold);
        j["reason"] = why;
      }
    } catch (const Error& e) {
      j["class"] = nullptr;
      j["confidence"] = 0.0;
      j["reason"] = e.what();
    }
    j["latency_ms"] = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    j["bin"] = bin;
    // The gate moves before the file: the physical item is in front of the camera now.
    if (!actuator.empty()) {
      const std::string why = run_actuator(
          actuator, {{"class", bin}, {"file", path}, {"confidence", j["confidence"].dump()}}, int(a.actuator_timeout_ms));
      if (!why.empty()) j["actuator"] = why;
    }
    if (gpio)
      if (const std::string why = gpio->pulse(bin); !why.empty()) j["gpio"] = why;
    try {
      j["dest"] = files.place(path, bin);
    } catch (const Error& e) {
      j["dest"] = nullptr;
      j["move_error"] = e.what();
    }
    output.line(j);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return finch::apps::run_with_user_errors("sorter", [&] { return run(argc, argv); });
}
