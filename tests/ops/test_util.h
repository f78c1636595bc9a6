// Shared helpers for the ops kernel tests: the every-Highway-target loop, edge sizes, random
// tensors; comparisons come from tests/golden/golden.h (expect_close, all_close).
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include <hwy/targets.h>

#include "tests/hwy_targets.h"
#include "framework/random.h"
#include "framework/tensor.h"
#include "tests/golden/golden.h"

namespace finch::test {

// Runs fn once per Highway target compiled in and supported by this CPU.
inline void for_each_target(const std::function<void()>& fn) {
  for (int64_t t : ::finch::test::hwy_targets_to_test()) {
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

// randn(shape) from `gen`; when `strided`, the values sit in a non-contiguous view (every other
// element along the last dim of a twice-as-wide tensor), to exercise the strided paths.
inline Tensor randn_maybe_strided(const Shape& shape, Generator& gen, DType dt, bool strided) {
  if (!strided) return randn(shape, gen, dt);
  Shape wide = shape;
  wide.back() *= 2;
  return randn(wide, gen, dt).slice(int64_t(shape.size()) - 1, 0, wide.back(), 2);
}

}  // namespace finch::test
