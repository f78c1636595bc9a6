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

// Where the input columns of one stride phase go: columns iw0, iw0 + sw, ... (count of them) land
// at consecutive scratch columns from dst (relative to the row). Computed once per call: the
// divisions would otherwise dominate a 14×14 plane.
struct Phase {
  int64_t iw0, count, dst;
};

std::vector<Phase> phases(const DwConvArgs& a, const DwLayout& s) {
  std::vector<Phase> ph;
  for (int64_t q = 0; q < a.sw; ++q) {
    const int64_t pc0 = a.pw + ((q - a.pw) % a.sw + a.sw) % a.sw;  // first padded column in phase q
    const int64_t iw0 = pc0 - a.pw;
    if (iw0 < a.W) ph.push_back({iw0, (a.W - 1 - iw0) / a.sw + 1, q * s.Lp + pc0 / a.sw});
  }
  return ph;
}

// Copies plane x [H, W] into the scratch as x − zx (zeros elsewhere: xs starts
// zeroed and every plane writes the same cells, so the padding stays 0 from plane to plane).
// Stride 1 widens 4 codes at a time (a 128-bit vector: MobileNet's 7- and 14-wide rows are
// narrower than a full AVX-512 vector), other strides gather one code at a time.
template <typename TX>
void fill(const TX* x, const DwConvArgs& a, const DwLayout& s, const std::vector<Phase>& ph, int32_t* xs) {
  const hn::CappedTag<int32_t, 4> d4;
  const hn::Rebind<TX, decltype(d4)> dx4;
  const int32_t zx = a.zx;
  const auto vzx = hn::Set(d4, zx);
  const int64_t L4 = int64_t(hn::Lanes(d4));  // 4, or 1 on the scalar target
  const int64_t r_end = std::min(s.R, a.H + a.ph);
  for (int64_t r = a.ph; r < r_end; ++r) {
    const TX* src = x + (r - a.ph) * a.W;
    for (const Phase& q : ph) {
      int32_t* dst = xs + r * s.row + q.dst;
      const TX* in = src + q.iw0;
      int64_t j = 0;
      if (a.sw == 1) {
        for (; j + L4 <= q.count; j += L4)
          hn::StoreU(hn::Sub(hn::PromoteTo(d4, hn::LoadU(dx4, in + j)), vzx), d4, dst + j);
        for (; j < q.count; ++j) dst[j] = int32_t(in[j]) - zx;
      } else {
        for (; j < q.count; ++j) dst[j] = int32_t(in[j * a.sw]) - zx;
      }
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

// Requantizes n accumulators of channel c into codes (the whole plane at once: rows are
// contiguous in acc, so only the plane's last vector is partial).
template <typename TY>
void requantize_plane(const DwConvArgs& a, const DwLayout& s, const int32_t* acc_row, int64_t n_out, int64_t c,
                      TY* out_row) {
  const DI d;
  const hn::Rebind<TY, DI> dy;
  const int n = a.shift[c];
  if (!RequantVectorApplies(n)) {  // a real multiplier >= 2^30: the scalar rule saturates
    const FixedPointMultiplier m{a.mult[c], n - 31};
    requantize(acc_row, n_out, m, a.z_out, a.qmin, a.qmax, out_row);
    return;
  }
  const RequantParams q(a.mult[c], n, a.z_out, a.qmin, a.qmax);
  HWY_ALIGN TY tail[HWY_MAX_BYTES / sizeof(int32_t)];
  for (int64_t i = 0; i < n_out; i += s.L) {
    const auto codes = hn::DemoteTo(dy, Requantize(d, hn::LoadU(d, acc_row + i), q));  // inside TY: clamped
    if (i + s.L <= n_out) {
      hn::StoreU(codes, dy, out_row + i);
    } else {
      hn::Store(codes, dy, tail);
      std::memcpy(out_row + i, tail, size_t(n_out - i) * sizeof(TY));
    }
  }
}

template <typename TX, typename TY>
void planes(const DwConvArgs& a, int64_t p_begin, int64_t p_end) {
  const DwLayout s = dw_layout(a);
  // acc holds the plane's accumulators [OH, OW]: row oh is stored (OWr wide) at oh·OW, and the
  // next row overwrites the columns past OW, so the plane ends up contiguous.
  std::vector<int32_t> xs(size_t(s.R * s.row)), acc(size_t(a.OH * a.OW + s.OWr));
  const int64_t taps = a.KH * a.KW;
  std::vector<int64_t> toff(static_cast<size_t>(taps));
  for (int64_t kh = 0; kh < a.KH; ++kh)
    for (int64_t kw = 0; kw < a.KW; ++kw) {
      const int64_t t = kw * a.dw;
      toff[size_t(kh * a.KW + kw)] = kh * a.dh * s.row + (t % a.sw) * s.Lp + t / a.sw;
    }
  const std::vector<Phase> ph = phases(a, s);
  for (int64_t p = p_begin; p < p_end; ++p) {
    const int64_t c = p % a.C;
    fill(static_cast<const TX*>(a.x) + p * a.H * a.W, a, s, ph, xs.data());
    TY* y = static_cast<TY*>(a.y) + p * a.OH * a.OW;
    const int32_t* w = a.w + c * taps;
    for (int64_t oh = 0; oh < a.OH; ++oh) {
      const int32_t* base = xs.data() + oh * a.sh * s.row;
      if (taps == 9)
        conv_row<9>(s, base, toff.data(), taps, w, a.bias[c], acc.data() + oh * a.OW);
      else
        conv_row<0>(s, base, toff.data(), taps, w, a.bias[c], acc.data() + oh * a.OW);
    }
    requantize_plane(a, s, acc.data(), a.OH * a.OW, c, y);
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
