// Int8 depthwise convolution, channels-last path (Highway) for small planes (7×7), where
// the per-plane setup of qs8_dwconv_hwy.cc outweighs the few outputs of each plane.
//
// Image n's channels [c_begin, c_end) go, a sub-block of up to 32 at a time, into a zero-padded
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

#include "kernels/qs8_dwconv_kernels.h"
#include "kernels/requant.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/qs8_dwconv_cl_hwy.cc"
#include "framework/hwy_kernel.h"  // foreach_target, highway, FINCH_DISPATCH

HWY_BEFORE_NAMESPACE();
namespace finch::quant::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DI = hn::ScalableTag<int32_t>;
using VI = hn::Vec<DI>;

template <typename T>
constexpr bool IsSigned() {
  return T(-1) < T(0);
}

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
    // Three independent sums: one chain of TAPS dependent multiply-adds would bound the loop by
    // their latency.
    VI b0 = hn::Zero(d), b1 = hn::Zero(d), c0 = hn::Zero(d), c1 = hn::Zero(d);
    for (int t = 0; t < TAPS; t += 3) {
      acc0 = cl_mul_acc(d, hn::LoadU(d, base + toff[t]), wv[t], acc0, acc1);
      if (t + 1 < TAPS) b0 = cl_mul_acc(d, hn::LoadU(d, base + toff[t + 1]), wv[t + 1], b0, b1);
      if (t + 2 < TAPS) c0 = cl_mul_acc(d, hn::LoadU(d, base + toff[t + 2]), wv[t + 2], c0, c1);
    }
    return hn::Add(hn::Add(hn::RearrangeToOddPlusEven(acc0, acc1), hn::RearrangeToOddPlusEven(b0, b1)),
                   hn::Add(hn::RearrangeToOddPlusEven(c0, c1), vb));
  } else {
    for (int64_t t = 0; t < taps; ++t)
      acc0 = cl_mul_acc(d, hn::LoadU(d, base + toff[t]), hn::LoadU(d, w + t * Cp), acc0, acc1);
  }
  // ReorderWidenMulAccumulate may spread the sums over two accumulators in its own lane order
  // (NEON): RearrangeToOddPlusEven restores the channel order.
  return hn::Add(hn::RearrangeToOddPlusEven(acc0, acc1), vb);
}

template <int TAPS>
void cl_vector(const DwClArgs& a, const int32_t* xs, int64_t Wp, int64_t CBS, const int64_t* toff, int64_t c,
               int64_t cg, int64_t nb, int32_t* yb) {
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
      int32_t* out = yb + p * CBS + c;
#if HWY_TARGET != HWY_SCALAR
      if (ok) {
        // RequantizeHighV of requant_hwy-inl.h with per-lane constants.
        const VI even = hn::BitCast(d, hn::Add(hn::MulEven(acc, vm), vre));
        const VI odd = hn::BitCast(d, hn::Add(hn::MulEven(hn::Shuffle2301(acc), vm_odd), vro));
        const VI h = hn::OddEven(odd, hn::Shuffle2301(even));
        hn::StoreU(hn::Min(hn::Max((h >> vsh), vlo), vhi), d, out);
        continue;
      }
#endif
      hn::Store(acc, d, tmp);
      for (int64_t i = 0; i < L && c + i < nb; ++i) {
        const int64_t ch = cg + i;
        const FixedPointMultiplier m{a.mult_raw[ch], a.shift_raw[ch] - 31};
        out[i] = requantize(tmp[i], m, a.z_out, a.qmin, a.qmax);
      }
    }
}

template <typename TX, typename TY>
void cl_block(const DwClArgs& a, int64_t n, int64_t c_begin, int64_t c_end) {
  const DI d;
  const int64_t L = int64_t(hn::Lanes(d)), taps = a.KH * a.KW, P = a.OH * a.OW;
  const int64_t Hp = std::max(a.H + 2 * a.ph, (a.OH - 1) * a.sh + (a.KH - 1) * a.dh + 1);
  const int64_t Wp = std::max(a.W + 2 * a.pw, (a.OW - 1) * a.sw + (a.KW - 1) * a.dw + 1);
  const int64_t CB = std::max<int64_t>(32, L), CBS = (std::min(CB, c_end - c_begin) + L - 1) / L * L;
  // The scratch outlives the call (a fresh zeroed one cost more than a 7×7 block's convolution):
  // only its padding cells are zeroed here, everything else is written below before it is read.
  thread_local std::vector<int32_t> xs;
  if (xs.size() < size_t(Hp * Wp * CBS + L)) xs.resize(size_t(Hp * Wp * CBS + L));
  for (int64_t r = 0; r < Hp; ++r) {
    int32_t* row = xs.data() + r * Wp * CBS;
    if (r < a.ph || r >= a.ph + a.H) {
      std::fill(row, row + Wp * CBS, 0);
    } else {
      std::fill(row, row + a.pw * CBS, 0);
      std::fill(row + (a.pw + a.W) * CBS, row + Wp * CBS, 0);
    }
  }
  thread_local std::vector<int32_t> yb;
  if (yb.size() < size_t(P * CBS + L)) yb.resize(size_t(P * CBS + L));  // codes as int32 [pixel][channel]
  std::vector<int64_t> toff(static_cast<size_t>(taps));
  for (int64_t kh = 0; kh < a.KH; ++kh)
    for (int64_t kw = 0; kw < a.KW; ++kw) toff[size_t(kh * a.KW + kw)] = (kh * a.dh * Wp + kw * a.dw) * CBS;
  const int64_t HW = a.H * a.W;
  std::vector<int64_t> dpos(static_cast<size_t>(HW));  // scratch cell of input pixel q
  for (int64_t q = 0; q < HW; ++q) dpos[size_t(q)] = ((q / a.W + a.ph) * Wp + q % a.W + a.pw) * CBS;
  const VI vzx = hn::Set(d, a.zx);
  for (int64_t c0 = c_begin; c0 < c_end; c0 += CB) {
    const int64_t nb = std::min(CB, c_end - c0);
    // In: x[c][q] -> xs[dpos[q] + c]. A vector of channels at a time, 4 pixels per gather: lane i
    // loads the 32-bit word of channel c + i at pixels q..q+3 (channels past nb repeat the last
    // one: never past x; their cells are never written back), then each byte goes to its pixel's
    // cell. The last HW % 4 pixels go one at a time.
    const TX* src = static_cast<const TX*>(a.x) + (n * a.C + c0) * a.x_plane;
    for (int64_t c = 0; c < nb; c += L) {
      const VI off = hn::Mul(hn::Min(hn::Iota(d, int32_t(c)), hn::Set(d, int32_t(nb - 1))), hn::Set(d, int32_t(a.x_plane)));
      int64_t q = 0;
      for (; q + 4 <= HW; q += 4) {
        const VI v = hn::GatherOffset(d, reinterpret_cast<const int32_t*>(src + q), off);
        int32_t* dst = xs.data() + c;
        if (IsSigned<TX>()) {
          hn::StoreU(hn::Sub(hn::ShiftRight<24>(hn::ShiftLeft<24>(v)), vzx), d, dst + dpos[size_t(q)]);
          hn::StoreU(hn::Sub(hn::ShiftRight<24>(hn::ShiftLeft<16>(v)), vzx), d, dst + dpos[size_t(q + 1)]);
          hn::StoreU(hn::Sub(hn::ShiftRight<24>(hn::ShiftLeft<8>(v)), vzx), d, dst + dpos[size_t(q + 2)]);
          hn::StoreU(hn::Sub(hn::ShiftRight<24>(v), vzx), d, dst + dpos[size_t(q + 3)]);
        } else {
          const VI ff = hn::Set(d, 0xFF);
          hn::StoreU(hn::Sub(hn::And(v, ff), vzx), d, dst + dpos[size_t(q)]);
          hn::StoreU(hn::Sub(hn::And(hn::ShiftRight<8>(v), ff), vzx), d, dst + dpos[size_t(q + 1)]);
          hn::StoreU(hn::Sub(hn::And(hn::ShiftRight<16>(v), ff), vzx), d, dst + dpos[size_t(q + 2)]);
          hn::StoreU(hn::Sub(hn::And(hn::ShiftRight<24>(v), ff), vzx), d, dst + dpos[size_t(q + 3)]);
        }
      }
      for (; q < HW; ++q)
        for (int64_t i = c; i < std::min(nb, c + L); ++i) xs[size_t(dpos[size_t(q)] + i)] = int32_t(src[i * a.x_plane + q]) - a.zx;
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
    // Out: yb[p][c] -> y[c][p]. Full vectors of channels: the codes of pixels p..p+3 packed into
    // one 32-bit word per channel, scattered to the channels' rows; the rest one at a time.
    TY* dst = static_cast<TY*>(a.y) + (n * a.C + c0) * a.y_plane;
    const VI ff = hn::Set(d, 0xFF);
    for (int64_t c = 0; c < nb; c += L) {
      int64_t p = 0;
      if (c + L <= nb) {
        const VI off = hn::Mul(hn::Iota(d, int32_t(c)), hn::Set(d, int32_t(a.y_plane)));
        for (; p + 4 <= P; p += 4) {
          const int32_t* s = yb.data() + p * CBS + c;
          const VI w = hn::Or(hn::Or(hn::And(hn::LoadU(d, s), ff), hn::ShiftLeft<8>(hn::And(hn::LoadU(d, s + CBS), ff))),
                              hn::Or(hn::ShiftLeft<16>(hn::And(hn::LoadU(d, s + 2 * CBS), ff)),
                                     hn::ShiftLeft<24>(hn::LoadU(d, s + 3 * CBS))));
          hn::ScatterOffset(w, d, reinterpret_cast<int32_t*>(dst + p), off);
        }
      }
      for (; p < P; ++p)
        for (int64_t i = c; i < std::min(nb, c + L); ++i) dst[i * a.y_plane + p] = TY(yb[size_t(p * CBS + i)]);
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
