// Highway row kernels for attention: a stable softmax over score rows with the mask (as an
// additive 0/−∞ or float bias) and the causal cut fused in (all-masked rows become zeros) and its backward p ⊙ (dp − rowsum(dp ⊙ p)).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "ops/attention.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/attention_hwy.cc"
#include "framework/hwy_kernel.h"  // foreach_target, highway, FINCH_DISPATCH
#include <hwy/contrib/math/math-inl.h>

HWY_BEFORE_NAMESPACE();
namespace finch::ops::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

void SoftmaxRows(int64_t rows, int64_t n, int64_t ld, float* s, const float* bias,
                 int64_t bias_ld, bool causal) {
  const hn::ScalableTag<float> d;
  const int64_t N = int64_t(hn::Lanes(d));
  const float ninf = -std::numeric_limits<float>::infinity();
  for (int64_t r = 0; r < rows; ++r) {
    float* x = s + r * ld;
    // Causal: row r attends keys 0..r only; the rest is written as exact zeros below, which
    // is cheaper than filling −∞ and exponentiating it.
    const int64_t len = causal ? std::min(n, r + 1) : n;
    // Row max of s + bias (the bias is added in the same pass and stored back), subtracted
    // below so exp never overflows: the stable softmax.
    auto vmax = hn::Set(d, ninf);
    int64_t j = 0;
    float m = ninf;
    if (bias) {
      const float* b = bias + r * bias_ld;
      for (; j + N <= len; j += N) {
        const auto v = hn::Add(hn::LoadU(d, x + j), hn::LoadU(d, b + j));
        hn::StoreU(v, d, x + j);
        vmax = hn::Max(vmax, v);
      }
      for (int64_t t = j; t < len; ++t) m = std::max(m, x[t] += b[t]);
    } else {
      for (; j + N <= len; j += N) vmax = hn::Max(vmax, hn::LoadU(d, x + j));
      for (int64_t t = j; t < len; ++t) m = std::max(m, x[t]);
    }
    m = std::max(m, hn::GetLane(hn::MaxOfLanes(d, vmax)));
    if (m == ninf) {  // every key masked: a zero row instead of 0/0 = NaN
      std::memset(x, 0, size_t(n) * sizeof(float));
      continue;
    }
    const auto vm = hn::Set(d, m);
    auto vsum = hn::Zero(d);
    // Exp(−∞) is 0 (Highway's Exp returns 0 below its lower bound), so masked keys drop out.
    for (j = 0; j + N <= len; j += N) {
      const auto e = hn::Exp(d, hn::Sub(hn::LoadU(d, x + j), vm));
      hn::StoreU(e, d, x + j);
      vsum = hn::Add(vsum, e);
    }
    if (j < len) {  // tail through a −∞-padded buffer: same arithmetic, pads contribute 0
      HWY_ALIGN float buf[HWY_MAX_BYTES / sizeof(float)];
      for (int64_t t = 0; t < N; ++t) buf[t] = ninf;
      std::memcpy(buf, x + j, size_t(len - j) * sizeof(float));
      const auto e = hn::Exp(d, hn::Sub(hn::Load(d, buf), vm));
      hn::Store(e, d, buf);
      vsum = hn::Add(vsum, e);
      std::memcpy(x + j, buf, size_t(len - j) * sizeof(float));
    }
    const auto inv = hn::Set(d, 1.0f / hn::GetLane(hn::SumOfLanes(d, vsum)));
    for (j = 0; j + N <= len; j += N) hn::StoreU(hn::Mul(hn::LoadU(d, x + j), inv), d, x + j);
    const float invs = hn::GetLane(inv);
    for (; j < len; ++j) x[j] *= invs;
    if (len < n) std::memset(x + len, 0, size_t(n - len) * sizeof(float));
  }
}

void SoftmaxBackwardRows(int64_t rows, int64_t n, int64_t ld, const float* p, float* dp) {
  const hn::ScalableTag<float> d;
  const int64_t N = int64_t(hn::Lanes(d));
  for (int64_t r = 0; r < rows; ++r) {
    const float* pr = p + r * ld;
    float* g = dp + r * ld;
    auto acc = hn::Zero(d);
    int64_t j = 0;
    for (; j + N <= n; j += N) acc = hn::MulAdd(hn::LoadU(d, g + j), hn::LoadU(d, pr + j), acc);
    float dot = hn::GetLane(hn::SumOfLanes(d, acc));
    for (int64_t t = j; t < n; ++t) dot += g[t] * pr[t];
    const auto vdot = hn::Set(d, dot);
    for (j = 0; j + N <= n; j += N)
      hn::StoreU(hn::Mul(hn::LoadU(d, pr + j), hn::Sub(hn::LoadU(d, g + j), vdot)), d, g + j);
    for (; j < n; ++j) g[j] = pr[j] * (g[j] - dot);
  }
}

}  // namespace finch::ops::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace finch::ops {
HWY_EXPORT(SoftmaxRows);
HWY_EXPORT(SoftmaxBackwardRows);

void softmax_rows_f32(int64_t rows, int64_t n, int64_t ld, float* s, const float* bias,
                      int64_t bias_ld, bool causal) {
  FINCH_DISPATCH(SoftmaxRows)(rows, n, ld, s, bias, bias_ld, causal);
}
void softmax_backward_rows_f32(int64_t rows, int64_t n, int64_t ld, const float* p, float* dp) {
  FINCH_DISPATCH(SoftmaxBackwardRows)(rows, n, ld, p, dp);
}
}  // namespace finch::ops
#endif  // HWY_ONCE
