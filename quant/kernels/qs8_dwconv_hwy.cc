// Int8 depthwise convolution micro-kernel (Highway): vectors across the output width, exact int32
// accumulation, the vectorized requantization of requant_hwy-inl.h.
//
// Shapes: x [N, C, H, W], w [C, KH·KW], y [N, C, OH, OW]; one (n, c) plane at a time.
// As in ops/depthwise_hwy.cc, each input plane is copied into a padded, stride-phase-split
// scratch of centered codes (x − zx, int32): padded column pc lands in phase pc % sw at column
// pc / sw, so output ow at tap kw reads phase (kw·dw) % sw, column ow + (kw·dw) / sw. Consecutive
// outputs read consecutive scratch columns for every stride and dilation: each tap is one
// unaligned load with no bounds test. Padding holds 0, which is exactly what a padded tap adds in
// the reference (it skips them; x = zx would add (zx − zx)·w = 0). Products are exact in int32
// (|x − zx| <= 255, |w| <= 128) and the operator has proved the running sum cannot overflow, so
// the order of the additions does not matter.
#include <algorithm>
#include <cstring>
#include <vector>

#include "quant/kernels/qs8_dwconv_kernels.h"
#include "quant/kernels/requant.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "quant/kernels/qs8_dwconv_hwy.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "framework/simd_dispatch.h"
#include "quant/kernels/requant_hwy-inl.h"

HWY_BEFORE_NAMESPACE();
namespace finch::quant::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DI = hn::ScalableTag<int32_t>;
using VI = hn::Vec<DI>;

// Scratch geometry at this target's width: R padded rows of sw phases of Lp columns each.
struct DwLayout {
  int64_t L, OWr, R, Lp, row;  // lanes, OW rounded up to L, rows, phase length, row stride
};

DwLayout dw_layout(const DwConvArgs& a) {
  DwLayout s;
  s.L = int64_t(hn::Lanes(DI()));
  s.OWr = (a.OW + s.L - 1) / s.L * s.L;
  s.R = (a.OH - 1) * a.sh + (a.KH - 1) * a.dh + 1;
  s.Lp = std::max(s.OWr + (a.KW - 1) * a.dw / a.sw, (a.W + 2 * a.pw + a.sw - 1) / a.sw);
  s.row = a.sw * s.Lp;
  return s;
}

// Copies plane x [H, W] into the scratch as x − zx (zeros elsewhere; xs is zeroed by the caller).
template <typename TX>
void fill(const TX* x, const DwConvArgs& a, const DwLayout& s, int32_t* xs) {
  const DI d;
  const hn::Rebind<TX, DI> dx;
  const VI zx = hn::Set(d, a.zx);
  for (int64_t r = 0; r < s.R; ++r) {
    const int64_t ih = r - a.ph;
    if (ih < 0 || ih >= a.H) continue;
    const TX* src = x + ih * a.W;
    int32_t* dst = xs + r * s.row;
    int64_t iw = 0;
    if (a.sw == 1) {  // the common case: a straight widening copy
      for (; iw + s.L <= a.W; iw += s.L)
        hn::StoreU(hn::Sub(hn::PromoteTo(d, hn::LoadU(dx, src + iw)), zx), d, dst + a.pw + iw);
    }
    // Other strides: walk the padded columns with a running (phase, column) pair, no division.
    int64_t pc = iw + a.pw, ph = pc % a.sw, col = pc / a.sw;
    for (; iw < a.W; ++iw) {
      dst[ph * s.Lp + col] = int32_t(src[iw]) - a.zx;
      if (++ph == a.sw) ph = 0, ++col;
    }
  }
}

// One output row's accumulators. toff[t] is the scratch offset of tap t = kh·KW + kw from the
// row's base (precomputed: a division per tap per vector would cost more than the multiply).
// TAPS > 0 fixes the tap count at compile time (3×3: 9, fully unrolled), 0 leaves it to run time.
template <int TAPS>
HWY_INLINE void conv_row(const DwLayout& s, const int32_t* base, const int64_t* toff, int64_t taps, const int32_t* w,
                         int32_t bias, int32_t* acc_row) {
  const DI d;
  const int64_t T = TAPS ? TAPS : taps;
  for (int64_t ow = 0; ow < s.OWr; ow += s.L) {
    VI acc = hn::Set(d, bias);
    for (int64_t t = 0; t < T; ++t) acc = hn::Add(acc, hn::Mul(hn::LoadU(d, base + toff[t] + ow), hn::Set(d, w[t])));
    hn::StoreU(acc, d, acc_row + ow);
  }
}

template <typename TY>
void requantize_row(const DwConvArgs& a, const DwLayout& s, const int32_t* acc_row, int64_t c, TY* out_row) {
  const DI d;
  const hn::Rebind<TY, DI> dy;
  const int n = a.shift[c];
  if (!RequantVecApplies(n)) {  // a real multiplier >= 2^30: the scalar rule saturates
    const FixedPointMultiplier m{a.mult[c], n - 31};
    requantize(acc_row, a.OW, m, a.z_out, a.qmin, a.qmax, out_row);
    return;
  }
  const RequantVec<DI> q(d, a.mult[c], n, a.z_out, a.qmin, a.qmax);
  HWY_ALIGN TY tail[HWY_MAX_BYTES / sizeof(int32_t)];
  for (int64_t ow = 0; ow < a.OW; ow += s.L) {
    const auto codes = hn::DemoteTo(dy, Requantize(d, hn::LoadU(d, acc_row + ow), q));  // inside TY: clamped
    if (ow + s.L <= a.OW) {
      hn::StoreU(codes, dy, out_row + ow);
    } else {
      hn::Store(codes, dy, tail);
      std::memcpy(out_row + ow, tail, size_t(a.OW - ow) * sizeof(TY));
    }
  }
}

template <typename TX, typename TY>
void planes(const DwConvArgs& a, int64_t p_begin, int64_t p_end) {
  const DwLayout s = dw_layout(a);
  std::vector<int32_t> xs(size_t(s.R * s.row)), acc_row(size_t(s.OWr));
  const int64_t taps = a.KH * a.KW;
  std::vector<int64_t> toff(static_cast<size_t>(taps));
  for (int64_t kh = 0; kh < a.KH; ++kh)
    for (int64_t kw = 0; kw < a.KW; ++kw) {
      const int64_t t = kw * a.dw;
      toff[size_t(kh * a.KW + kw)] = kh * a.dh * s.row + (t % a.sw) * s.Lp + t / a.sw;
    }
  for (int64_t p = p_begin; p < p_end; ++p) {
    const int64_t c = p % a.C;
    std::fill(xs.begin(), xs.end(), 0);
    fill(static_cast<const TX*>(a.x) + p * a.H * a.W, a, s, xs.data());
    TY* y = static_cast<TY*>(a.y) + p * a.OH * a.OW;
    const int32_t* w = a.w + c * taps;
    for (int64_t oh = 0; oh < a.OH; ++oh) {
      const int32_t* base = xs.data() + oh * a.sh * s.row;
      if (taps == 9)
        conv_row<9>(s, base, toff.data(), taps, w, a.bias[c], acc_row.data());
      else
        conv_row<0>(s, base, toff.data(), taps, w, a.bias[c], acc_row.data());
      requantize_row(a, s, acc_row.data(), c, y + oh * a.OW);
    }
  }
}

void DwConvPlanes(const DwConvArgs& a, int64_t p_begin, int64_t p_end) {
  if (a.x_u8)
    a.y_u8 ? planes<uint8_t, uint8_t>(a, p_begin, p_end) : planes<uint8_t, int8_t>(a, p_begin, p_end);
  else
    a.y_u8 ? planes<int8_t, uint8_t>(a, p_begin, p_end) : planes<int8_t, int8_t>(a, p_begin, p_end);
}

}  // namespace finch::quant::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace finch::quant::kernels {

HWY_EXPORT(DwConvPlanes);

void qs8_dwconv_planes(const DwConvArgs& a, int64_t p_begin, int64_t p_end) {
  FINCH_DISPATCH(DwConvPlanes)(a, p_begin, p_end);
}

}  // namespace finch::quant::kernels
#endif  // HWY_ONCE
