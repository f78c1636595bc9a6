// The fp32 depthwise micro-kernels (Highway): each input plane is packed once into a reused,
// zero-padded, stride-phase-split scratch, then every tap of every output is a plain unaligned
// vector load along output columns.
//
// Shapes: x [N, C, H, W], w [C·M, KH·KW], y [N, C·M, OH, OW]; Wp = W + 2·pw, L = lanes.
// Why the phase split: padded row pr = ih + ph goes to row phase pr % sh, row pr / sh; padded
// column pc = iw + pw to column phase pc % sw, column pc / sw. Output (oh, ow) at tap (kh, kw)
// then reads phase ((kh·dh) % sh, (kw·dw) % sw) at row oh + (kh·dh) / sh, column
// ow + (kw·dw) / sw: consecutive outputs read consecutive scratch floats for every stride and
// dilation, so stride 2 costs no shuffles in the tap loop — the even/odd de-interleave happens
// once per input float while packing (LoadInterleaved2), not once per tap. Padding is the
// scratch's zero border, so the tap loop has no bounds tests. The scratch is a per-thread buffer
// that only grows (no allocation per run once the largest layer has been seen), and a plane of
// up to 112×112 floats stays in L2 while its KH·KW taps read it.
//
// Two ways to walk the outputs of a plane:
//  - by rows (f32_dwconv_rows): vectors along each output row; the last vector of a row is
//    partial. Best when OW is at least a few vectors.
//  - flat (f32_dwconv_flat): the scratch's row length Ls is the output row pitch, so outputs
//    j = oh·Ls + ow are contiguous and one vector spans several rows (Ls − OW junk columns per
//    row, computed and dropped). A 7×7 plane is 4 vectors of 16 instead of 7 half-empty ones.
//    The results go through a per-thread buffer and are compacted into y.
#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/f32_dwconv_kernels.h"

#ifndef FINCH_F32_DWCONV_SCRATCH
#define FINCH_F32_DWCONV_SCRATCH
#include "hwy/aligned_allocator.h"
namespace finch::quant::kernels::f32dw {
// A per-thread float buffer that only grows: the scratch of the plane being convolved. Zeroed
// when allocated, so the junk lanes the kernels read past a plane are never denormal garbage
// (which would slow the FMAs down).
struct Buffer {
  hwy::AlignedFreeUniquePtr<float[]> p;
  size_t cap = 0;
  float* get(size_t n) {
    if (n > cap) {
      p = hwy::AllocateAligned<float>(n);
      std::fill(p.get(), p.get() + n, 0.0f);
      cap = n;
    }
    return p.get();
  }
};
inline Buffer& plane_buffer() {
  thread_local Buffer b;
  return b;
}
inline Buffer& out_buffer() {
  thread_local Buffer b;
  return b;
}
inline int64_t ceil_div(int64_t a, int64_t b) { return a <= 0 ? 0 : (a + b - 1) / b; }
}  // namespace finch::quant::kernels::f32dw
#endif

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/f32_dwconv_hwy.cc"
#include "framework/hwy_kernel.h"  // foreach_target, highway, FINCH_DISPATCH
#include "hwy/cache_control.h"

HWY_BEFORE_NAMESPACE();
namespace finch::quant::kernels::f32dw {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

constexpr int64_t kMaxTapsOnStack = 64;

// The scratch geometry of one call (cheap to derive; the same for every plane).
struct Geom {
  int64_t L, Ls, Hs, PS, nphase, total;  // lanes, row length, rows and floats per phase, phases, floats
  int64_t maxrow, maxcol;                // the largest row / column step of a tap inside a phase
  int64_t nv;                            // vectors per output row
  bool flat;                             // walk the outputs flat (see the file comment)
  // Column phase cp < kPhases of a packed row holds input columns at [k_lo[cp], k_hi[cp]);
  // derived once, since a 64-bit division per row costs more than packing a 7-float row.
  int64_t k_lo[8], k_hi[8];
};

template <class D>
Geom make_geom(D d, const F32DwArgs& a) {
  Geom g;
  g.L = int64_t(hn::Lanes(d));
  g.maxrow = (a.KH - 1) * a.dh / a.sh;
  g.maxcol = (a.KW - 1) * a.dw / a.sw;
  g.Ls = a.OW + g.maxcol;
  g.Hs = a.OH + g.maxrow;
  g.nv = ceil_div(a.OW, g.L);
  // One vector of slack per phase: the packing stores whole vectors and may run up to L − 1
  // floats past a row, which the next row overwrites — or, after a phase's last row, this slack.
  g.PS = g.Hs * g.Ls + g.L;
  g.nphase = a.sh * a.sw;
  // Slack after the last phase: the junk lanes of the last vectors read up to one vector and a
  // row past the phase's end (both walks).
  g.total = g.nphase * g.PS + g.nv * g.L + g.L + g.Ls;
  // Flat wins when its vectors (junk columns included) are clearly fewer than the row walk's
  // partial vectors; the margin pays for the compaction copy.
  const int64_t flat_vectors = ceil_div(a.OH * g.Ls, g.L), row_vectors = a.OH * g.nv;
  g.flat = 5 * flat_vectors < 4 * row_vectors;
  for (int64_t cp = 0; cp < std::min<int64_t>(a.sw, 8); ++cp) {
    // Column k of phase cp holds input column k·sw + cp − pw.
    g.k_lo[cp] = std::min(g.Ls, ceil_div(a.pw - cp, a.sw));
    g.k_hi[cp] = std::max(g.k_lo[cp], std::min(g.Ls, ceil_div(a.W + a.pw - cp, a.sw)));
  }
  return g;
}

// Zeros [r + from, r + to) a whole vector at a time (writes up to L − 1 floats past `to`).
template <class D>
HWY_INLINE void zero_span(D d, float* HWY_RESTRICT r, int64_t from, int64_t to) {
  // The first store outside the loop: GCC turns the loop into a memset call, whose overhead is
  // what a one-vector span (padding 1) must not pay.
  if (from >= to) return;
  const auto z = hn::Zero(d);
  hn::StoreU(z, d, r + from);
  for (int64_t k = from + int64_t(hn::Lanes(d)); k < to; k += int64_t(hn::Lanes(d))) hn::StoreU(z, d, r + k);
}

// Copies input row `src` [W] into the column phases of one scratch row (phase cp's row at dst +
// cp·PS), zero outside the input. Whole vectors throughout, since the rows of a small plane are
// shorter than the call overhead of memcpy/fill: left zeros, then the data (loads may run past
// the row as long as they stay before x_end, the end of the input tensor), then right zeros,
// each step overwriting the previous one's overrun. sw == 2 de-interleaves even/odd columns.
template <class D>
void pack_row(D d, const float* HWY_RESTRICT src, const float* x_end, const F32DwArgs& a, const Geom& g,
              float* HWY_RESTRICT dst) {
  const int64_t L = g.L;
  // Column k of phase cp holds input column k·sw + cp − pw, for k in [k_lo(cp), k_hi(cp)).
  auto k_lo = [&](int64_t cp) { return cp < 8 ? g.k_lo[cp] : std::min(g.Ls, ceil_div(a.pw - cp, a.sw)); };
  auto k_hi = [&](int64_t cp) {
    return cp < 8 ? g.k_hi[cp] : std::max(k_lo(cp), std::min(g.Ls, ceil_div(a.W + a.pw - cp, a.sw)));
  };
  for (int64_t cp = 0; cp < a.sw; ++cp) zero_span(d, dst + cp * g.PS, 0, k_lo(cp));
  if (a.sw == 1) {
    const int64_t lo = k_lo(0), n = k_hi(0) - lo;
    const float* s = src + lo - a.pw;
    float* r = dst + lo;
    int64_t i = 0;
    for (; i < n && (i + L <= n || s + i + L <= x_end); i += L) hn::StoreU(hn::LoadU(d, s + i), d, r + i);
    for (; i < n; ++i) r[i] = s[i];
  } else if (a.sw == 2) {
    // Input column iw goes to phase (iw + pw) & 1, column (iw + pw) >> 1: even columns to phase
    // pe from column ke on, odd ones to phase po from column ko on.
    const int64_t pe = a.pw & 1, po = 1 - pe, ke = a.pw >> 1, ko = (a.pw + 1) >> 1;
    float* re = dst + pe * g.PS + ke;
    float* ro = dst + po * g.PS + ko;
    const int64_t ne = std::max<int64_t>(0, std::min((a.W + 1) / 2, g.Ls - ke));  // even columns kept
    const int64_t no = std::max<int64_t>(0, std::min(a.W / 2, g.Ls - ko));        // odd columns kept
    const int64_t n = std::max(ne, no);
    int64_t j = 0;
    for (; j < n && src + 2 * j + 2 * L <= x_end; j += L) {
      hn::Vec<D> ev, od;
      hn::LoadInterleaved2(d, src + 2 * j, ev, od);  // ConcatEven/ConcatOdd of two loads
      hn::StoreU(ev, d, re + j);
      hn::StoreU(od, d, ro + j);
    }
    for (int64_t i = j; i < ne; ++i) re[i] = src[2 * i];
    for (int64_t i = j; i < no; ++i) ro[i] = src[2 * i + 1];
  } else {
    for (int64_t cp = 0; cp < a.sw; ++cp) {
      float* r = dst + cp * g.PS;
      const int64_t lo = k_lo(cp), hi = k_hi(cp);
      const float* s = src + lo * a.sw + cp - a.pw;
      for (int64_t k = lo; k < hi; ++k, s += a.sw) r[k] = *s;
    }
  }
  for (int64_t cp = 0; cp < a.sw; ++cp) zero_span(d, dst + cp * g.PS, k_hi(cp), g.Ls);
}

// Input rows the packing prefetches ahead of the row it copies.
constexpr int64_t kPackAhead = 4;

// Packs input plane x [H, W] into the phase-split scratch xs, rows of each phase in order (so
// each row's overrun lands on a row still to be written), the input rows in order too: scratch
// row i of every row phase before row i + 1, i.e. input rows i·sh − ph, i·sh + 1 − ph, …
// (phase by phase, a stride-2 plane was read as its even rows, then its odd ones). The rows
// kPackAhead ahead are prefetched: a plane of a MobileNet 112² layer comes from the L2 or L3
// (the 1×1 conv before it wrote 0.8–1.6 MB), and the copy waited on its loads (perf: 62 % of a
// 32-channel stride-2 layer in the packing, most of it on the first load of a row).
template <class D>
void pack_plane(D d, const float* HWY_RESTRICT x, const F32DwArgs& a, const Geom& g, float* HWY_RESTRICT xs) {
  const float* x_end = a.x_end;
  const int64_t lines = (a.W + 15) / 16;  // 64-byte lines per input row
  for (int64_t i = 0; i < g.Hs; ++i)
    for (int64_t rp = 0; rp < a.sh; ++rp) {
      const int64_t ih = i * a.sh + rp - a.ph;
      float* row = xs + rp * a.sw * g.PS + i * g.Ls;
      if (ih < 0 || ih >= a.H) {
        for (int64_t cp = 0; cp < a.sw; ++cp) zero_span(d, row + cp * g.PS, 0, g.Ls);
      } else {
        if (ih + kPackAhead < a.H)
          for (int64_t l = 0; l < lines; ++l) hwy::Prefetch(x + (ih + kPackAhead) * a.W + 16 * l);
        pack_row(d, x + ih * a.W, x_end, a, g, row);
      }
    }
}

// Scratch offset of each tap relative to an output's base position.
void tap_offsets(const F32DwArgs& a, const Geom& g, int64_t* toff) {
  for (int64_t kh = 0; kh < a.KH; ++kh)
    for (int64_t kw = 0; kw < a.KW; ++kw) {
      const int64_t r = kh * a.dh, c = kw * a.dw;
      toff[kh * a.KW + kw] = ((r % a.sh) * a.sw + c % a.sw) * g.PS + (r / a.sh) * g.Ls + c / a.sw;
    }
}

// The fused activation, with ops::relu / ops::relu6's exact formulas (ops/activation_hwy.cc):
// NaN passes through, relu keeps −0; so the prepared node gives the bits of conv2d + relu.
template <class D, class V>
HWY_INLINE V activate(D d, V v, F32Act act) {
  if (act == F32Act::relu) return hn::IfThenZeroElse(hn::Lt(v, hn::Zero(d)), v);
  if (act == F32Act::relu6)
    return hn::IfThenElse(hn::IsNaN(v), v, hn::Min(hn::Max(v, hn::Zero(d)), hn::Set(d, 6.0f)));
  return v;
}

// The epilogue of `valid` outputs at y (residual r or null): act(acc + r). With `room` (a whole
// vector fits before the end of this thread's output planes) the lanes past `valid` are stored
// too: they land on outputs that a later store of this thread overwrites (planes and rows are
// stored in increasing order).
template <class D, class V>
HWY_INLINE void finish(D d, V acc, float* HWY_RESTRICT y, const float* HWY_RESTRICT r, int64_t valid, bool room,
                       F32Act act) {
  if (HWY_LIKELY(room)) {
    if (r) acc = hn::Add(acc, hn::LoadU(d, r));
    hn::StoreU(activate(d, acc, act), d, y);
    return;
  }
  HWY_ALIGN float tmp[HWY_MAX_BYTES / sizeof(float)] = {};
  if (r) {
    std::copy(r, r + valid, tmp);
    acc = hn::Add(acc, hn::Load(d, tmp));
  }
  hn::Store(activate(d, acc, act), d, tmp);
  std::copy(tmp, tmp + valid, y);
}

// The taps of one plane's weights: a fixed count (3×3 → 9, 5×5 → 25) unrolls the tap loop and
// lets the weights live on the stack, where no store to y can alias them.
template <int TAPS>
struct Taps {
  float w[TAPS];
  int64_t off[TAPS];
  Taps(const float* wt, const int64_t* toff, int64_t) {
    for (int t = 0; t < TAPS; ++t) w[t] = wt[t], off[t] = toff[t];
  }
  static constexpr int64_t count(int64_t) { return TAPS; }
};
template <>
struct Taps<0> {
  const float* w;
  const int64_t* off;
  int64_t n;
  Taps(const float* wt, const int64_t* toff, int64_t taps) : w(wt), off(toff), n(taps) {}
  int64_t count(int64_t) const { return n; }
};

// Sums the taps of four output vectors at scratch positions b0..b3 (four independent FMA chains
// hide the FMA latency).
template <int TAPS, class D, class V = hn::Vec<D>>
HWY_INLINE void sum4(D d, const Taps<TAPS>& tp, int64_t taps, const float* HWY_RESTRICT xs, float bias, int64_t b0,
                     int64_t b1, int64_t b2, int64_t b3, V& a0, V& a1, V& a2, V& a3) {
  a0 = hn::Set(d, bias), a1 = a0, a2 = a0, a3 = a0;
  for (int64_t t = 0; t < tp.count(taps); ++t) {
    const auto wv = hn::Set(d, tp.w[t]);
    const float* p = xs + tp.off[t];
    a0 = hn::MulAdd(wv, hn::LoadU(d, p + b0), a0);
    a1 = hn::MulAdd(wv, hn::LoadU(d, p + b1), a1);
    a2 = hn::MulAdd(wv, hn::LoadU(d, p + b2), a2);
    a3 = hn::MulAdd(wv, hn::LoadU(d, p + b3), a3);
  }
}
template <int TAPS, class D>
HWY_INLINE hn::Vec<D> sum1(D d, const Taps<TAPS>& tp, int64_t taps, const float* HWY_RESTRICT xs, float bias,
                           int64_t b) {
  auto a = hn::Set(d, bias);
  for (int64_t t = 0; t < tp.count(taps); ++t) a = hn::MulAdd(hn::Set(d, tp.w[t]), hn::LoadU(d, xs + tp.off[t] + b), a);
  return a;
}

// One output plane y [OH, OW] walked by rows. Output vector u is row u / nv, column
// (u % nv)·L; the units are stepped incrementally (no division per vector), and stored in order
// so a partial vector's overrun is overwritten by the next row's first vector.
template <int TAPS, class D>
void f32_dwconv_rows(D d, const F32DwArgs& a, const Geom& g, const float* xs, const Taps<TAPS>& tp, int64_t taps,
                     float bias, float* y, const float* r, int64_t yroom) {
  struct Unit {
    int64_t base, yoff, valid;
    bool room;
  };
  const int64_t L = g.L;
  int64_t oh = 0, ow = 0;
  auto next = [&]() {
    const int64_t yoff = oh * a.OW + ow;
    const Unit u{oh * g.Ls + ow, yoff, std::min(L, a.OW - ow), yoff + L <= yroom};
    ow += L;
    if (ow >= a.OW) ow = 0, ++oh;
    return u;
  };
  auto store = [&](hn::Vec<D> v, const Unit& u) {
    finish(d, v, y + u.yoff, r ? r + u.yoff : nullptr, u.valid, u.room, a.act);
  };
  const int64_t U = a.OH * g.nv;
  int64_t u = 0;
  for (; u + 4 <= U; u += 4) {
    const Unit u0 = next(), u1 = next(), u2 = next(), u3 = next();
    hn::Vec<D> a0, a1, a2, a3;
    sum4(d, tp, taps, xs, bias, u0.base, u1.base, u2.base, u3.base, a0, a1, a2, a3);
    store(a0, u0);
    store(a1, u1);
    store(a2, u2);
    store(a3, u3);
  }
  for (; u < U; ++u) {
    const Unit u0 = next();
    store(sum1(d, tp, taps, xs, bias, u0.base), u0);
  }
}

#include "kernels/f32_dwconv3x3-inl.h"  // f32_dwconv3x3s2_direct

// One output plane walked flat: outputs j = oh·Ls + ow into the buffer ob (aligned whole
// vectors). flat_store later copies them into y with the epilogue.
template <int TAPS, class D>
void f32_dwconv_flat(D d, const Geom& g, const F32DwArgs& a, const float* xs, const Taps<TAPS>& tp, int64_t taps,
                     float bias, float* HWY_RESTRICT ob) {
  const int64_t L = g.L, V = ceil_div(a.OH * g.Ls, L);
  int64_t v = 0;
  for (; v + 4 <= V; v += 4) {
    hn::Vec<D> a0, a1, a2, a3;
    sum4(d, tp, taps, xs, bias, v * L, (v + 1) * L, (v + 2) * L, (v + 3) * L, a0, a1, a2, a3);
    hn::Store(a0, d, ob + v * L);
    hn::Store(a1, d, ob + (v + 1) * L);
    hn::Store(a2, d, ob + (v + 2) * L);
    hn::Store(a3, d, ob + (v + 3) * L);
  }
  for (; v < V; ++v) hn::Store(sum1(d, tp, taps, xs, bias, v * L), d, ob + v * L);
}

// Copies the flat outputs ob (row pitch Ls) into y [OH, OW] with the epilogue, a whole vector
// per row where one fits before yroom (the overrun lands on the next row, stored after).
template <class D>
void flat_store(D d, const Geom& g, const F32DwArgs& a, const float* HWY_RESTRICT ob, float* HWY_RESTRICT y,
                const float* HWY_RESTRICT r, int64_t yroom) {
  const int64_t L = g.L;
  for (int64_t oh = 0; oh < a.OH; ++oh) {
    const float* src = ob + oh * g.Ls;
    const int64_t yo = oh * a.OW;
    for (int64_t i = 0; i < a.OW; i += L) {
      const bool room = yo + i + L <= yroom;
      finish(d, hn::LoadU(d, src + i), y + yo + i, r ? r + yo + i : nullptr, std::min(L, a.OW - i), room, a.act);
    }
  }
}

// Planes [p0, p1) of this thread. Stores that a load reads back right away stall the load
// (store forwarding fails when the load spans several of them), which on 7×7 planes cost more
// than the arithmetic: so plane p + 1 is packed before plane p is convolved, and the flat
// outputs of plane p are stored into y after plane p + 1 is convolved (two scratches, two
// output buffers).
template <int TAPS, class D>
void planes(D d, const F32DwArgs& a, const Geom& g, const int64_t* toff, int64_t p0, int64_t p1) {
  const int64_t taps = a.KH * a.KW, XP = a.x_plane, YP = a.y_plane, OHW = a.OH * a.OW;
  const int64_t OBS = ceil_div(a.OH * g.Ls, g.L) * g.L + g.L;  // floats per flat output buffer
  const int64_t XS = ceil_div(g.total, g.L) * g.L;
  float* xs = plane_buffer().get(size_t(2 * XS));
  float* ob = g.flat ? out_buffer().get(size_t(2 * a.M * OBS)) : nullptr;
  // Input plane p = n·C + c feeds output planes p·M + m: y offset (p·M + m)·YP. With contiguous
  // planes this thread writes y up to y_end, the offset where the next thread's planes begin; in
  // a band of rows (YP > OHW) the rows after the band's belong to another thread, so a store
  // stays inside its plane's band.
  const int64_t y_end = p1 * a.M * YP;
  auto room = [&](int64_t yo) { return YP == OHW ? y_end - yo : OHW; };
  auto store_plane = [&](int64_t p) {
    for (int64_t m = 0; m < a.M; ++m) {
      const int64_t yo = (p * a.M + m) * YP;
      flat_store(d, g, a, ob + (((p - p0) & 1) * a.M + m) * OBS, a.y + yo, a.residual ? a.residual + yo : nullptr,
                 room(yo));
    }
  };
  int64_t c = p0 % a.C;  // the one division; then stepped
  pack_plane(d, a.x + p0 * XP, a, g, xs);
  for (int64_t p = p0; p < p1; ++p) {
    const float* cur = xs + ((p - p0) & 1) * XS;
    if (p + 1 < p1) pack_plane(d, a.x + (p + 1) * XP, a, g, xs + ((p + 1 - p0) & 1) * XS);
    for (int64_t m = 0; m < a.M; ++m) {
      const int64_t oc = c * a.M + m, yo = (p * a.M + m) * YP;
      const Taps<TAPS> tp(a.w + oc * taps, toff, taps);
      if (g.flat)
        f32_dwconv_flat<TAPS>(d, g, a, cur, tp, taps, a.bias[oc], ob + (((p - p0) & 1) * a.M + m) * OBS);
      else
        f32_dwconv_rows<TAPS>(d, a, g, cur, tp, taps, a.bias[oc], a.y + yo, a.residual ? a.residual + yo : nullptr,
                              room(yo));
    }
    if (g.flat && p > p0) store_plane(p - 1);
    if (++c == a.C) c = 0;
  }
  if (g.flat) store_plane(p1 - 1);
}

// Planes [p0, p1) of a 3×3 stride-2 conv, read in place (f32_dwconv3x3s2_direct).
template <class D>
void planes_s2_direct(D d, const F32DwArgs& a, const int64_t* toff, int64_t p0, int64_t p1) {
  const int64_t XP = a.x_plane, YP = a.y_plane, OHW = a.OH * a.OW, y_end = p1 * a.M * YP;
  int64_t c = p0 % a.C;
  for (int64_t p = p0; p < p1; ++p) {
    for (int64_t m = 0; m < a.M; ++m) {
      const int64_t oc = c * a.M + m, yo = (p * a.M + m) * YP;
      const Taps<9> tp(a.w + oc * 9, toff, 9);
      f32_dwconv3x3s2_direct(d, a, a.x + p * XP, tp, a.bias[oc], a.y + yo, a.residual ? a.residual + yo : nullptr,
                             YP == OHW ? y_end - yo : OHW);
    }
    if (++c == a.C) c = 0;
  }
}

void F32DwconvPlanes(const F32DwArgs& a, int64_t p0, int64_t p1) {
  const hn::ScalableTag<float> d;
  const Geom g = make_geom(d, a);
  const int64_t taps = a.KH * a.KW;
  int64_t stack_off[kMaxTapsOnStack];
  thread_local std::vector<int64_t> heap_off;  // only for kernels over 64 taps (reused)
  int64_t* toff = stack_off;
  if (taps > kMaxTapsOnStack) {
    heap_off.resize(size_t(taps));
    toff = heap_off.data();
  }
  tap_offsets(a, g, toff);
  if (taps == 9 && a.KH == 3 && a.sh == 2 && a.sw == 2 && a.dh == 1 && a.dw == 1 && !g.flat)
    planes_s2_direct(d, a, toff, p0, p1);                 // f32_dwconv3x3s2, no scratch
  else if (taps == 9) planes<9>(d, a, g, toff, p0, p1);   // f32_dwconv3x3 (any stride, padding, dilation)
  else if (taps == 25) planes<25>(d, a, g, toff, p0, p1); // f32_dwconv5x5
  else planes<0>(d, a, g, toff, p0, p1);                  // any KH×KW
}

}  // namespace HWY_NAMESPACE
}  // namespace finch::quant::kernels::f32dw
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace finch::quant::kernels {
namespace f32dw {
HWY_EXPORT(F32DwconvPlanes);
}
void f32_dwconv_planes(const F32DwArgs& a, int64_t p_begin, int64_t p_end) {
  FINCH_DISPATCH(f32dw::F32DwconvPlanes)(a, p_begin, p_end);
}
}  // namespace finch::quant::kernels
#endif  // HWY_ONCE
