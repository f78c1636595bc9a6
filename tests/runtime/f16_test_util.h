// Helpers of the native fp16 kernel tests: random tensors, the fp16 error bound and a checker
// that counts the outputs outside it.
#pragma once

#include <cmath>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "framework/cpu_features.h"
#include "framework/tensor.h"
#include "ops/elementwise.h"

namespace finch::test {

// Uniform in [lo, hi), f32 (or f16 when dt says so).
inline Tensor uniform(const Shape& s, std::mt19937& rng, float lo = -1.0f, float hi = 1.0f, DType dt = DType::f32) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(size_t(shape_numel(s)));
  for (float& e : v) e = d(rng);
  return from_vector(v, s).to(dt);
}

// The bound on a length-K sum accumulated in f16 with one rounding per multiply-add: each
// partial sum rounds by at most u = 2^-11 of itself, so |y − ref| <= K·u/(1 − K·u)·Σ|x·w|
// (Higham, Accuracy and Stability, eq. 3.5), plus K·2^-24 for products in f16's subnormal range
// and 2^-22·|ref| for the f32 bias add after the widening. `abs_sum` is Σ|x·w| per output (the
// reference run on |x| and |w|).
inline bool within_fp16_bound(float got, float ref, float abs_sum, int64_t K) {
  const double Ku = double(K) * std::ldexp(1.0, -11);
  const double tol = Ku / (1 - Ku) * abs_sum + double(K) * std::ldexp(1.0, -24) + std::ldexp(std::fabs(ref), -22);
  return std::fabs(double(got) - double(ref)) <= tol;
}

// How many outputs lie outside the bound (0 = pass); prints the first few.
inline int64_t fp16_violations(const Tensor& got, const Tensor& ref, const Tensor& abs_sum, int64_t K,
                               const std::string& what) {
  const auto g = got.contiguous().to_vector<float>(), r = ref.contiguous().to_vector<float>();
  const auto a = abs_sum.contiguous().to_vector<float>();
  if (g.size() != r.size() || g.size() != a.size()) return -1;
  int64_t bad = 0;
  for (size_t i = 0; i < g.size(); ++i)
    if (!within_fp16_bound(g[i], r[i], a[i], K) && bad++ < 3)
      std::printf("%s: element %zu: got %.8g, reference %.8g (Σ|x·w| %.6g, K %lld)\n", what.c_str(), i, g[i], r[i],
                  a[i], static_cast<long long>(K));
  return bad;
}

// Back to the answer the environment asks for (FINCH_DISABLE_FP16), as at startup.
inline void restore_fp16() {
  const char* env = std::getenv("FINCH_DISABLE_FP16");
  set_arm_fp16_disabled(env != nullptr && *env != '\0' && std::string(env) != "0");
}

// Runs body once per micro-kernel this CPU can run: the portable one always, and on an ARMv8.2
// FP16 CPU the NEON one too (the portable one is what the runtime never uses there, but it
// keeps the operator's tiling tested on every machine).
template <class F>
void for_each_f16_kernel(F&& body) {
  restore_fp16();
  const bool native = cpu_has_arm_fp16();
  set_arm_fp16_disabled(true);
  body("portable");
  restore_fp16();
  if (native) {
    set_arm_fp16_disabled(false);
    body("neonfp16");
    restore_fp16();
  }
}

}  // namespace finch::test
