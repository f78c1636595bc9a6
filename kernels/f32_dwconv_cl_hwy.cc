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

#undef FINCH_DWCL_TRANSPOSE16
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
#define FINCH_DWCL_TRANSPOSE16 1
// r[i][j] -> r[j][i] for a 16×16 block of floats (x86 intrinsics: Highway 1.0.3 has no
// cross-block transpose). unpack{lo,hi}_ps interleave row pairs, unpack{lo,hi}_pd make each
// 128-bit lane k of u[4g + c] hold column 4k + c of rows 4g … 4g + 3, and two rounds of
// shuffle_f32x4 transpose those 4×4 arrangements of 128-bit lanes.
HWY_INLINE void Transpose16(__m512 (&r)[16]) {
  __m512 t[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  __m512 u[16];
  for (int g = 0; g < 4; ++g) {
    const __m512d a = _mm512_castps_pd(t[4 * g]), b = _mm512_castps_pd(t[4 * g + 1]);
    const __m512d c = _mm512_castps_pd(t[4 * g + 2]), e = _mm512_castps_pd(t[4 * g + 3]);
    u[4 * g + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
    u[4 * g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
    u[4 * g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, e));
    u[4 * g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, e));
  }
  for (int c = 0; c < 4; ++c) {
    const __m512 v0 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x44), v1 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xEE);
    const __m512 v2 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x44);
    const __m512 v3 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xEE);
    r[0 + c] = _mm512_shuffle_f32x4(v0, v2, 0x88);
    r[4 + c] = _mm512_shuffle_f32x4(v0, v2, 0xDD);
    r[8 + c] = _mm512_shuffle_f32x4(v1, v3, 0x88);
    r[12 + c] = _mm512_shuffle_f32x4(v1, v3, 0xDD);
  }
}
#else
#define FINCH_DWCL_TRANSPOSE16 0
#endif

// The per-call state of the blocks of one thread.
struct Ctx {
  int64_t Wp, taps, HW, OHW;  // HW, OHW: pixels of a (band of a) plane
  int64_t XP, YP;             // plane pitches of x and y (F32DwArgs::x_plane, y_plane)
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
  const float* xb = a.x + (n * a.C + c0) * k.XP;
  // Transpose in: lane l of sub-vector v reads channel min(v + l, nc − 1) (a channel past C
  // repeats the last one: finite, and its zero weights make it 0; it is never stored).
  HWY_ALIGN int32_t idx[CB];
  for (int64_t l = 0; l < CB; ++l) idx[l] = int32_t(std::min(l, nc - 1) * k.XP);
  int64_t p = 0;  // input pixels [0, p) transposed so far
#if FINCH_DWCL_TRANSPOSE16
  // 16 pixels at a time by a register transpose: 16 loads, 64 shuffles, 16 stores, against 16
  // gathers (Zen 4's vgatherdps zmm costs about as much as its 16 loads, one after another).
  for (int64_t ih = 0, iw = 0; p + 16 <= HW; p += 16) {
    __m512 r[16];
    for (int64_t l = 0; l < 16; ++l) r[l] = _mm512_loadu_ps(xb + idx[l] + p);
    Transpose16(r);
    for (int j = 0; j < 16; ++j) {
      _mm512_store_ps(k.xt + ((ih + a.ph) * k.Wp + iw + a.pw) * CB, r[j]);
      if (++iw == a.W) iw = 0, ++ih;
    }
  }
#endif
  for (; p < HW; ++p) {
    const int64_t ih = p / a.W, iw = p % a.W;
    float* dst = k.xt + ((ih + a.ph) * k.Wp + iw + a.pw) * CB;
    for (int64_t v = 0; v < CB; v += L) hn::Store(hn::GatherIndex(d, xb + p, hn::Load(di, idx + v)), d, dst + v);
  }
  // bias, then the taps in (kh, kw) order by FMA: the sums of the plane kernel and of
  // ops::conv2d, bit for bit.
  const float* wc = a.w_cl + c0;
  if constexpr (TAPS > 0) {
    // A fixed tap count: the block's weights and tap offsets live in registers, so each output
    // vector costs its TAPS input loads and FMAs only.
    for (int64_t v = 0; v < CB; v += L) {
      hn::Vec<D> wv[TAPS];
      int64_t off[TAPS];
      for (int t = 0; t < TAPS; ++t) wv[t] = hn::LoadU(d, wc + t * a.Cp + v), off[t] = k.toff[t] + v;
      const auto bv = hn::LoadU(d, a.bias_cl + c0 + v);
      for (int64_t oh = 0; oh < a.OH; ++oh)
        for (int64_t ow = 0; ow < a.OW; ++ow) {
          const float* base = k.xt + (oh * a.sh * k.Wp + ow * a.sw) * CB;
          auto acc = bv;
          for (int t = 0; t < TAPS; ++t) acc = hn::MulAdd(wv[t], hn::Load(d, base + off[t]), acc);
          hn::Store(acc, d, k.yt + (oh * a.OW + ow) * CB + v);
        }
    }
  } else {
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
  }
  // Transpose out with the epilogue: 16 pixels of every channel at a time (AVX-512; a last
  // partial group reads yt's slack rows and drops their lanes), else L pixels of one channel per
  // vector. Only the block's own outputs are stored: another thread may own what follows.
  int64_t o0 = 0;
  const float* res = a.residual;
#if FINCH_DWCL_TRANSPOSE16
  for (; o0 < OHW; o0 += 16) {
    const int64_t valid = std::min<int64_t>(16, OHW - o0);
    __m512 r[16];
    for (int j = 0; j < 16; ++j) r[j] = _mm512_load_ps(k.yt + (o0 + j) * CB);
    Transpose16(r);
    for (int64_t l = 0; l < nc; ++l) {
      const int64_t yo = (n * a.C + c0 + l) * k.YP + o0;
      hn::Vec<D> v;
      v.raw = r[l];
      if (valid == 16) {
        if (res) v = hn::Add(v, hn::LoadU(d, res + yo));
        hn::StoreU(activate(d, v, a.act), d, a.y + yo);
      } else {
        HWY_ALIGN float tmp[CB] = {};
        if (res) {
          std::copy(res + yo, res + yo + valid, tmp);
          v = hn::Add(v, hn::Load(d, tmp));
        }
        hn::Store(activate(d, v, a.act), d, tmp);
        std::copy(tmp, tmp + valid, a.y + yo);
      }
    }
  }
#endif
  for (int64_t i = 0; i < L; ++i) idx[i] = int32_t(i * CB);
  const auto step = hn::Load(di, idx);
  for (int64_t l = 0; l < nc; ++l) {
    const int64_t yo = (n * a.C + c0 + l) * k.YP;
    float* yp = a.y + yo;
    const float* rp = res ? res + yo : nullptr;
    for (int64_t o = o0; o < OHW; o += L) {
      auto v = hn::GatherIndex(d, k.yt + o * CB + l, step);
      const int64_t valid = std::min(L, OHW - o);
      if (valid == L) {
        if (rp) v = hn::Add(v, hn::LoadU(d, rp + o));
        hn::StoreU(activate(d, v, a.act), d, yp + o);
      } else {  // the plane's last pixels: nothing past them is stored (another block may own it)
        HWY_ALIGN float tmp[CB] = {};
        if (rp) {
          std::copy(rp + o, rp + OHW, tmp);
          v = hn::Add(v, hn::Load(d, tmp));
        }
        hn::Store(activate(d, v, a.act), d, tmp);
        std::copy(tmp, tmp + valid, yp + o);
      }
    }
  }
}

int64_t ClMaxPlane() { return FINCH_DWCL_TRANSPOSE16 ? 1024 : 64; }

void F32DwconvClBlocks(const F32DwArgs& a, int64_t b0, int64_t b1) {
  const hn::CappedTag<float, CB> d;
  Ctx k;
  k.Wp = a.W + 2 * a.pw, k.taps = a.KH * a.KW, k.HW = a.H * a.W, k.OHW = a.OH * a.OW;
  k.XP = a.x_plane, k.YP = a.y_plane;
  thread_local std::vector<int64_t> toff_buf;  // reused
  toff_buf.resize(size_t(k.taps));
  for (int64_t kh = 0; kh < a.KH; ++kh)
    for (int64_t kw = 0; kw < a.KW; ++kw) toff_buf[size_t(kh * a.KW + kw)] = (kh * a.dh * k.Wp + kw * a.dw) * CB;
  k.toff = toff_buf.data();
  // Rows: the padded plane, or what the OH output rows reach (a band's rows past H are padding).
  const int64_t xt_n = std::max(a.H + 2 * a.ph, (a.OH - 1) * a.sh + (a.KH - 1) * a.dh + 1) * k.Wp * CB;
  k.xt = block_buffer(size_t(xt_n + (k.OHW + CB) * CB));
  k.yt = k.xt + xt_n;
  std::fill(k.xt, k.xt + xt_n, 0.0f);  // the padding border (every block rewrites the interior)
  const int64_t nb = (a.C + CB - 1) / CB;
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
HWY_EXPORT(ClMaxPlane);
}
int64_t f32_dwconv_cl_max_plane() { return FINCH_DISPATCH(f32dwcl::ClMaxPlane)(); }
void f32_dwconv_cl_blocks(const F32DwArgs& a, int64_t b_begin, int64_t b_end) {
  FINCH_DISPATCH(f32dwcl::F32DwconvClBlocks)(a, b_begin, b_end);
}
}  // namespace finch::quant::kernels
#endif  // HWY_ONCE
