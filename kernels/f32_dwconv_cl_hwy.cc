// The fp32 depthwise micro-kernel for small planes, channels-last (Highway): 16 channels at a
// time, one vector lane per channel. A 4×4 or 7×7 plane is too small for vectors along its
// rows — per-plane packing and partial vectors cost more than its 144–441 multiply-adds — but
// 16 channels of one pixel fill a vector exactly.
//
// Shapes: x [N, C, H, W], y [N, C, OH, OW] (M == 1); per block the scratch xt [Hp·Wp, 16] holds
// the zero-padded planes of its channels pixel-major (Hp = H + 2·ph, Wp = W + 2·pw), the
// weights come channels-last [KH·KW, Cp] from the operator. Output (oh, ow) at tap (kh, kw) reads
// pixel (oh·sh + kh·dh, ow·sw + kw·dw) of xt: any stride, padding and dilation.
#include <algorithm>
#include <vector>

#include "kernels/f32_dwconv_kernels.h"

#ifndef FINCH_F32_DWCONV_CL_SCRATCH
#define FINCH_F32_DWCONV_CL_SCRATCH
#include "hwy/aligned_allocator.h"
namespace finch::quant::kernels::f32dwcl {
// The per-thread transposed block (only grows; no allocation per run once the largest layer ran).
inline float* block_buffer(size_t n) {
  thread_local hwy::AlignedFreeUniquePtr<float[]> p;
  thread_local size_t cap = 0;
  if (n > cap) p = hwy::AllocateAligned<float>(n), cap = n;
  return p.get();
}
}  // namespace finch::quant::kernels::f32dwcl
#endif

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/f32_dwconv_cl_hwy.cc"
#include "framework/hwy_kernel.h"  // foreach_target, highway, FINCH_DISPATCH

HWY_BEFORE_NAMESPACE();
namespace finch::quant::kernels::f32dwcl {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

constexpr int64_t CB = kF32DwClBlock;

template <class D>
HWY_INLINE hn::Vec<D> activate(D d, hn::Vec<D> v, F32Act act) {
  if (act != F32Act::none) v = hn::Max(v, hn::Zero(d));
  if (act == F32Act::relu6) v = hn::Min(v, hn::Set(d, 6.0f));
  return v;
}

// One block: channels [c0, c0 + nc) of image n.
template <int TAPS, class D>
void block(D d, const F32DwArgs& a, int64_t n, int64_t c0, int64_t nc, const int64_t* toff, float* xt) {
  const int64_t L = int64_t(hn::Lanes(d)), Hp = a.H + 2 * a.ph, Wp = a.W + 2 * a.pw;
  const int64_t taps = TAPS > 0 ? TAPS : a.KH * a.KW, HW = a.H * a.W, OHW = a.OH * a.OW;
  // Transpose in, zero padding and zero channels past C.
  const auto z = hn::Zero(d);
  for (int64_t i = 0; i < Hp * Wp * CB; i += L) hn::Store(z, d, xt + i);
  for (int64_t cl = 0; cl < nc; ++cl) {
    const float* xp = a.x + (n * a.C + c0 + cl) * HW;
    for (int64_t ih = 0; ih < a.H; ++ih) {
      float* dst = xt + ((ih + a.ph) * Wp + a.pw) * CB + cl;
      for (int64_t iw = 0; iw < a.W; ++iw) dst[iw * CB] = xp[ih * a.W + iw];
    }
  }
  const float* wc = a.w_cl + c0;
  float* yb = a.y + (n * a.C + c0) * OHW;
  const float* rb = a.residual ? a.residual + (n * a.C + c0) * OHW : nullptr;
  HWY_ALIGN float out[CB];
  for (int64_t oh = 0; oh < a.OH; ++oh)
    for (int64_t ow = 0; ow < a.OW; ++ow) {
      const float* base = xt + (oh * a.sh * Wp + ow * a.sw) * CB;
      for (int64_t v = 0; v < CB; v += L) {
        // bias, then the taps in (kh, kw) order by FMA: the sums of the plane kernel and of
        // ops::conv2d, bit for bit.
        auto acc = hn::LoadU(d, a.bias_cl + c0 + v);
        for (int64_t t = 0; t < taps; ++t)
          acc = hn::MulAdd(hn::LoadU(d, wc + t * a.Cp + v), hn::Load(d, base + toff[t] + v), acc);
        hn::Store(acc, d, out + v);
      }
      const int64_t o = oh * a.OW + ow;
      if (!rb) {
        for (int64_t v = 0; v < CB; v += L) hn::Store(activate(d, hn::Load(d, out + v), a.act), d, out + v);
        for (int64_t cl = 0; cl < nc; ++cl) yb[cl * OHW + o] = out[cl];
      } else {
        for (int64_t cl = 0; cl < nc; ++cl) out[cl] += rb[cl * OHW + o];
        for (int64_t v = 0; v < CB; v += L) hn::Store(activate(d, hn::Load(d, out + v), a.act), d, out + v);
        for (int64_t cl = 0; cl < nc; ++cl) yb[cl * OHW + o] = out[cl];
      }
    }
}

void F32DwconvClBlocks(const F32DwArgs& a, int64_t b0, int64_t b1) {
  const hn::CappedTag<float, CB> d;
  const int64_t Wp = a.W + 2 * a.pw, taps = a.KH * a.KW;
  thread_local std::vector<int64_t> toff_buf;  // reused
  toff_buf.resize(size_t(taps));
  int64_t* toff = toff_buf.data();
  for (int64_t kh = 0; kh < a.KH; ++kh)
    for (int64_t kw = 0; kw < a.KW; ++kw) toff[kh * a.KW + kw] = (kh * a.dh * Wp + kw * a.dw) * CB;
  float* xt = block_buffer(size_t((a.H + 2 * a.ph) * Wp * CB));
  const int64_t nb = (a.C + CB - 1) / CB;
  int64_t n = b0 / nb, cb = b0 % nb;
  for (int64_t b = b0; b < b1; ++b) {
    const int64_t c0 = cb * CB, nc = std::min(CB, a.C - c0);
    if (taps == 9) block<9>(d, a, n, c0, nc, toff, xt);
    else block<0>(d, a, n, c0, nc, toff, xt);
    if (++cb == nb) cb = 0, ++n;
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace finch::quant::kernels::f32dwcl
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace finch::quant::kernels {
namespace f32dwcl {
HWY_EXPORT(F32DwconvClBlocks);
}
void f32_dwconv_cl_blocks(const F32DwArgs& a, int64_t b_begin, int64_t b_end) {
  FINCH_DISPATCH(f32dwcl::F32DwconvClBlocks)(a, b_begin, b_end);
}
}  // namespace finch::quant::kernels
#endif  // HWY_ONCE
