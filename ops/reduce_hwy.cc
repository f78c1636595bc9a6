// Highway kernels for the f32 reductions: contiguous row sums and column sums (ops/reduce.cc
// plans the reduction and parallelizes; these only loop).
#include <cstddef>
#include <cstdint>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/reduce_hwy.cc"
#include "framework/hwy_kernel.h"  // foreach_target, highway, FINCH_DISPATCH

HWY_BEFORE_NAMESPACE();
namespace finch::ops::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Four independent accumulators hide the add latency and make the summation blocked: each lane
// sums every (4·lanes)-th element, so the rounding error grows with n / (4·lanes) rather than n.
HWY_INLINE float RowSumInline(const float* HWY_RESTRICT x, int64_t n) {
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

float RowSum(const float* HWY_RESTRICT x, int64_t n) { return RowSumInline(x, n); }

// out[r] = Σ x[r·n .. r·n + n): one dispatch for many short rows (a dispatch and a call per
// 768-float row cost ~20% of a memory-bound pass).
void RowSums(const float* HWY_RESTRICT x, int64_t rows, int64_t n, float* HWY_RESTRICT out) {
  for (int64_t r = 0; r < rows; ++r) out[r] = RowSumInline(x + r * n, n);
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

// Σ (x[i] − m)² over a contiguous run (the second pass of the two-pass variance).
float RowSqDev(const float* HWY_RESTRICT x, int64_t n, float m) {
  const hn::ScalableTag<float> d;
  const int64_t N = int64_t(hn::Lanes(d));
  const auto vm = hn::Set(d, m);
  auto a0 = hn::Zero(d), a1 = hn::Zero(d), a2 = hn::Zero(d), a3 = hn::Zero(d);
  int64_t i = 0;
  for (; i + 4 * N <= n; i += 4 * N) {
    const auto d0 = hn::Sub(hn::LoadU(d, x + i), vm), d1 = hn::Sub(hn::LoadU(d, x + i + N), vm);
    const auto d2 = hn::Sub(hn::LoadU(d, x + i + 2 * N), vm), d3 = hn::Sub(hn::LoadU(d, x + i + 3 * N), vm);
    a0 = hn::MulAdd(d0, d0, a0);
    a1 = hn::MulAdd(d1, d1, a1);
    a2 = hn::MulAdd(d2, d2, a2);
    a3 = hn::MulAdd(d3, d3, a3);
  }
  for (; i + N <= n; i += N) {
    const auto d0 = hn::Sub(hn::LoadU(d, x + i), vm);
    a0 = hn::MulAdd(d0, d0, a0);
  }
  a0 = hn::Add(hn::Add(a0, a1), hn::Add(a2, a3));
  float s = hn::GetLane(hn::SumOfLanes(d, a0));
  for (; i < n; ++i) s += (x[i] - m) * (x[i] - m);
  return s;
}

// out[k] = Σ_r (x[r·ld + k] − m[k])².
void ColSqDev(const float* HWY_RESTRICT x, int64_t rows, int64_t inner, int64_t ld,
              const float* HWY_RESTRICT m, float* HWY_RESTRICT out) {
  const hn::ScalableTag<float> d;
  const int64_t N = int64_t(hn::Lanes(d));
  int64_t k = 0;
  for (; k + 2 * N <= inner; k += 2 * N) {
    const auto m0 = hn::LoadU(d, m + k), m1 = hn::LoadU(d, m + k + N);
    auto a0 = hn::Zero(d), a1 = hn::Zero(d);
    for (int64_t r = 0; r < rows; ++r) {
      const auto d0 = hn::Sub(hn::LoadU(d, x + r * ld + k), m0);
      const auto d1 = hn::Sub(hn::LoadU(d, x + r * ld + k + N), m1);
      a0 = hn::MulAdd(d0, d0, a0);
      a1 = hn::MulAdd(d1, d1, a1);
    }
    hn::StoreU(a0, d, out + k);
    hn::StoreU(a1, d, out + k + N);
  }
  for (; k < inner; ++k) {
    float s = 0;
    for (int64_t r = 0; r < rows; ++r) s += (x[r * ld + k] - m[k]) * (x[r * ld + k] - m[k]);
    out[k] = s;
  }
}

// Max and its first index over each contiguous row of [rows, n]: a vector max, then a vector
// search for the first lane equal to it. NaN counts as the largest (torch.max), so a row with
// a NaN takes the scalar path to find the first one.
void RowMax(const float* HWY_RESTRICT x, int64_t rows, int64_t n, float* HWY_RESTRICT vals,
            int64_t* HWY_RESTRICT idx) {
  const hn::ScalableTag<float> d;
  const int64_t N = int64_t(hn::Lanes(d));
  for (int64_t r = 0; r < rows; ++r) {
    const float* HWY_RESTRICT p = x + r * n;
    const int64_t nv = n - n % N;
    float m = p[0];
    bool nan = false;
    if (nv > 0) {
      auto vm = hn::LoadU(d, p), vm1 = vm;
      auto has_nan = hn::IsNaN(vm);
      int64_t i = N;
      for (; i + 2 * N <= nv; i += 2 * N) {
        const auto a = hn::LoadU(d, p + i), b = hn::LoadU(d, p + i + N);
        has_nan = hn::Or(has_nan, hn::Or(hn::IsNaN(a), hn::IsNaN(b)));
        vm = hn::Max(vm, a);
        vm1 = hn::Max(vm1, b);
      }
      for (; i < nv; i += N) {
        const auto a = hn::LoadU(d, p + i);
        has_nan = hn::Or(has_nan, hn::IsNaN(a));
        vm = hn::Max(vm, a);
      }
      nan = !hn::AllFalse(d, has_nan);
      m = hn::GetLane(hn::MaxOfLanes(d, hn::Max(vm, vm1)));
    }
    for (int64_t i = nv; i < n; ++i) {
      nan |= p[i] != p[i];
      m = p[i] > m ? p[i] : m;
    }
    int64_t at = -1;
    if (nan) {
      for (int64_t i = 0; i < n && at < 0; ++i)
        if (p[i] != p[i]) at = i;
      m = p[at];
    } else {
      const auto target = hn::Set(d, m);
      for (int64_t i = 0; i < nv && at < 0; i += N) {
        const intptr_t f = hn::FindFirstTrue(d, hn::Eq(hn::LoadU(d, p + i), target));
        if (f >= 0) at = i + f;
      }
      for (int64_t i = nv; i < n && at < 0; ++i)
        if (p[i] == m) at = i;
    }
    vals[r] = m;
    idx[r] = at;
  }
}

}  // namespace finch::ops::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include "ops/reduce.h"

namespace finch::ops {
HWY_EXPORT(RowSum);
HWY_EXPORT(ColSum);
HWY_EXPORT(RowSums);
HWY_EXPORT(RowMax);
HWY_EXPORT(RowSqDev);
HWY_EXPORT(ColSqDev);

float row_sum_f32(const float* x, int64_t n) { return FINCH_DISPATCH(RowSum)(x, n); }
void row_sums_f32(const float* x, int64_t rows, int64_t n, float* out) {
  FINCH_DISPATCH(RowSums)(x, rows, n, out);
}
void row_max_f32(const float* x, int64_t rows, int64_t n, float* vals, int64_t* idx) {
  FINCH_DISPATCH(RowMax)(x, rows, n, vals, idx);
}
float row_sqdev_f32(const float* x, int64_t n, float m) {
  return FINCH_DISPATCH(RowSqDev)(x, n, m);
}
void col_sqdev_f32(const float* x, int64_t rows, int64_t inner, int64_t ld, const float* m,
                   float* out) {
  FINCH_DISPATCH(ColSqDev)(x, rows, inner, ld, m, out);
}
void col_sum_f32(const float* x, int64_t rows, int64_t inner, int64_t ld, float* out,
                 bool accumulate) {
  FINCH_DISPATCH(ColSum)(x, rows, inner, ld, out, accumulate);
}
}  // namespace finch::ops
#endif
