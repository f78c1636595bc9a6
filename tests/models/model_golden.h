// Test helpers for the model zoo: the deterministic golden weights (the C++ twin of
// golden_values() in tests/golden/make_model_goldens.py), goldens' paths, and a tolerance check.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "autograd/nn/module.h"
#include "framework/error.h"
#include "framework/tensor.h"

namespace finch::test {

inline constexpr uint64_t kGoldenSeed = 2024;

inline uint64_t splitmix64(uint64_t x) {
  uint64_t z = x + 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Entry k of the state dict, called `name`, with `shape`: small integers q in [-128, 127] from
// the hash of (seed, k, element), scaled by powers of two so every value is exact in fp32.
inline Tensor golden_values(uint64_t k, const std::string& name, const Shape& shape) {
  const int64_t n = shape_numel(shape);
  const uint64_t base = kGoldenSeed * 0x1000000000000ull + (k + 1) * 0x100000000ull;
  auto ends_with = [&](const std::string& s) {
    return name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0;
  };
  double weight_scale = 0;
  if (shape.size() > 1) {
    int e = 0;
    std::frexp(std::sqrt(6.0 / double(n / shape[0])) / 128.0, &e);
    weight_scale = std::ldexp(1.0, e - 1);  // the largest power of two <= sqrt(6/fan_in)/128
  }
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const double q = double(int64_t(splitmix64(base + uint64_t(i)) >> 56) - 128);
    if (ends_with("running_var")) v[size_t(i)] = float(1.0 + (q + 128) / 256.0);
    else if (ends_with("running_mean") || ends_with("bias")) v[size_t(i)] = float(q / 512.0);
    else if (shape.size() == 1) v[size_t(i)] = float(1.0 + q / 512.0);
    else v[size_t(i)] = float(q * weight_scale);
  }
  return from_vector(v, shape);
}

// Loads the golden weights into `model` (every entry but the num_batches_tracked counters).
inline void load_golden_weights(nn::Module& model) {
  nn::StateDict sd;
  uint64_t k = 0;
  for (const auto& [name, t] : model.state_dict()) {
    if (name.size() < 19 || name.substr(name.size() - 19) != "num_batches_tracked")
      sd.insert(name, golden_values(k, name, t.shape()));
    ++k;
  }
  model.load_state_dict(sd, /*strict=*/false);
}

inline std::string model_golden_path(const std::string& file) {
  return std::string(FINCH_TEST_DATA_DIR) + "/golden/data/" + file;
}

// tests/golden/data/model_keys.json: each zoo config's parameter and buffer names with their
// shapes as their PyTorch twins name them (tests/golden/make_model_goldens.py), read once.
inline const nlohmann::json& model_key_goldens() {
  static const nlohmann::json j = [] {
    std::ifstream f(model_golden_path("model_keys.json"));
    if (!f) fail("cannot open model_keys.json");
    return nlohmann::json::parse(f);
  }();
  return j;
}

// |got - want| <= atol + rtol·|want| elementwise; reports the worst element.
inline void expect_close(const Tensor& got, const Tensor& want, const std::string& what,
                         double rtol = 1e-4, double atol = 1e-5) {
  ASSERT_EQ(got.shape(), want.shape()) << what;
  const auto g = got.to_vector<double>(), w = want.to_vector<double>();
  double worst = 0;
  size_t at = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    const double excess = std::fabs(g[i] - w[i]) - (atol + rtol * std::fabs(w[i]));
    if (!(excess <= worst)) worst = excess, at = i;
  }
  EXPECT_LE(worst, 0.0) << what << "[" << at << "]: finch " << g[at] << " vs torch " << w[at];
}

}  // namespace finch::test
