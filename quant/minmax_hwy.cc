// Per-channel min/max of an f32 array [outer, C, inner]: the statistics pass of every observer.
//
// Two layouts: long contiguous rows (inner >= kRowMin, or per-tensor) are reduced row by row,
// each row split into segments so one big per-tensor array still spreads over the pool; short
// rows (inner small, e.g. per-channel along the last axis) are reduced column-wise: a block of
// the C*inner columns takes the elementwise min/max down a block of outer rows, which keeps every
// load contiguous and vector-wide. min/max are exact, so the split never changes the result.
// Non-finite values are detected in the same pass (|x| <= FLT_MAX is false for NaN and ±Inf).
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "framework/parallel.h"
#include "quant/minmax.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "quant/minmax_hwy.cc"
#include "framework/hwy_kernel.h"  // foreach_target, highway, FINCH_DISPATCH

HWY_BEFORE_NAMESPACE();
namespace finch::quant::detail::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;
constexpr size_t kMaxLanes = HWY_MAX_BYTES / sizeof(float);

// min/max of x[0, n) folded into *mn / *mx; returns false on a non-finite value.
bool RowMinMax(const float* x, int64_t n, float* mn, float* mx) {
  const DF d;
  const int64_t N = int64_t(hn::Lanes(d));
  const VF big = hn::Set(d, FLT_MAX);
  VF lo0 = hn::Set(d, *mn), lo1 = lo0, hi0 = hn::Set(d, *mx), hi1 = hi0;
  VF bad = hn::Zero(d);
  int64_t i = 0;
  // Two accumulators each: the min/max chains are latency bound otherwise.
  for (; i + 2 * N <= n; i += 2 * N) {
    const VF a = hn::LoadU(d, x + i), b = hn::LoadU(d, x + i + N);
    lo0 = hn::Min(lo0, a);
    hi0 = hn::Max(hi0, a);
    lo1 = hn::Min(lo1, b);
    hi1 = hn::Max(hi1, b);
    const VF fin = hn::And(hn::VecFromMask(d, hn::Le(hn::Abs(a), big)), hn::VecFromMask(d, hn::Le(hn::Abs(b), big)));
    bad = hn::Or(bad, hn::Not(fin));
  }
  for (; i + N <= n; i += N) {
    const VF a = hn::LoadU(d, x + i);
    lo0 = hn::Min(lo0, a);
    hi0 = hn::Max(hi0, a);
    bad = hn::Or(bad, hn::Not(hn::VecFromMask(d, hn::Le(hn::Abs(a), big))));
  }
  if (i < n) {  // tail: pad with a value already in the row, so the padding changes nothing
    HWY_ALIGN float buf[kMaxLanes];
    for (int64_t k = 0; k < N; ++k) buf[k] = x[i];
    std::memcpy(buf, x + i, size_t(n - i) * sizeof(float));
    const VF a = hn::Load(d, buf);
    lo0 = hn::Min(lo0, a);
    hi0 = hn::Max(hi0, a);
    bad = hn::Or(bad, hn::Not(hn::VecFromMask(d, hn::Le(hn::Abs(a), big))));
  }
  *mn = hn::GetLane(hn::MinOfLanes(d, hn::Min(lo0, lo1)));
  *mx = hn::GetLane(hn::MaxOfLanes(d, hn::Max(hi0, hi1)));
  return hn::AllTrue(d, hn::Eq(bad, hn::Zero(d)));
}

// mn[j] = min(mn[j], x[r * stride + j]) over rows r in [0, rows), mx likewise, j in [0, n);
// returns false on a non-finite value.
bool ColumnMinMax(const float* x, int64_t rows, int64_t stride, int64_t n, float* mn, float* mx) {
  const DF d;
  const int64_t N = int64_t(hn::Lanes(d));
  const VF big = hn::Set(d, FLT_MAX);
  VF bad = hn::Zero(d);
  auto block = [&](int64_t j) {
    VF lo = hn::LoadU(d, mn + j), hi = hn::LoadU(d, mx + j);
    for (int64_t r = 0; r < rows; ++r) {
      const VF a = hn::LoadU(d, x + r * stride + j);
      lo = hn::Min(lo, a);
      hi = hn::Max(hi, a);
      bad = hn::Or(bad, hn::Not(hn::VecFromMask(d, hn::Le(hn::Abs(a), big))));
    }
    hn::StoreU(lo, d, mn + j);
    hn::StoreU(hi, d, mx + j);
  };
  if (n >= N) {
    int64_t j = 0;
    for (; j + N <= n; j += N) block(j);
    // Tail: one more vector ending at n, overlapping columns already done (min/max are idempotent).
    if (j < n) block(n - N);
    return hn::AllTrue(d, hn::Eq(bad, hn::Zero(d)));
  }
  bool ok = true;  // fewer columns than lanes: plain loops, row by row
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < n; ++j) {
      const float v = x[r * stride + j];
      mn[j] = std::min(mn[j], v);
      mx[j] = std::max(mx[j], v);
      ok &= std::fabs(v) <= FLT_MAX;
    }
  return ok;
}

}  // namespace finch::quant::detail::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace finch::quant::detail {

HWY_EXPORT(RowMinMax);
HWY_EXPORT(ColumnMinMax);

namespace {
constexpr int64_t kRowMin = 64;       // rows at least this long take the row-wise path
constexpr int64_t kSegment = 1 << 15;  // elements per row segment (one work item)
constexpr int64_t kColBlock = 1024;    // columns per work item on the column-wise path
constexpr int64_t kRowBlocks = 16;     // at most this many row blocks there (bounds the scratch)
constexpr float kInf = std::numeric_limits<float>::infinity();
}  // namespace

bool reference::channel_minmax(const float* x, int64_t outer, int64_t C, int64_t inner, float* mn,
                               float* mx) {
  bool ok = true;
  for (int64_t c = 0; c < C; ++c) {
    mn[c] = kInf;
    mx[c] = -kInf;
  }
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < inner; ++i) {
        const float v = x[(o * C + c) * inner + i];
        if (!std::isfinite(v)) ok = false;
        mn[c] = std::min(mn[c], v);
        mx[c] = std::max(mx[c], v);
      }
  return ok;
}

bool channel_minmax(const float* x, int64_t outer, int64_t C, int64_t inner, float* mn, float* mx) {
  const int64_t rows = outer * C;
  if (inner >= kRowMin || C == 1) {
    const int64_t row_len = (C == 1) ? outer * inner : inner;  // per-tensor: one long row
    const int64_t nrows = (C == 1) ? 1 : rows;
    const int64_t segs = (row_len + kSegment - 1) / kSegment;
    const int64_t items = nrows * segs;
    std::vector<float> lo(size_t(items), kInf), hi(size_t(items), -kInf);
    std::vector<uint8_t> fine(size_t(items), 1);
    const int64_t grain = std::max<int64_t>(1, kSegment / row_len);
    parallel_for(0, items, grain, [&](int64_t b, int64_t e) {
      for (int64_t it = b; it < e; ++it) {
        const int64_t r = it / segs, s = it % segs;
        const int64_t start = s * kSegment, len = std::min(kSegment, row_len - start);
        fine[size_t(it)] = FINCH_DISPATCH(RowMinMax)(x + r * row_len + start, len, &lo[size_t(it)],
                                                           &hi[size_t(it)]);
      }
    });
    bool ok = true;
    for (int64_t c = 0; c < C; ++c) {
      mn[c] = kInf;
      mx[c] = -kInf;
    }
    for (int64_t it = 0; it < items; ++it) {
      const int64_t c = (it / segs) % C;
      mn[c] = std::min(mn[c], lo[size_t(it)]);
      mx[c] = std::max(mx[c], hi[size_t(it)]);
      ok = ok && fine[size_t(it)];
    }
    return ok;
  }
  // Short rows: the C*inner columns in blocks of up to kColBlock, the outer rows in up to
  // kRowBlocks blocks; each (row block, column block) item takes the elementwise min/max down its
  // rows into its own accumulators, merged afterwards.
  const int64_t cols = C * inner;
  const int64_t cblocks = (cols + kColBlock - 1) / kColBlock;
  const int64_t rows_per = std::max((outer + kRowBlocks - 1) / kRowBlocks, kSegment / std::min(cols, kColBlock));
  const int64_t rblocks = (outer + rows_per - 1) / rows_per;
  const int64_t items = rblocks * cblocks;
  std::vector<float> plo(size_t(rblocks * cols), kInf), phi(plo.size(), -kInf);
  std::vector<uint8_t> fine(size_t(items), 1);
  parallel_for(0, items, 1, [&](int64_t b, int64_t e) {
    for (int64_t it = b; it < e; ++it) {
      const int64_t rb = it / cblocks, cb = it % cblocks;
      const int64_t r0 = rb * rows_per, nr = std::min(rows_per, outer - r0);
      const int64_t j0 = cb * kColBlock, len = std::min(kColBlock, cols - j0);
      fine[size_t(it)] = FINCH_DISPATCH(ColumnMinMax)(x + r0 * cols + j0, nr, cols, len,
                                                            plo.data() + rb * cols + j0, phi.data() + rb * cols + j0);
    }
  });
  std::vector<float> lo(plo.begin(), plo.begin() + cols), hi(phi.begin(), phi.begin() + cols);
  for (int64_t rb = 1; rb < rblocks; ++rb)
    for (int64_t j = 0; j < cols; ++j) {
      lo[size_t(j)] = std::min(lo[size_t(j)], plo[size_t(rb * cols + j)]);
      hi[size_t(j)] = std::max(hi[size_t(j)], phi[size_t(rb * cols + j)]);
    }
  bool ok = true;
  for (uint8_t f : fine) ok = ok && f;
  for (int64_t c = 0; c < C; ++c) {
    float a = kInf, z = -kInf;
    for (int64_t i = 0; i < inner; ++i) {
      a = std::min(a, lo[size_t(c * inner + i)]);
      z = std::max(z, hi[size_t(c * inner + i)]);
    }
    mn[c] = a;
    mx[c] = z;
  }
  return ok;
}

}  // namespace finch::quant::detail
#endif  // HWY_ONCE
