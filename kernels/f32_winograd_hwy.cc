// Highway transforms of the fp32 Winograd F(2×2, 3×3) conv (kernels/f32_winograd.h): the input
// transform B^T d B and the output transform A^T m A with the fused epilogue, each vectorized
// across consecutive tiles (across tile rows); the weight transform G g G^T (at load, in double).
#include <algorithm>

#include "kernels/f32_winograd.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/f32_winograd_hwy.cc"
#include "framework/hwy_kernel.h"  // foreach_target, highway, FINCH_DISPATCH

HWY_BEFORE_NAMESPACE();
namespace finch::quant::kernels::f32k::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using D = hn::ScalableTag<float>;
using V = hn::Vec<D>;

void WinoInput(const float* HWY_RESTRICT xp, int64_t plane, int64_t PS, int64_t R, int64_t C, int64_t j0,
               int64_t cols, float* HWY_RESTRICT v, int64_t ldv, int64_t xi) {
  const D d;
  const int64_t L = int64_t(hn::Lanes(d));
  // Patch row a of tile j: columns 0 and 1 in sub-plane a % 2, columns 2 and 3 in sub-plane
  // 2 + a % 2, each at row a / 2, column 2j (even and odd columns deinterleaved: lane k holds
  // tile j + k).
  const int64_t lo[4] = {0, PS, R, PS + R}, hi[4] = {2 * PS, 3 * PS, 2 * PS + R, 3 * PS + R};
  for (int64_t c = 0; c < C; ++c) {
    const float* base = xp + c * plane + 2 * j0;
    float* out = v + c * ldv;
    for (int64_t i = 0; i < cols; i += L) {
      const float* p = base + 2 * i;
      V dd[4][4];
      for (int a = 0; a < 4; ++a) {
        hn::LoadInterleaved2(d, p + lo[a], dd[a][0], dd[a][1]);
        hn::LoadInterleaved2(d, p + hi[a], dd[a][2], dd[a][3]);
      }
      V t[4][4];  // t = B^T d, column by column of the patch
      for (int b = 0; b < 4; ++b) {
        t[0][b] = hn::Sub(dd[0][b], dd[2][b]), t[1][b] = hn::Add(dd[1][b], dd[2][b]);
        t[2][b] = hn::Sub(dd[2][b], dd[1][b]), t[3][b] = hn::Sub(dd[1][b], dd[3][b]);
      }
      for (int a = 0; a < 4; ++a) {  // (B^T d) B, row a
        hn::StoreU(hn::Sub(t[a][0], t[a][2]), d, out + (4 * a + 0) * xi + i);
        hn::StoreU(hn::Add(t[a][1], t[a][2]), d, out + (4 * a + 1) * xi + i);
        hn::StoreU(hn::Sub(t[a][2], t[a][1]), d, out + (4 * a + 2) * xi + i);
        hn::StoreU(hn::Sub(t[a][1], t[a][3]), d, out + (4 * a + 3) * xi + i);
      }
    }
  }
}

// dst[0, n) = src[0, n) for n <= 2 vectors, by (overlapping) whole-vector copies that never
// write past dst + n — another thread may own what follows. (memcpy of these few bytes compiles
// to rep movs, whose start-up cost was a quarter of the output transform.)
HWY_INLINE void CopyShort(float* HWY_RESTRICT dst, const float* HWY_RESTRICT src, int64_t n) {
  const D d;
  const int64_t L = int64_t(hn::Lanes(d));
  if (n >= L) {
    hn::StoreU(hn::LoadU(d, src), d, dst);
    hn::StoreU(hn::LoadU(d, src + n - L), d, dst + n - L);
    return;
  }
  const hn::CappedTag<float, 4> d4;
  const int64_t L4 = int64_t(hn::Lanes(d4));
  if (n >= L4) {
    for (int64_t i = 0; i + L4 <= n; i += L4) hn::StoreU(hn::LoadU(d4, src + i), d4, dst + i);
    hn::StoreU(hn::LoadU(d4, src + n - L4), d4, dst + n - L4);
    return;
  }
  for (int64_t i = 0; i < n; ++i) dst[i] = src[i];
}

// One channel x [H][W] into the four sub-planes of f32_winograd.h at dst (stride Lp), rows
// rows × R floats each: every row written whole (zeros, then the data), by vector stores that
// may run up to L − 1 floats past the row; rows go in order, so the next row (or, after the
// last, the sub-plane's slack) takes the overrun. No libc call per row: memset/memcpy of these
// 7–28 floats cost more in call overhead than the copy itself (4 % of ResNet-20 before).
void WinoPad(const float* HWY_RESTRICT x, int64_t H, int64_t W, int64_t ph, int64_t pw, int64_t R, int64_t rows,
             int64_t Lp, float* HWY_RESTRICT dst) {
  const D d;
  const int64_t L = int64_t(hn::Lanes(d));
  const V z = hn::Zero(d);
  for (int64_t sub = 0; sub < 4; ++sub) {
    const int64_t shift = 2 * (sub >> 1), parity = sub & 1;
    // Row column c holds input column c + shift − pw, for c in [c0, c1).
    const int64_t c0 = std::max<int64_t>(0, pw - shift), c1 = std::min(R, W + pw - shift);
    for (int64_t i = 0; i < rows; ++i) {
      float* out = dst + sub * Lp + i * R;
      // Zeros over [0, R): the first store outside the loop, or GCC makes the loop a memset call.
      hn::StoreU(z, d, out);
      for (int64_t c = L; c < R; c += L) hn::StoreU(z, d, out + c);
      const int64_t iy = 2 * i + parity - ph;
      if (iy < 0 || iy >= H || c1 <= c0) continue;
      // Row columns [c0, c1) = src[0, n).
      const float* src = x + iy * W + (c0 + shift - pw);
      float* to = out + c0;
      const int64_t n = c1 - c0;
      if (n <= 2 * L) {
        CopyShort(to, src, n);
        continue;
      }
      hn::StoreU(hn::LoadU(d, src), d, to);
      for (int64_t c = L; c + L <= n; c += L) hn::StoreU(hn::LoadU(d, src + c), d, to + c);
      hn::StoreU(hn::LoadU(d, src + n - L), d, to + n - L);
    }
  }
}

template <class DT>
HWY_INLINE hn::Vec<DT> ClampT(DT dt, hn::Vec<DT> v, Act act) {
  if (act == Act::none) return v;
  v = hn::Max(v, hn::Zero(dt));
  return act == Act::relu6 ? hn::Min(v, hn::Set(dt, 6.0f)) : v;
}

float Activate(float v, Act act) {
  if (act == Act::none) return v;
  v = std::max(v, 0.0f);
  return act == Act::relu6 ? std::min(v, 6.0f) : v;
}

// dst[0, n) = act(src[0, n) + res[0, n)) for n <= 2 vectors, like CopyShort: overlapping
// whole vectors (an element stored twice gets the same value twice), nothing read or written
// past n. The sum is rounded before the clamp, as the unfused conv + add + act rounds it.
HWY_INLINE void AddShort(float* HWY_RESTRICT dst, const float* HWY_RESTRICT src, const float* HWY_RESTRICT res,
                         int64_t n, Act act) {
  const D d;
  const int64_t L = int64_t(hn::Lanes(d));
  if (n >= L) {
    hn::StoreU(ClampT(d, hn::Add(hn::LoadU(d, src), hn::LoadU(d, res)), act), d, dst);
    hn::StoreU(ClampT(d, hn::Add(hn::LoadU(d, src + n - L), hn::LoadU(d, res + n - L)), act), d, dst + n - L);
    return;
  }
  const hn::CappedTag<float, 4> d4;
  const int64_t L4 = int64_t(hn::Lanes(d4));
  if (n >= L4) {
    for (int64_t i = 0; i + L4 <= n; i += L4)
      hn::StoreU(ClampT(d4, hn::Add(hn::LoadU(d4, src + i), hn::LoadU(d4, res + i)), act), d4, dst + i);
    hn::StoreU(ClampT(d4, hn::Add(hn::LoadU(d4, src + n - L4), hn::LoadU(d4, res + n - L4)), act), d4,
               dst + n - L4);
    return;
  }
  for (int64_t i = 0; i < n; ++i) dst[i] = Activate(src[i] + res[i], act);
}

void WinoOutput(const float* HWY_RESTRICT m, int64_t OC, int64_t ldm, int64_t xi, int64_t cols,
                const WinoRun* HWY_RESTRICT runs, int64_t nruns, const float* HWY_RESTRICT bias,
                const float* HWY_RESTRICT res, float* HWY_RESTRICT y, int64_t P, int64_t OW, Act act) {
  const D d;
  const int64_t L = int64_t(hn::Lanes(d));
  // Output rows 0 and 1 of a vector of tiles, each row's two columns interleaved (the lanes are
  // every other output column); the runs' pieces are copied out of them, so no store passes a
  // run's last output.
  HWY_ALIGN float rows[2][2 * HWY_MAX_BYTES / sizeof(float)];
  for (int64_t oc = 0; oc < OC; ++oc) {
    const V b = hn::Set(d, bias[oc]);
    float* yc = y + oc * P;
    const float* rc = res ? res + oc * P : nullptr;
    int64_t r0 = 0;  // the first run not wholly before this vector
    for (int64_t j = 0; j < cols; j += L) {
      const float* p = m + oc * ldm + j;
      V s[2][4];  // s = A^T m
      for (int k = 0; k < 4; ++k) {
        const V m0 = hn::LoadU(d, p + (0 + k) * xi), m1 = hn::LoadU(d, p + (4 + k) * xi);
        const V m2 = hn::LoadU(d, p + (8 + k) * xi), m3 = hn::LoadU(d, p + (12 + k) * xi);
        s[0][k] = hn::Add(hn::Add(m0, m1), m2);
        s[1][k] = hn::Sub(hn::Sub(m1, m2), m3);
      }
      for (int a = 0; a < 2; ++a) {  // (A^T m) A plus the bias
        V y0 = hn::Add(hn::Add(hn::Add(s[a][0], s[a][1]), s[a][2]), b);
        V y1 = hn::Add(hn::Sub(hn::Sub(s[a][1], s[a][2]), s[a][3]), b);
        if (!rc) y0 = ClampT(d, y0, act), y1 = ClampT(d, y1, act);
        hn::StoreInterleaved2(y0, y1, d, rows[a]);
      }
      while (r0 < nruns && runs[r0].j0 + runs[r0].len <= j) ++r0;
      for (int64_t r = r0; r < nruns && runs[r].j0 < j + L; ++r) {
        const WinoRun& run = runs[r];
        const int64_t k0 = std::max<int64_t>(run.j0, j), k1 = std::min<int64_t>(run.j0 + run.len, j + L);
        const int64_t cnt = 2 * (k1 - k0) - (k1 == run.j0 + run.len && run.last_cols == 1 ? 1 : 0);
        const int64_t out = run.out + 2 * (k0 - run.j0);
        for (int a = 0; a < run.rows; ++a) {
          const float* src = rows[a] + 2 * (k0 - j);
          if (!rc) CopyShort(yc + out + a * OW, src, cnt);
          else AddShort(yc + out + a * OW, src, rc + out + a * OW, cnt, act);
        }
      }
    }
  }
}

}  // namespace finch::quant::kernels::f32k::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace finch::quant::kernels::f32k {

HWY_EXPORT(WinoPad);
HWY_EXPORT(WinoInput);
HWY_EXPORT(WinoOutput);

void f32_wino_pad(const float* x, int64_t H, int64_t W, int64_t ph, int64_t pw, int64_t R, int64_t rows, int64_t Lp,
                  float* dst) {
  FINCH_DISPATCH(WinoPad)(x, H, W, ph, pw, R, rows, Lp, dst);
}

void f32_wino_input(const float* xp, int64_t plane, int64_t PS, int64_t R, int64_t C, int64_t j0, int64_t cols,
                    float* v, int64_t ldv, int64_t xi) {
  FINCH_DISPATCH(WinoInput)(xp, plane, PS, R, C, j0, cols, v, ldv, xi);
}

void f32_wino_output(const float* m, int64_t OC, int64_t ldm, int64_t xi, int64_t cols, const WinoRun* runs,
                     int64_t nruns, const float* bias, const float* res, float* y, int64_t P, int64_t OW, Act act) {
  FINCH_DISPATCH(WinoOutput)(m, OC, ldm, xi, cols, runs, nruns, bias, res, y, P, OW, act);
}

void f32_wino_weights(const float* g, int64_t OC, int64_t C, float* u) {
  for (int64_t oc = 0; oc < OC; ++oc)
    for (int64_t c = 0; c < C; ++c) {
      const float* w = g + (oc * C + c) * 9;
      double gg[4][3];  // G g
      for (int k = 0; k < 3; ++k) {
        gg[0][k] = w[k];
        gg[1][k] = 0.5 * (double(w[k]) + w[3 + k] + w[6 + k]);
        gg[2][k] = 0.5 * (double(w[k]) - w[3 + k] + w[6 + k]);
        gg[3][k] = w[6 + k];
      }
      for (int i = 0; i < 4; ++i) {  // (G g) G^T
        const double r[4] = {gg[i][0], 0.5 * (gg[i][0] + gg[i][1] + gg[i][2]), 0.5 * (gg[i][0] - gg[i][1] + gg[i][2]),
                             gg[i][2]};
        for (int j = 0; j < 4; ++j) u[((4 * i + j) * OC + oc) * C + c] = float(r[j]);
      }
    }
}

}  // namespace finch::quant::kernels::f32k
#endif  // HWY_ONCE
