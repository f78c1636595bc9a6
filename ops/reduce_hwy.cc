// Highway kernels for the f32 reductions: contiguous row sums and column sums (ops/reduce.cc
// plans the reduction and parallelizes; these only loop).
#include <cstddef>
#include <cstdint>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/reduce_hwy.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

HWY_BEFORE_NAMESPACE();
namespace finch::ops::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Four independent accumulators hide the add latency and make the summation blocked: each lane
// sums every (4·lanes)-th element, so the rounding error grows with n / (4·lanes) rather than n.
float RowSum(const float* HWY_RESTRICT x, int64_t n) {
  const hn::ScalableTag<float> d;
  const int64_t N = int64_t(hn::Lanes(d));
  auto a0 = hn::Zero(d), a1 = hn::Zero(d), a2 = hn::Zero(d), a3 = hn::Zero(d);
  int64_t i = 0;
  for (; i + 4 * N <= n; i += 4 * N) {
    a0 = hn::Add(a0, hn::LoadU(d, x + i));
    a1 = hn::Add(a1, hn::LoadU(d, x + i + N));
    a2 = hn::Add(a2, hn::LoadU(d, x + i + 2 * N));
    a3 = hn::Add(a3, hn::LoadU(d, x + i + 3 * N));
  }
  for (; i + N <= n; i += N) a0 = hn::Add(a0, hn::LoadU(d, x + i));
  a0 = hn::Add(hn::Add(a0, a1), hn::Add(a2, a3));
  float s = hn::GetLane(hn::SumOfLanes(d, a0));
  for (; i < n; ++i) s += x[i];
  return s;
}

// out[k] (+)= Σ_r x[r·ld + k]: vectors run along k (contiguous) and stay in registers while the
// rows stream by, four vectors (a few cache lines) per row per pass.
void ColSum(const float* HWY_RESTRICT x, int64_t rows, int64_t inner, int64_t ld,
            float* HWY_RESTRICT out, bool accumulate) {
  const hn::ScalableTag<float> d;
  const int64_t N = int64_t(hn::Lanes(d));
  int64_t k = 0;
  for (; k + 4 * N <= inner; k += 4 * N) {
    auto a0 = accumulate ? hn::LoadU(d, out + k) : hn::Zero(d);
    auto a1 = accumulate ? hn::LoadU(d, out + k + N) : hn::Zero(d);
    auto a2 = accumulate ? hn::LoadU(d, out + k + 2 * N) : hn::Zero(d);
    auto a3 = accumulate ? hn::LoadU(d, out + k + 3 * N) : hn::Zero(d);
    for (int64_t r = 0; r < rows; ++r) {
      const float* p = x + r * ld + k;
      a0 = hn::Add(a0, hn::LoadU(d, p));
      a1 = hn::Add(a1, hn::LoadU(d, p + N));
      a2 = hn::Add(a2, hn::LoadU(d, p + 2 * N));
      a3 = hn::Add(a3, hn::LoadU(d, p + 3 * N));
    }
    hn::StoreU(a0, d, out + k);
    hn::StoreU(a1, d, out + k + N);
    hn::StoreU(a2, d, out + k + 2 * N);
    hn::StoreU(a3, d, out + k + 3 * N);
  }
  for (; k + N <= inner; k += N) {
    auto a = accumulate ? hn::LoadU(d, out + k) : hn::Zero(d);
    for (int64_t r = 0; r < rows; ++r) a = hn::Add(a, hn::LoadU(d, x + r * ld + k));
    hn::StoreU(a, d, out + k);
  }
  for (; k < inner; ++k) {
    float s = accumulate ? out[k] : 0.0f;
    for (int64_t r = 0; r < rows; ++r) s += x[r * ld + k];
    out[k] = s;
  }
}

}  // namespace finch::ops::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include "ops/reduce.h"

namespace finch::ops {
HWY_EXPORT(RowSum);
HWY_EXPORT(ColSum);

float row_sum_f32(const float* x, int64_t n) { return HWY_DYNAMIC_DISPATCH(RowSum)(x, n); }
void col_sum_f32(const float* x, int64_t rows, int64_t inner, int64_t ld, float* out,
                 bool accumulate) {
  HWY_DYNAMIC_DISPATCH(ColSum)(x, rows, inner, ld, out, accumulate);
}
}  // namespace finch::ops
#endif
