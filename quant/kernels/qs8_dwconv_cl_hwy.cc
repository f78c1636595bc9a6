// Int8 depthwise convolution, channels-last path (Highway) for small planes (7×7, 14×14), where
// the per-plane setup of qs8_dwconv_hwy.cc outweighs the few outputs of each plane.
//
// Image n's channels [c_begin, c_end) go, a sub-block of up to 64 at a time, into a zero-padded
// int32 scratch [Hp][Wp][CBS] of x − zx (padding 0 adds nothing, as the reference skips it). One
// vector of channels at a time holds its weights in registers and visits every output pixel: each
// tap is one load at a constant offset and one pairwise multiply-add (vpmaddwd): the scratch cell
// is x − zx sign-extended (low int16 half the value, high half its sign), the weight cell has the
// weight low and 0 high, so the pair sum is exactly (x − zx)·w. The operator has proved no int32
// sum can overflow, so the order does not matter. The codes, requantized per lane with each
// channel's constants (the n in [32, 52] rule of requant_hwy-inl.h, with per-lane multipliers,
// rounding terms and shifts; other channels take the scalar rule), are stored [pixel][channel]
// and transposed back into y [C][OH][OW].
#include <algorithm>
#include <cstring>
#include <vector>

#include "quant/kernels/qs8_dwconv_kernels.h"
#include "quant/kernels/requant.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "quant/kernels/qs8_dwconv_cl_hwy.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "framework/simd_dispatch.h"

HWY_BEFORE_NAMESPACE();
namespace finch::quant::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DI = hn::ScalableTag<int32_t>;
using VI = hn::Vec<DI>;

// acc += (x − zx)·w per lane (see the top: pairwise multiply-add with a zero high weight).
HWY_INLINE VI cl_mul_acc(DI d, VI x, VI w, VI acc, VI& acc1) {
#if HWY_TARGET == HWY_AVX3_DL
  // vpdpwssd: the multiply-add and the accumulation in one instruction (inline assembly: see
  // pair_mul_acc in qs8_dwconv_hwy.cc for why not the intrinsic).
  (void)d;
  (void)acc1;
  __m512i r = acc.raw;
  asm("vpdpwssd %2, %1, %0" : "+v"(r) : "v"(x.raw), "v"(w.raw));
  return VI{r};
#elif HWY_TARGET == HWY_SCALAR
  (void)d;
  (void)acc1;
  return hn::Add(acc, hn::Mul(x, VI(int32_t(int16_t(hn::GetLane(w))))));
#else
  const hn::Repartition<int16_t, DI> d16;
  return hn::ReorderWidenMulAccumulate(d, hn::BitCast(d16, x), hn::BitCast(d16, w), acc, acc1);
#endif
}

// Σ over TAPS taps of one output pixel (base: its first tap in the scratch) + bias. TAPS > 0 fixes
// the count (3×3: 9, the weights stay in registers), 0 leaves it to run time.
template <int TAPS>
HWY_INLINE VI cl_pixel(DI d, const int32_t* base, const int64_t* toff, int64_t taps, const VI* wv, const int32_t* w,
                       int64_t Cp, VI vb) {
  VI acc0 = hn::Zero(d), acc1 = hn::Zero(d);
  if (TAPS) {
    for (int t = 0; t < TAPS; ++t) acc0 = cl_mul_acc(d, hn::LoadU(d, base + toff[t]), wv[t], acc0, acc1);
  } else {
    for (int64_t t = 0; t < taps; ++t)
      acc0 = cl_mul_acc(d, hn::LoadU(d, base + toff[t]), hn::LoadU(d, w + t * Cp), acc0, acc1);
  }
  // ReorderWidenMulAccumulate may spread the sums over two accumulators in its own lane order
  // (NEON): RearrangeToOddPlusEven restores the channel order.
  return hn::Add(hn::RearrangeToOddPlusEven(acc0, acc1), vb);
}

template <int TAPS, typename TY>
void cl_vector(const DwClArgs& a, const int32_t* xs, int64_t Wp, int64_t CBS, const int64_t* toff, int64_t c,
               int64_t cg, int64_t nb, TY* yb) {
  const DI d;
  const int64_t L = int64_t(hn::Lanes(d)), taps = a.KH * a.KW;
  const int32_t* w = a.w + cg;
  // Weights in registers when the count is known (arrays of vectors: not on sizeless SVE, where
  // TAPS is never used: see cl_block).
  VI wv[TAPS ? TAPS : 1];
  for (int t = 0; t < TAPS; ++t) wv[t] = hn::LoadU(d, w + t * a.Cp);
  const VI vb = hn::LoadU(d, a.bias + cg);
  bool ok = HWY_TARGET != HWY_SCALAR;
  for (int64_t i = 0; i < L; ++i) ok = ok && a.vec_ok[cg + i];
#if HWY_TARGET != HWY_SCALAR
  const hn::Rebind<TY, DI> dy;
  const hn::RepartitionToWide<DI> d64;
  const VI vm = hn::LoadU(d, a.mult + cg), vm_odd = hn::Shuffle2301(vm), vsh = hn::LoadU(d, a.rshift + cg);
  const auto vre = hn::LoadU(d64, a.round_even + cg / 2), vro = hn::LoadU(d64, a.round_odd + cg / 2);
  const VI vlo = hn::Set(d, a.qmin), vhi = hn::Set(d, a.qmax);
#endif
  HWY_ALIGN int32_t tmp[HWY_MAX_BYTES / sizeof(int32_t)];
  for (int64_t oh = 0; oh < a.OH; ++oh)
    for (int64_t ow = 0; ow < a.OW; ++ow) {
      const int64_t p = oh * a.OW + ow;
      const VI acc = cl_pixel<TAPS>(d, xs + (oh * a.sh * Wp + ow * a.sw) * CBS + c, toff, taps, wv, w, a.Cp, vb);
      TY* out = yb + p * CBS + c;
#if HWY_TARGET != HWY_SCALAR
      if (ok) {
        // RequantizeHighV of requant_hwy-inl.h with per-lane constants.
        const VI even = hn::BitCast(d, hn::Add(hn::MulEven(acc, vm), vre));
        const VI odd = hn::BitCast(d, hn::Add(hn::MulEven(hn::Shuffle2301(acc), vm_odd), vro));
        const VI h = hn::OddEven(odd, hn::Shuffle2301(even));
        hn::StoreU(hn::DemoteTo(dy, hn::Min(hn::Max((h >> vsh), vlo), vhi)), dy, out);
        continue;
      }
#endif
      hn::Store(acc, d, tmp);
      for (int64_t i = 0; i < L && c + i < nb; ++i) {
        const int64_t ch = cg + i;
        const FixedPointMultiplier m{a.mult_raw[ch], a.shift_raw[ch] - 31};
        out[i] = TY(requantize(tmp[i], m, a.z_out, a.qmin, a.qmax));
      }
    }
}

template <typename TX, typename TY>
void cl_block(const DwClArgs& a, int64_t n, int64_t c_begin, int64_t c_end) {
  const DI d;
  const int64_t L = int64_t(hn::Lanes(d)), taps = a.KH * a.KW, P = a.OH * a.OW;
  const int64_t Hp = std::max(a.H + 2 * a.ph, (a.OH - 1) * a.sh + (a.KH - 1) * a.dh + 1);
  const int64_t Wp = std::max(a.W + 2 * a.pw, (a.OW - 1) * a.sw + (a.KW - 1) * a.dw + 1);
  const int64_t CB = std::max<int64_t>(64, L), CBS = (std::min(CB, c_end - c_begin) + L - 1) / L * L;
  std::vector<int32_t> xs(size_t(Hp * Wp * CBS + L));  // zero: the padding
  std::vector<TY> yb(size_t(P * CBS + L));
  std::vector<int64_t> toff(static_cast<size_t>(taps));
  for (int64_t kh = 0; kh < a.KH; ++kh)
    for (int64_t kw = 0; kw < a.KW; ++kw) toff[size_t(kh * a.KW + kw)] = (kh * a.dh * Wp + kw * a.dw) * CBS;
  const int64_t HW = a.H * a.W;
  for (int64_t c0 = c_begin; c0 < c_end; c0 += CB) {
    const int64_t nb = std::min(CB, c_end - c0);
    // In: x[c][ih][iw] -> xs[ih + ph][iw + pw][c]. Cells of lanes past nb keep the previous
    // sub-block's values: bounded codes, their outputs are never written back.
    for (int64_t c = 0; c < nb; ++c) {
      const TX* src = static_cast<const TX*>(a.x) + (n * a.C + c0 + c) * HW;
      for (int64_t ih = 0; ih < a.H; ++ih) {
        int32_t* dst = xs.data() + ((ih + a.ph) * Wp + a.pw) * CBS + c;
        for (int64_t iw = 0; iw < a.W; ++iw) dst[iw * CBS] = int32_t(src[ih * a.W + iw]) - a.zx;
      }
    }
    for (int64_t c = 0; c < nb; c += L) {
#if HWY_HAVE_SCALABLE
      cl_vector<0>(a, xs.data(), Wp, CBS, toff.data(), c, c0 + c, nb, yb.data());
#else
      if (taps == 9)
        cl_vector<9>(a, xs.data(), Wp, CBS, toff.data(), c, c0 + c, nb, yb.data());
      else
        cl_vector<0>(a, xs.data(), Wp, CBS, toff.data(), c, c0 + c, nb, yb.data());
#endif
    }
    // Out: yb[p][c] -> y[c][p].
    for (int64_t c = 0; c < nb; ++c) {
      TY* dst = static_cast<TY*>(a.y) + (n * a.C + c0 + c) * P;
      const TY* src = yb.data() + c;
      for (int64_t p = 0; p < P; ++p) dst[p] = src[p * CBS];
    }
  }
}

void DwConvChannelsLast(const DwClArgs& a, int64_t n, int64_t c_begin, int64_t c_end) {
  if (a.x_u8)
    a.y_u8 ? cl_block<uint8_t, uint8_t>(a, n, c_begin, c_end) : cl_block<uint8_t, int8_t>(a, n, c_begin, c_end);
  else
    a.y_u8 ? cl_block<int8_t, uint8_t>(a, n, c_begin, c_end) : cl_block<int8_t, int8_t>(a, n, c_begin, c_end);
}

}  // namespace finch::quant::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace finch::quant::kernels {

HWY_EXPORT(DwConvChannelsLast);

void qs8_dwconv_cl(const DwClArgs& a, int64_t n, int64_t c_begin, int64_t c_end) {
  FINCH_DISPATCH(DwConvChannelsLast)(a, n, c_begin, c_end);
}

}  // namespace finch::quant::kernels
#endif  // HWY_ONCE
