// Shared by the apps tests: run a built program with its output captured, and write tiny
// learnable datasets in the published formats (IDX for Fashion-MNIST, .bin records for CIFAR-10).
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "data/idx.h"
#include "framework/random.h"
#include "framework/tensor.h"

namespace finch::test {

namespace fs = std::filesystem;

inline std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

struct RunResult {
  int code;
  std::string out, err;
};

// Runs build/bin/<program> with `args`, stdout and stderr captured in files under `dir`.
inline RunResult run_program(const std::string& program, const std::string& args, const fs::path& dir) {
  const std::string o = (dir / "stdout.txt").string(), e = (dir / "stderr.txt").string();
  const std::string cmd = std::string(FINCH_BIN_DIR) + "/" + program + " " + args + " > " + o + " 2> " + e;
  const int status = std::system(cmd.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(o), slurp(e)};
}

inline RunResult run(const std::string& args, const fs::path& dir) { return run_program("train_cifar", args, dir); }

// A refused command: a non-zero exit and one line on stderr that contains `needle`, with no
// internal error text.
inline void expect_one_sentence(const RunResult& r, const std::string& needle) {
  EXPECT_NE(r.code, 0) << r.out;
  EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_EQ(r.err.find("internal error"), std::string::npos) << r.err;
}

// A learnable toy problem: class k has a bright 4×4 patch at a class-specific place plus noise.
inline Tensor toy_images(int64_t n, int64_t c, int64_t h, int64_t w, const std::vector<int64_t>& labels, uint64_t seed) {
  Generator g(seed);
  Tensor x = empty({n, c, h, w}, DType::u8);
  uint8_t* p = x.data<uint8_t>();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t y = 0; y < h; ++y)
        for (int64_t xx = 0; xx < w; ++xx) {
          const int64_t k = labels[size_t(i)];
          const int64_t py = 4 + (k / 5) * 12, px = 2 + (k % 5) * 5;
          const bool on = y >= py && y < py + 4 && xx >= px && xx < px + 4;
          p[((i * c + ch) * h + y) * w + xx] = uint8_t(on ? 200 + g.below(50) : g.below(40));
        }
  return x;
}

inline std::vector<int64_t> toy_labels(int64_t n) {
  std::vector<int64_t> y;
  for (int64_t i = 0; i < n; ++i) y.push_back((i * 7) % 10);
  return y;
}

inline void write_fashion(const fs::path& dir, int64_t n_train, int64_t n_test) {
  fs::create_directories(dir);
  for (auto [prefix, n, seed] : {std::tuple{"train", n_train, 1u}, std::tuple{"t10k", n_test, 2u}}) {
    const auto y = toy_labels(n);
    Tensor x = toy_images(n, 1, 28, 28, y, seed).reshape({n, 28, 28});
    std::vector<uint8_t> yb(y.begin(), y.end());
    data::write_idx((dir / (std::string(prefix) + "-images-idx3-ubyte.gz")).string(), x, true);
    data::write_idx((dir / (std::string(prefix) + "-labels-idx1-ubyte")).string(), from_vector<uint8_t>(yb, {n}));
  }
}

inline void write_cifar10(const fs::path& dir, int64_t per_batch, int64_t n_test) {
  fs::create_directories(dir);
  auto write = [&](const std::string& name, int64_t n, uint64_t seed) {
    const auto y = toy_labels(n);
    Tensor x = toy_images(n, 3, 32, 32, y, seed);
    std::ofstream f(dir / name, std::ios::binary);
    for (int64_t i = 0; i < n; ++i) {
      f.put(char(y[size_t(i)]));
      f.write(reinterpret_cast<const char*>(x.data<uint8_t>() + i * 3072), 3072);
    }
  };
  for (int b = 1; b <= 5; ++b) write("data_batch_" + std::to_string(b) + ".bin", per_batch, 10u + b);
  write("test_batch.bin", n_test, 20u);
}

// One folder per test suite: the toy Fashion-MNIST (512 training images, `n_test` test images) in
// `root`/fm and `model` trained on it in `root`/float by train_cifar, without augmentation (flips
// and crops would move the toy classes' patches). Returns train_cifar's result.
inline RunResult train_suite_model(const fs::path& root, const std::string& model, int epochs, int64_t n_test) {
  fs::remove_all(root);
  fs::create_directories(root);
  write_fashion(root / "fm", 512, n_test);
  return run("--model " + model + " --dataset fashion-mnist --data " + (root / "fm").string() +
                 " --threads 2 --epochs " + std::to_string(epochs) + " --no-augment --batch-size 32 --seed 1 --out " +
                 (root / "float").string(),
             root);
}

}  // namespace finch::test
