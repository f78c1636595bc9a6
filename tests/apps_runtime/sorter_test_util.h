// Helpers of the sorter tests: a tiny classifier program built in the test (no compiler), images
// written with stb_image_write, and the runners (finch_run, sorter) started as processes —
// through the cross build's emulator (qemu-aarch64) when there is one.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/graph.h"
#include "runtime/program_file.h"

extern char** environ;

namespace finch::test {

// conv 3×3 3→4 (relu) → flatten → linear 4·H·W → 3 over a [1, 3, 8, 8] input, with the meta a
// trained program carries (mean/std and class names).
inline runtime::Graph tiny_classifier(uint32_t seed = 7) {
  using runtime::Node;
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1, 1);
  auto rand_tensor = [&](Shape s, float scale) {
    Tensor t = empty(s, DType::f32);
    for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = scale * u(rng);
    return t;
  };
  runtime::Graph g;
  g.meta["precision"] = "fp32";
  g.meta["model"] = "tiny";
  g.meta["mean"] = std::vector<float>{0.5f, 0.4f, 0.3f};
  g.meta["std"] = std::vector<float>{0.25f, 0.2f, 0.3f};
  g.meta["classes"] = std::vector<std::string>{"bottle", "can", "glass"};
  auto act = [&](const char* name, Shape s) { return g.add_value({name, std::move(s), DType::f32, std::nullopt, {}}); };
  auto cst = [&](const char* name, Shape s, float scale) {
    return g.add_value({name, s, DType::f32, std::nullopt, rand_tensor(s, scale)});
  };
  const int32_t x = act("input", {1, 3, 8, 8}), c = act("conv.out", {1, 4, 8, 8});
  const int32_t f = act("flat.out", {1, 256}), y = act("output", {1, 3});
  Node conv{"conv2d", "conv", {x, cst("conv.weight", {4, 3, 3, 3}, 0.5f), cst("conv.bias", {4}, 0.1f)}, {c}};
  conv.attrs = {{"stride", {1, 1}}, {"padding", {1, 1}}, {"dilation", {1, 1}}, {"groups", 1}, {"act", "relu"}};
  g.nodes.push_back(conv);
  Node fl{"flatten", "flatten", {c}, {f}};
  fl.attrs = {{"start_dim", 1}, {"end_dim", -1}};
  g.nodes.push_back(fl);
  Node fc{"linear", "fc", {f, cst("fc.weight", {3, 256}, 0.3f), cst("fc.bias", {3}, 0.1f)}, {y}};
  fc.attrs = {{"act", "none"}};
  g.nodes.push_back(fc);
  g.inputs = {x};
  g.outputs = {y};
  return g;
}

inline std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

// The program's path: FINCH_BIN_DIR/name, behind the emulator when cross-built.
inline std::vector<std::string> command(const std::string& name, const std::vector<std::string>& args) {
  std::vector<std::string> argv;
  std::istringstream emu(FINCH_EMULATOR);
  for (std::string w; emu >> w;) argv.push_back(w);
  argv.push_back(std::string(FINCH_BIN_DIR) + "/" + name);
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

// Starts argv with stdout/stderr to the given files (and stdin from `in`, or /dev/null).
inline pid_t spawn(const std::vector<std::string>& argv, const std::string& out, const std::string& err,
                   const std::string& in = "/dev/null") {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, in.c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<std::string> copy = argv;
  std::vector<char*> p;
  for (auto& a : copy) p.push_back(a.data());
  p.push_back(nullptr);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, p[0], &fa, nullptr, p.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  return rc == 0 ? pid : -1;
}

inline int wait_exit(pid_t pid) {
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

struct RunResult {
  int code = -1;
  std::string out, err;
};

// Runs a program to its end in `dir` (files out.txt / err.txt there) and returns what it printed.
inline RunResult run_tool(const std::string& name, const std::vector<std::string>& args, const std::string& dir,
                    const std::string& in = "/dev/null") {
  const std::string out = dir + "/out.txt", err = dir + "/err.txt";
  RunResult r;
  const pid_t pid = spawn(command(name, args), out, err, in);
  if (pid < 0) return r;
  r.code = wait_exit(pid);
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

inline std::vector<nlohmann::json> json_lines(const std::string& text) {
  std::vector<nlohmann::json> v;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) v.push_back(nlohmann::json::parse(line));
  return v;
}

// Waits until pred() holds (true) or `seconds` pass (false); slow under qemu, hence generous.
template <typename Pred>
bool wait_for(Pred pred, double seconds = 60) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return pred();
}

}  // namespace finch::test
