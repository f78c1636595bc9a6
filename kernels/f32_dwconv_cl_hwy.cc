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

// The fused activation, with ops::relu / ops::relu6's exact formulas (as f32_dwconv_hwy.cc).
template <class D>
HWY_INLINE hn::Vec<D> activate(D d, hn::Vec<D> v, F32Act act) {
  if (act == F32Act::relu) return hn::IfThenZeroElse(hn::Lt(v, hn::Zero(d)), v);
  if (act == F32Act::relu6)
    return hn::IfThenElse(hn::IsNaN(v), v, hn::Min(hn::Max(v, hn::Zero(d)), hn::Set(d, 6.0f)));
  return v;
}

// The per-call state of the blocks of one thread.
struct Ctx {
  int64_t Wp, taps, HW, OHW, y_end;  // y_end: where this thread's output channels end
  const int64_t* toff;               // tap offsets into xt
  float* xt;                         // [Hp·Wp, CB], border zeroed once per call
  float* yt;                         // [OHW + CB, CB] sums, pixel-major
};

// One block: channels [c0, c0 + nc) of image n. Transposes go through gathers (one vector per
// pixel in, one per channel and L pixels out) rather than 16 scalar moves each.
template <int TAPS, class D>
void block(D d, const F32DwArgs& a, const Ctx& k, int64_t n, int64_t c0, int64_t nc) {
  const hn::RebindToSigned<D> di;
  const int64_t L = int64_t(hn::Lanes(d)), taps = TAPS > 0 ? TAPS : k.taps, HW = k.HW, OHW = k.OHW;
  const float* xb = a.x + (n * a.C + c0) * HW;
  // Transpose in: lane l of sub-vector v reads channel min(v + l, nc − 1) (a channel past C
  // repeats the last one: finite, and its zero weights make it 0; it is never stored).
  HWY_ALIGN int32_t idx[CB];
  for (int64_t l = 0; l < CB; ++l) idx[l] = int32_t(std::min(l, nc - 1) * HW);
  for (int64_t ih = 0; ih < a.H; ++ih)
    for (int64_t iw = 0; iw < a.W; ++iw) {
      float* dst = k.xt + ((ih + a.ph) * k.Wp + iw + a.pw) * CB;
      const float* src = xb + ih * a.W + iw;
      for (int64_t v = 0; v < CB; v += L) hn::Store(hn::GatherIndex(d, src, hn::Load(di, idx + v)), d, dst + v);
    }
  // bias, then the taps in (kh, kw) order by FMA: the sums of the plane kernel and of
  // ops::conv2d, bit for bit.
  const float* wc = a.w_cl + c0;
  for (int64_t oh = 0; oh < a.OH; ++oh)
    for (int64_t ow = 0; ow < a.OW; ++ow) {
      const float* base = k.xt + (oh * a.sh * k.Wp + ow * a.sw) * CB;
      float* out = k.yt + (oh * a.OW + ow) * CB;
      for (int64_t v = 0; v < CB; v += L) {
        auto acc = hn::LoadU(d, a.bias_cl + c0 + v);
        for (int64_t t = 0; t < taps; ++t)
          acc = hn::MulAdd(hn::LoadU(d, wc + t * a.Cp + v), hn::Load(d, base + k.toff[t] + v), acc);
        hn::Store(acc, d, out + v);
      }
    }
  // Transpose out with the epilogue: L pixels of one channel per vector. A whole vector is
  // stored where it fits before y_end; the overrun lands on the next channel's plane, stored
  // later by this thread.
  for (int64_t i = 0; i < L; ++i) idx[i] = int32_t(i * CB);
  const auto step = hn::Load(di, idx);
  for (int64_t l = 0; l < nc; ++l) {
    const int64_t yo = (n * a.C + c0 + l) * OHW;
    float* yp = a.y + yo;
    const float* rp = a.residual ? a.residual + yo : nullptr;
    for (int64_t o = 0; o < OHW; o += L) {
      auto v = hn::GatherIndex(d, k.yt + o * CB + l, step);
      if (yo + o + L <= k.y_end) {
        if (rp) v = hn::Add(v, hn::LoadU(d, rp + o));
        hn::StoreU(activate(d, v, a.act), d, yp + o);
      } else {
        HWY_ALIGN float tmp[CB] = {};
        if (rp) {
          std::copy(rp + o, rp + OHW, tmp);
          v = hn::Add(v, hn::Load(d, tmp));
        }
        hn::Store(activate(d, v, a.act), d, tmp);
        std::copy(tmp, tmp + (OHW - o), yp + o);
      }
    }
  }
}

void F32DwconvClBlocks(const F32DwArgs& a, int64_t b0, int64_t b1) {
  const hn::CappedTag<float, CB> d;
  Ctx k;
  k.Wp = a.W + 2 * a.pw, k.taps = a.KH * a.KW, k.HW = a.H * a.W, k.OHW = a.OH * a.OW;
  thread_local std::vector<int64_t> toff_buf;  // reused
  toff_buf.resize(size_t(k.taps));
  for (int64_t kh = 0; kh < a.KH; ++kh)
    for (int64_t kw = 0; kw < a.KW; ++kw) toff_buf[size_t(kh * a.KW + kw)] = (kh * a.dh * k.Wp + kw * a.dw) * CB;
  k.toff = toff_buf.data();
  const int64_t xt_n = (a.H + 2 * a.ph) * k.Wp * CB;
  k.xt = block_buffer(size_t(xt_n + (k.OHW + CB) * CB));
  k.yt = k.xt + xt_n;
  std::fill(k.xt, k.xt + xt_n, 0.0f);  // the padding border (every block rewrites the interior)
  const int64_t nb = (a.C + CB - 1) / CB;
  const int64_t last_n = (b1 - 1) / nb, last_c = std::min(a.C, ((b1 - 1) % nb + 1) * CB);
  k.y_end = (last_n * a.C + last_c) * k.OHW;
  int64_t n = b0 / nb, cb = b0 % nb;
  for (int64_t b = b0; b < b1; ++b) {
    const int64_t c0 = cb * CB, nc = std::min(CB, a.C - c0);
    if (k.taps == 9) block<9>(d, a, k, n, c0, nc);
    else block<0>(d, a, k, n, c0, nc);
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
