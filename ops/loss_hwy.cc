// Highway row kernels for the fused softmax cross entropy: one pass for max, one for Σexp and
// Σx, one for the gradient (F32 rows, contiguous; tails scalar).
#include <cmath>
#include <cstdint>

#include "ops/loss.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/loss_hwy.cc"
#include "framework/hwy_kernel.h"  // foreach_target, highway, FINCH_DISPATCH
#include <hwy/contrib/math/math-inl.h>

HWY_BEFORE_NAMESPACE();
namespace finch::ops::loss_kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

void RowStatsImpl(const float* x, int64_t C, float* max_out, double* sumexp, double* sumx) {
  const hn::ScalableTag<float> d;
  const int64_t L = int64_t(hn::Lanes(d));
  float m = -INFINITY;
  int64_t i = 0;
  if (C >= L) {
    auto vm = hn::LoadU(d, x);
    for (i = L; i + L <= C; i += L) vm = hn::Max(vm, hn::LoadU(d, x + i));
    m = hn::GetLane(hn::MaxOfLanes(d, vm));
  }
  for (; i < C; ++i) m = std::max(m, x[i]);
  // exp(x - max) <= 1: no overflow, and the largest term is exactly 1 so the sum is >= 1.
  const auto vmax = hn::Set(d, m);
  auto se = hn::Zero(d), sx = hn::Zero(d);
  i = 0;
  for (; i + L <= C; i += L) {
    const auto v = hn::LoadU(d, x + i);
    se = hn::Add(se, hn::Exp(d, hn::Sub(v, vmax)));
    sx = hn::Add(sx, v);
  }
  double e = hn::GetLane(hn::SumOfLanes(d, se));
  double s = hn::GetLane(hn::SumOfLanes(d, sx));
  for (; i < C; ++i) {
    e += std::exp(double(x[i] - m));
    s += x[i];
  }
  *max_out = m;
  *sumexp = e;
  *sumx = s;
}

void RowSoftmaxGradImpl(const float* x, float* dx, int64_t C, float lse, float g, float off) {
  const hn::ScalableTag<float> d;
  const int64_t L = int64_t(hn::Lanes(d));
  const auto vl = hn::Set(d, lse), vg = hn::Set(d, g), vo = hn::Set(d, off);
  int64_t i = 0;
  for (; i + L <= C; i += L)
    hn::StoreU(hn::MulAdd(hn::Exp(d, hn::Sub(hn::LoadU(d, x + i), vl)), vg, vo), d, dx + i);
  for (; i < C; ++i) dx[i] = g * std::exp(x[i] - lse) + off;
}

}  // namespace HWY_NAMESPACE
}  // namespace finch::ops::loss_kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace finch::ops::loss_kernels {

HWY_EXPORT(RowStatsImpl);
HWY_EXPORT(RowSoftmaxGradImpl);

void row_stats(const float* x, int64_t C, float* max, double* sumexp, double* sumx) {
  FINCH_DISPATCH(RowStatsImpl)(x, C, max, sumexp, sumx);
}
void row_softmax_grad(const float* x, float* dx, int64_t C, float lse, float g, float off) {
  FINCH_DISPATCH(RowSoftmaxGradImpl)(x, dx, C, lse, g, off);
}

}  // namespace finch::ops::loss_kernels
#endif  // HWY_ONCE
