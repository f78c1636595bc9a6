// Helpers of the optimized int8 kernel tests (test_qs8_conv.cc, test_qs8_linear.cc): random
// requantization parameters that reach the edges of the spec, and a loop over every compiled
// Highway target.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "tests/hwy_targets.h"
#include "hwy/highway.h"
#include "hwy/targets.h"
#include "kernels/requant.h"
#include "tests/runtime/reference_test_util.h"

namespace finch::test {

// n floats uniform in [-a, a).
inline std::vector<float> uniform(std::mt19937& rng, size_t n, float a) {
  std::vector<float> v(n);
  std::uniform_real_distribution<float> u(-a, a);
  for (auto& x : v) x = u(rng);
  return v;
}

// A float's bit pattern: bit-exactness checks that also tell -0 from +0 and compare NaNs.
inline uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// Output parameters of one case: dtype, zero point, clamp range (sometimes narrowed as a fused
// ReLU/ReLU6 would), and per-channel multipliers with small, large, zero and out-of-range shifts.
struct QOut {
  DType dtype = DType::i8;
  int32_t z = 0, qmin = -128, qmax = 127;
  std::vector<quant::FixedPointMultiplier> m;
};

inline QOut random_qout(std::mt19937& rng, int64_t OC) {
  QOut o;
  o.dtype = rng() % 2 ? DType::u8 : DType::i8;
  const int32_t lo = code_lo(o.dtype), hi = code_hi(o.dtype);
  o.z = std::uniform_int_distribution<int32_t>(lo, hi)(rng);
  if (rng() % 4 == 0) o.z = rng() % 2 ? lo : hi;
  o.qmin = lo, o.qmax = hi;
  if (rng() % 3 == 0) o.qmin = o.z;                                                                // ReLU
  if (rng() % 4 == 0) o.qmax = std::uniform_int_distribution<int32_t>(o.qmin, hi)(rng);          // ReLU6-like
  std::uniform_real_distribution<double> e(-22, 2);  // real multipliers 2^-22 .. 2^2
  for (int64_t c = 0; c < OC; ++c) {
    const int kind = int(rng() % 12);
    if (kind == 0)
      o.m.push_back({0, 0});  // m == 0: every output is z
    else if (kind == 1)
      o.m.push_back({int32_t((1u << 30) + rng() % (1u << 30)), 33 + int(rng() % 40)});  // n = 64 .. 103
    else if (kind == 2)
      o.m.push_back({int32_t((1u << 30) + rng() % (1u << 30)), -31 - int(rng() % 3)});  // n <= 0
    else if (kind == 3)
      o.m.push_back(quant::quantize_multiplier(std::exp2(-int(rng() % 9))));  // exact: ties happen
    else
      o.m.push_back(quant::quantize_multiplier(std::exp2(e(rng))));
  }
  return o;
}

// Random codes of dtype t; sometimes all at one extreme (the largest products).
inline Tensor random_code_tensor(std::mt19937& rng, const Shape& shape, DType t, int mode) {
  const int64_t n = shape_numel(shape);
  std::vector<int32_t> v;
  if (mode == 1)
    v.assign(size_t(n), code_hi(t));
  else if (mode == 2)
    v.assign(size_t(n), code_lo(t));
  else
    v = random_codes(rng, n, code_lo(t), code_hi(t));
  return codes(v, shape, t);
}

// Runs body() once per compiled and supported Highway target (then restores the default).
template <class Body>
void for_each_target(const Body& body) {
  const auto targets = ::finch::test::hwy_targets_to_test();
  ASSERT_FALSE(targets.empty());
  for (uint32_t target : targets) {
    hwy::SetSupportedTargetsForTest(target);
    SCOPED_TRACE(hwy::TargetName(target));
    body(target);
    if (::testing::Test::HasFatalFailure()) break;
  }
  hwy::SetSupportedTargetsForTest(0);
}

}  // namespace finch::test
