// The sorter's actuators: spawned commands and libgpiod output lines (see sorter_actuator.h).
#include "apps/runtime/sorter_actuator.h"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "framework/error.h"

#ifdef FINCH_HAVE_GPIOD
#include <gpiod.h>
#endif

extern char** environ;

namespace finch::apps {

std::vector<std::string> split_command(const std::string& text) {
  std::vector<std::string> words;
  std::string cur;
  bool in_word = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\'' || c == '"') {
      const size_t end = text.find(c, i + 1);
      if (end == std::string::npos) fail("--actuator-cmd: unterminated ", c, " quote in '", text, "'");
      cur += text.substr(i + 1, end - i - 1);
      in_word = true;
      i = end;
    } else if (c == ' ' || c == '\t') {
      if (in_word) words.push_back(cur);
      cur.clear();
      in_word = false;
    } else {
      cur += c;
      in_word = true;
    }
  }
  if (in_word) words.push_back(cur);
  if (words.empty() || words[0].empty()) fail("--actuator-cmd: expected a command such as 'gate {class}', found '", text, "'");
  return words;
}

std::string run_actuator(const std::vector<std::string>& words, const std::map<std::string, std::string>& vars,
                         int timeout_ms) {
  std::vector<std::string> args;
  for (std::string w : words) {
    for (const auto& [key, value] : vars) {
      const std::string token = "{" + key + "}";
      for (size_t at = w.find(token); at != std::string::npos; at = w.find(token, at + value.size()))
        w.replace(at, token.size(), value);
    }
    args.push_back(std::move(w));
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  // posix_spawnp, not fork + exec from a process with a thread pool, and never a shell.
  const int rc = ::posix_spawnp(&pid, argv[0], nullptr, nullptr, argv.data(), environ);
  if (rc != 0) return "cannot start " + args[0] + ": " + std::strerror(rc);
  const auto start = std::chrono::steady_clock::now();
  for (;;) {
    int status = 0;
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      if (WIFEXITED(status)) return WEXITSTATUS(status) == 0 ? "" : "exit status " + std::to_string(WEXITSTATUS(status));
      if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
      return "stopped";
    }
    if (r < 0 && errno != EINTR) return std::string("waitpid failed: ") + std::strerror(errno);
    if (std::chrono::steady_clock::now() - start > std::chrono::milliseconds(timeout_ms)) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return "killed after " + std::to_string(timeout_ms) + " ms";
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

namespace {

// A whole decimal integer in [lo, hi], or an error naming the file and line.
int config_int(const std::string& s, int lo, int hi, const std::string& where, const char* what) {
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || errno == ERANGE || v < lo || v > hi)
    fail(where, ": expected ", what, " as an integer in ", lo, "..", hi, ", found '", s, "'");
  return int(v);
}

}  // namespace

GpioConfig read_gpio_config(const std::string& path, const std::vector<std::string>& classes) {
  std::ifstream f(path);
  if (!f) fail(path, ": cannot open the GPIO config file");
  GpioConfig c;
  std::set<int> used;
  std::string line;
  for (int n = 1; std::getline(f, line); ++n) {
    const std::string where = path + " line " + std::to_string(n);
    if (const size_t hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    std::istringstream in(line);
    std::vector<std::string> w;
    for (std::string s; in >> s;) w.push_back(s);
    if (w.empty()) continue;
    if (w[0] == "chip" && w.size() == 2) {
      c.chip = w[1];
    } else if (w[0] == "pulse_ms" && w.size() == 2) {
      c.pulse_ms = config_int(w[1], 1, 60000, where, "pulse_ms");
    } else if (w[0] == "line" && w.size() == 3) {
      bool known = false;
      for (const auto& k : classes) known = known || k == w[1];
      if (!known) fail(where, ": expected one of the program's classes or 'reject', found class '", w[1], "'");
      if (c.lines.count(w[1])) fail(where, ": class '", w[1], "' has a line already");
      const int off = config_int(w[2], 0, 1023, where, "a line offset");
      if (!used.insert(off).second) fail(where, ": line ", off, " is mapped to another class already");
      c.lines[w[1]] = off;
    } else {
      fail(where, ": expected 'chip NAME', 'pulse_ms N' or 'line CLASS OFFSET', found '", line, "'");
    }
  }
  if (c.lines.empty()) fail(path, ": expected at least one 'line CLASS OFFSET' entry, found none");
  return c;
}

#ifdef FINCH_HAVE_GPIOD
struct GpioOutputs::Impl {
  gpiod_chip* chip = nullptr;
  std::map<std::string, gpiod_line*> lines;
};

GpioOutputs::GpioOutputs(GpioConfig config) : config_(std::move(config)), impl_(std::make_unique<Impl>()) {
  impl_->chip = ::gpiod_chip_open_lookup(config_.chip.c_str());
  if (!impl_->chip) fail("GPIO chip '", config_.chip, "': cannot open it (", std::strerror(errno), ")");
  for (const auto& [cls, off] : config_.lines) {
    gpiod_line* l = ::gpiod_chip_get_line(impl_->chip, unsigned(off));
    if (!l || ::gpiod_line_request_output(l, "finch-sorter", 0) != 0) {
      const std::string why = std::strerror(errno);
      ::gpiod_chip_close(impl_->chip);  // releases the lines requested so far
      fail("GPIO chip '", config_.chip, "' line ", off, " (class ", cls, "): cannot request it as an output (", why, ")");
    }
    impl_->lines[cls] = l;
  }
}

GpioOutputs::~GpioOutputs() {
  if (impl_ && impl_->chip) ::gpiod_chip_close(impl_->chip);
}

std::string GpioOutputs::pulse(const std::string& cls) {
  const auto it = impl_->lines.find(cls);
  if (it == impl_->lines.end()) return "";
  if (::gpiod_line_set_value(it->second, 1) != 0) return std::string("cannot set the line: ") + std::strerror(errno);
  std::this_thread::sleep_for(std::chrono::milliseconds(config_.pulse_ms));
  if (::gpiod_line_set_value(it->second, 0) != 0) return std::string("cannot clear the line: ") + std::strerror(errno);
  return "";
}
#else
struct GpioOutputs::Impl {};

GpioOutputs::GpioOutputs(GpioConfig config) : config_(std::move(config)) {
  fail("--gpio-config: this sorter was built without libgpiod (install libgpiod-dev and rebuild)");
}

GpioOutputs::~GpioOutputs() = default;

std::string GpioOutputs::pulse(const std::string&) { return ""; }
#endif

}  // namespace finch::apps
