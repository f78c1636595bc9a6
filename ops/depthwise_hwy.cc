// Direct depthwise convolution (groups == C, OC = C·M) with Highway SIMD across the output
// width: forward, dX and dW. im2col would build a 9×-sized patch matrix for a GEMM with one
// output row per group — far slower than reading the plane in place.
//
// Shapes: x [N, C, H, W], weight [C·M, 1, KH, KW], y [N, C·M, OH, OW].
// Each input plane is copied into a zero-padded, stride-phase-split scratch: padded column
// pc = iw + pw lands in phase pc % sw at column pc / sw. Then the input column read by output
// ow at tap kw, ow·sw + kw·dw, is phase (kw·dw) % sw, column ow + (kw·dw) / sw — consecutive
// outputs read consecutive scratch columns for every stride and dilation, so every tap is a
// plain unaligned vector load with no bounds tests. The scratch rows carry slack so the last,
// partial vector of a row may read past OW.
#include <algorithm>
#include <cstring>
#include <vector>

#include "framework/parallel.h"
#include "ops/conv.h"

#ifndef FINCH_OPS_DEPTHWISE_GEOM
#define FINCH_OPS_DEPTHWISE_GEOM
namespace finch::ops::dw {
struct Geom {
  int64_t N, C, M, H, W, KH, KW, sh, sw, ph, pw, dh, dw, OH, OW;
};
}  // namespace finch::ops::dw
#endif

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/depthwise_hwy.cc"
#include "framework/hwy_kernel.h"  // foreach_target, highway, FINCH_DISPATCH
#include "hwy/aligned_allocator.h"

HWY_BEFORE_NAMESPACE();
namespace finch::ops::dw {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// The scratch layout for one plane at this target's vector width.
struct Layout {
  int64_t L, nv, Hp, Ls, PS;      // lanes, vectors per output row, rows, row length, phase size
  std::vector<int64_t> toff;      // scratch offset of tap (kh, kw) relative to a unit's base
};

template <class D>
Layout make_layout(D d, const Geom& g) {
  Layout s;
  s.L = int64_t(hn::Lanes(d));
  s.nv = (g.OW + s.L - 1) / s.L;
  s.Hp = g.H + 2 * g.ph;
  const int64_t Wp = g.W + 2 * g.pw, maxjo = (g.KW - 1) * g.dw / g.sw;
  s.Ls = std::max((Wp + g.sw - 1) / g.sw, s.nv * s.L + maxjo);
  s.PS = s.Hp * s.Ls;
  s.toff.resize(size_t(g.KH * g.KW));
  for (int64_t kh = 0; kh < g.KH; ++kh)
    for (int64_t kw = 0; kw < g.KW; ++kw) {
      const int64_t k = kw * g.dw;
      s.toff[size_t(kh * g.KW + kw)] = (k % g.sw) * s.PS + kh * g.dh * s.Ls + k / g.sw;
    }
  return s;
}

// Copies plane x [H, W] into the (already zeroed) padded phase-split scratch.
template <typename T>
void fill_scratch(const T* x, const Geom& g, const Layout& s, T* xs) {
  for (int64_t ih = 0; ih < g.H; ++ih) {
    const T* row = x + ih * g.W;
    T* r = xs + (ih + g.ph) * s.Ls;
    if (g.sw == 1) {
      std::memcpy(r + g.pw, row, sizeof(T) * size_t(g.W));
    } else {
      for (int64_t iw = 0; iw < g.W; ++iw) {
        const int64_t pc = iw + g.pw;
        r[(pc % g.sw) * s.PS + pc / g.sw] = row[iw];
      }
    }
  }
}

// The inverse: dx [H, W] = the interior of the scratch.
template <typename T>
void extract_scratch(const T* xs, const Geom& g, const Layout& s, T* dx) {
  for (int64_t ih = 0; ih < g.H; ++ih) {
    T* row = dx + ih * g.W;
    const T* r = xs + (ih + g.ph) * s.Ls;
    if (g.sw == 1) {
      std::memcpy(row, r + g.pw, sizeof(T) * size_t(g.W));
    } else {
      for (int64_t iw = 0; iw < g.W; ++iw) {
        const int64_t pc = iw + g.pw;
        row[iw] = r[(pc % g.sw) * s.PS + pc / g.sw];
      }
    }
  }
}

// A unit is one output vector: row oh, lanes [owv·L, owv·L + L).
struct Unit {
  int64_t base, yoff, valid;  // scratch base, output offset, lanes inside OW
};
inline Unit unit_at(int64_t u, const Geom& g, const Layout& s) {
  const int64_t oh = u / s.nv, owv = u % s.nv;
  return Unit{oh * g.sh * s.Ls + owv * s.L, oh * g.OW + owv * s.L,
              std::min(s.L, g.OW - owv * s.L)};
}

template <class D, typename T = hn::TFromD<D>>
HWY_INLINE void store_unit(D d, hn::Vec<D> v, const Unit& u, T* y) {
  if (HWY_LIKELY(u.valid == int64_t(hn::Lanes(d)))) {
    hn::StoreU(v, d, y + u.yoff);
  } else {
    HWY_ALIGN T tmp[HWY_MAX_BYTES / sizeof(T)];
    hn::Store(v, d, tmp);
    std::memcpy(y + u.yoff, tmp, sizeof(T) * size_t(u.valid));
  }
}

// One output plane. TAPS > 0 fixes the tap count at compile time (3×3 → 9) so the tap loop
// unrolls; four units run side by side so four independent FMA chains hide the FMA latency.
template <int TAPS, class D, typename T = hn::TFromD<D>>
void forward_plane(D d, const T* xs, const Geom& g, const Layout& s, const T* w, T bias, T* y) {
  const int64_t taps = TAPS > 0 ? TAPS : g.KH * g.KW;
  const int64_t U = g.OH * s.nv;
  const int64_t* toff = s.toff.data();
  int64_t u = 0;
  for (; u + 4 <= U; u += 4) {
    const Unit u0 = unit_at(u, g, s), u1 = unit_at(u + 1, g, s), u2 = unit_at(u + 2, g, s),
               u3 = unit_at(u + 3, g, s);
    auto a0 = hn::Set(d, bias), a1 = a0, a2 = a0, a3 = a0;
    for (int64_t t = 0; t < taps; ++t) {
      const auto wv = hn::Set(d, w[t]);
      const T* p = xs + toff[t];
      a0 = hn::MulAdd(wv, hn::LoadU(d, p + u0.base), a0);
      a1 = hn::MulAdd(wv, hn::LoadU(d, p + u1.base), a1);
      a2 = hn::MulAdd(wv, hn::LoadU(d, p + u2.base), a2);
      a3 = hn::MulAdd(wv, hn::LoadU(d, p + u3.base), a3);
    }
    store_unit(d, a0, u0, y);
    store_unit(d, a1, u1, y);
    store_unit(d, a2, u2, y);
    store_unit(d, a3, u3, y);
  }
  for (; u < U; ++u) {
    const Unit u0 = unit_at(u, g, s);
    auto a0 = hn::Set(d, bias);
    for (int64_t t = 0; t < taps; ++t)
      a0 = hn::MulAdd(hn::Set(d, w[t]), hn::LoadU(d, xs + toff[t] + u0.base), a0);
    store_unit(d, a0, u0, y);
  }
}

template <typename T>
void forward(const Geom& g, const T* x, const T* w, const T* b, T* y) {
  const hn::ScalableTag<T> d;
  const Layout s = make_layout(d, g);
  const int64_t HW = g.H * g.W, OHW = g.OH * g.OW, taps = g.KH * g.KW;
  const bool k3 = taps == 9;
  parallel_for(0, g.N * g.C, std::max<int64_t>(1, 4096 / std::max<int64_t>(OHW * g.M, 1)),
               [&](int64_t p0, int64_t p1) {
                 // Zeroed once: the padding positions are the same for every plane.
                 std::vector<T> xs(size_t(g.sw * s.PS), T(0));
                 for (int64_t pl = p0; pl < p1; ++pl) {
                   const int64_t n = pl / g.C, c = pl % g.C;
                   fill_scratch(x + pl * HW, g, s, xs.data());
                   for (int64_t m = 0; m < g.M; ++m) {
                     const int64_t oc = c * g.M + m;
                     T* yp = y + (n * g.C * g.M + oc) * OHW;
                     const T bias = b ? b[oc] : T(0);
                     if (k3) forward_plane<9>(d, xs.data(), g, s, w + oc * taps, bias, yp);
                     else forward_plane<0>(d, xs.data(), g, s, w + oc * taps, bias, yp);
                   }
                 }
               });
}

// Backward, parallel over input channels: channel c owns dx[:, c], dw[c·M .. c·M+M) and
// db[c·M ..), and sums over the batch in order, so the result does not depend on the threads.
template <typename T>
void backward(const Geom& g, const T* dy, const T* x, const T* w, T* dx, T* dw, T* db) {
  const hn::ScalableTag<T> d;
  const Layout s = make_layout(d, g);
  const int64_t HW = g.H * g.W, OHW = g.OH * g.OW, taps = g.KH * g.KW, OC = g.C * g.M;
  const int64_t U = g.OH * s.nv, L = s.L;
  const bool pad_dy = g.OW % L != 0;
  const int64_t* toff = s.toff.data();
  parallel_for(0, g.C, 1, [&](int64_t c0, int64_t c1) {
    std::vector<T> xs(dw ? size_t(g.sw * s.PS) : 0, T(0));
    std::vector<T> dxs(dx ? size_t(g.sw * s.PS) : 0);
    // dy rows padded to whole vectors with zeros, so the tail lanes add nothing.
    auto dyp_buf = hwy::AllocateAligned<T>(size_t(U * L));
    for (int64_t c = c0; c < c1; ++c) {
      std::vector<T> dwacc(size_t(g.M * taps), T(0)), dbacc(size_t(g.M), T(0));
      for (int64_t n = 0; n < g.N; ++n) {
        if (dw) fill_scratch(x + (n * g.C + c) * HW, g, s, xs.data());
        if (dx) std::fill(dxs.begin(), dxs.end(), T(0));
        for (int64_t m = 0; m < g.M; ++m) {
          const int64_t oc = c * g.M + m;
          const T* dyp = dy + (n * OC + oc) * OHW;
          if (db) {
            T acc = 0;
            for (int64_t i = 0; i < OHW; ++i) acc += dyp[i];
            dbacc[size_t(m)] += acc;
          }
          const T* dv = dyp;  // unit u's dy vector is dv + u·L
          if (pad_dy) {
            T* q = dyp_buf.get();
            std::fill(q, q + U * L, T(0));
            for (int64_t oh = 0; oh < g.OH; ++oh)
              std::memcpy(q + oh * s.nv * L, dyp + oh * g.OW, sizeof(T) * size_t(g.OW));
            dv = q;
          }
          if (dw) {
            for (int64_t t = 0; t < taps; ++t) {
              const T* p = xs.data() + toff[t];
              auto a0 = hn::Zero(d), a1 = a0, a2 = a0, a3 = a0;
              int64_t u = 0;
              for (; u + 4 <= U; u += 4) {
                a0 = hn::MulAdd(hn::LoadU(d, dv + u * L), hn::LoadU(d, p + unit_at(u, g, s).base), a0);
                a1 = hn::MulAdd(hn::LoadU(d, dv + (u + 1) * L), hn::LoadU(d, p + unit_at(u + 1, g, s).base), a1);
                a2 = hn::MulAdd(hn::LoadU(d, dv + (u + 2) * L), hn::LoadU(d, p + unit_at(u + 2, g, s).base), a2);
                a3 = hn::MulAdd(hn::LoadU(d, dv + (u + 3) * L), hn::LoadU(d, p + unit_at(u + 3, g, s).base), a3);
              }
              for (; u < U; ++u)
                a0 = hn::MulAdd(hn::LoadU(d, dv + u * L), hn::LoadU(d, p + unit_at(u, g, s).base), a0);
              const auto sum = hn::Add(hn::Add(a0, a1), hn::Add(a2, a3));
              dwacc[size_t(m * taps + t)] += hn::GetLane(hn::SumOfLanes(d, sum));
            }
          }
          if (dx) {
            // Scatter: every tap adds w·dy into the scratch window it read in the forward.
            const T* wt = w + oc * taps;
            for (int64_t u = 0; u < U; ++u) {
              const auto v = hn::LoadU(d, dv + u * L);
              T* base = dxs.data() + unit_at(u, g, s).base;
              for (int64_t t = 0; t < taps; ++t) {
                T* p = base + toff[t];
                hn::StoreU(hn::MulAdd(hn::Set(d, wt[t]), v, hn::LoadU(d, p)), d, p);
              }
            }
          }
        }
        if (dx) extract_scratch(dxs.data(), g, s, dx + (n * g.C + c) * HW);
      }
      if (dw) std::copy(dwacc.begin(), dwacc.end(), dw + c * g.M * taps);
      if (db) std::copy(dbacc.begin(), dbacc.end(), db + c * g.M);
    }
  });
}

void ForwardF32(const Geom& g, const float* x, const float* w, const float* b, float* y) {
  forward<float>(g, x, w, b, y);
}
void ForwardF64(const Geom& g, const double* x, const double* w, const double* b, double* y) {
  forward<double>(g, x, w, b, y);
}
void BackwardF32(const Geom& g, const float* dy, const float* x, const float* w, float* dx,
                 float* dw, float* db) {
  backward<float>(g, dy, x, w, dx, dw, db);
}
void BackwardF64(const Geom& g, const double* dy, const double* x, const double* w, double* dx,
                 double* dw, double* db) {
  backward<double>(g, dy, x, w, dx, dw, db);
}

}  // namespace HWY_NAMESPACE
}  // namespace finch::ops::dw
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace finch::ops {
namespace dw {
HWY_EXPORT(ForwardF32);
HWY_EXPORT(ForwardF64);
HWY_EXPORT(BackwardF32);
HWY_EXPORT(BackwardF64);

Geom geom_of(const Tensor& x, const Tensor& w, const Conv2dParams& p) {
  Geom g;
  g.N = x.size(0), g.C = x.size(1), g.H = x.size(2), g.W = x.size(3);
  g.M = w.size(0) / g.C, g.KH = w.size(2), g.KW = w.size(3);
  g.sh = p.sh, g.sw = p.sw, g.ph = p.ph, g.pw = p.pw, g.dh = p.dh, g.dw = p.dw;
  g.OH = conv_out_size(g.H, g.KH, p.sh, p.ph, p.dh);
  g.OW = conv_out_size(g.W, g.KW, p.sw, p.pw, p.dw);
  FINCH_CHECK(g.OH > 0 && g.OW > 0 && w.size(1) == 1 && w.size(0) == g.C * g.M,
              "depthwise_conv2d: bad geometry for x ", shape_str(x.shape()), " w ", shape_str(w.shape()));
  return g;
}
}  // namespace dw

Tensor depthwise_conv2d(const Tensor& xin, const Tensor& win, const Tensor& bin,
                        const Conv2dParams& p) {
  const Tensor x = xin.contiguous(), w = win.contiguous();
  const Tensor b = bin.defined() ? bin.contiguous() : Tensor();
  const dw::Geom g = dw::geom_of(x, w, p);
  Tensor y = empty({g.N, g.C * g.M, g.OH, g.OW}, x.dtype());
  if (x.dtype() == DType::f32)
    FINCH_DISPATCH(dw::ForwardF32)(g, x.data<float>(), w.data<float>(),
                                         b.defined() ? b.data<float>() : nullptr, y.data<float>());
  else
    FINCH_DISPATCH(dw::ForwardF64)(g, x.data<double>(), w.data<double>(),
                                         b.defined() ? b.data<double>() : nullptr, y.data<double>());
  return y;
}

Conv2dGrads depthwise_conv2d_backward(const Tensor& dyin, const Tensor& xin, const Tensor& win,
                                      const Conv2dParams& p, bool need_x, bool need_weight,
                                      bool need_bias) {
  const Tensor dy = dyin.contiguous(), x = xin.contiguous(), w = win.contiguous();
  const dw::Geom g = dw::geom_of(x, w, p);
  Conv2dGrads out;
  if (need_x) out.dx = empty(x.shape(), x.dtype());
  if (need_weight) out.dweight = empty(w.shape(), w.dtype());
  if (need_bias) out.dbias = empty({w.size(0)}, x.dtype());
  if (!need_x && !need_weight && !need_bias) return out;
  auto ptr = [](const Tensor& t, auto tag) -> decltype(tag) * {
    return t.defined() ? t.data<decltype(tag)>() : nullptr;
  };
  if (x.dtype() == DType::f32)
    FINCH_DISPATCH(dw::BackwardF32)(g, dy.data<float>(), x.data<float>(), w.data<float>(),
                                          ptr(out.dx, float{}), ptr(out.dweight, float{}),
                                          ptr(out.dbias, float{}));
  else
    FINCH_DISPATCH(dw::BackwardF64)(g, dy.data<double>(), x.data<double>(), w.data<double>(),
                                          ptr(out.dx, double{}), ptr(out.dweight, double{}),
                                          ptr(out.dbias, double{}));
  return out;
}

}  // namespace finch::ops
#endif  // HWY_ONCE
