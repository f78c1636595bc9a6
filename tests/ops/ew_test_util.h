// Shared helpers for the elementwise/activation kernel tests: per-target loops, random tensors,
// NaN-aware tolerance comparisons.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include <hwy/targets.h>

#include "framework/random.h"
#include "framework/tensor.h"

namespace finch::test {

// Runs fn once per Highway target compiled in and supported by this CPU.
inline void for_each_target(const std::function<void()>& fn) {
  for (int64_t t : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(t);
    SCOPED_TRACE(hwy::TargetName(t));
    fn();
  }
  hwy::SetSupportedTargetsForTest(0);
}

// Sizes that hit every tail: 1–10, powers of two ±1 up to 257, and one multi-chunk size.
inline std::vector<int64_t> edge_sizes() {
  std::vector<int64_t> s;
  for (int64_t i = 1; i <= 10; ++i) s.push_back(i);
  for (int64_t p : {15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 255, 256, 257}) s.push_back(p);
  s.push_back(100003);
  return s;
}

inline Tensor random_tensor(const Shape& shape, uint64_t seed, double scale = 1.0,
                            double shift = 0.0, DType dtype = DType::f32) {
  Generator g(seed);
  Tensor t = randn(shape, g, DType::f64);
  double* p = t.data<double>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = p[i] * scale + shift;
  return t.to(dtype);
}

// Every element within atol + rtol·|ref|; NaN must meet NaN, ±inf must meet the same inf.
inline void expect_close(const Tensor& got, const Tensor& ref, double atol, double rtol,
                         const std::string& what) {
  ASSERT_EQ(got.shape(), ref.shape()) << what;
  const auto g = got.to_vector<double>();
  const auto r = ref.to_vector<double>();
  int reported = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    bool ok;
    if (std::isnan(r[i])) ok = std::isnan(g[i]);
    else if (std::isinf(r[i])) ok = g[i] == r[i];
    else ok = std::fabs(g[i] - r[i]) <= atol + rtol * std::fabs(r[i]);
    if (!ok && reported++ < 5)
      ADD_FAILURE() << what << ": element " << i << " got " << g[i] << " expected " << r[i];
  }
}

}  // namespace finch::test
