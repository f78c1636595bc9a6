// Highway kernels for the LSTM cell's fused elementwise passes (gate activations + cell update,
// and their gradients), parallel over the batch rows.
#include <algorithm>
#include <cstring>

#include "framework/parallel.h"
#include "ops/lstm.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/lstm_hwy.cc"
#include "framework/hwy_kernel.h"  // foreach_target, highway, FINCH_DISPATCH
#include <hwy/contrib/math/math-inl.h>

HWY_BEFORE_NAMESPACE();
namespace finch::ops::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// σ(x) = 1 / (1 + e^-x). The argument is clamped to ±88 so e^-x stays finite in f32 (beyond
// that σ is 0 or 1 to f32 precision anyway); written this way rather than 0.5·tanh(x/2)+0.5
// because it keeps full relative accuracy for large negative x.
template <class D, class V>
HWY_INLINE V Sigmoid(D d, V x) {
  const V lim = hn::Set(d, 88.0f);
  x = hn::Min(hn::Max(x, hn::Neg(lim)), lim);
  const V one = hn::Set(d, 1.0f);
  return hn::Div(one, hn::Add(one, hn::Exp(d, hn::Neg(x))));
}

// One vector of hidden units j..j+N of one row: activates the four gate slices in place and
// writes c', tanh(c'), h'.
template <class D>
HWY_INLINE void ForwardVec(D d, float* gi, float* gf, float* gg, float* go, const float* c,
                           float* h_new, float* c_new, float* tanh_c) {
  const auto i = Sigmoid(d, hn::LoadU(d, gi));
  const auto f = Sigmoid(d, hn::LoadU(d, gf));
  const auto g = hn::Tanh(d, hn::LoadU(d, gg));
  const auto o = Sigmoid(d, hn::LoadU(d, go));
  const auto cn = hn::MulAdd(f, hn::LoadU(d, c), hn::Mul(i, g));
  const auto tc = hn::Tanh(d, cn);
  hn::StoreU(i, d, gi);
  hn::StoreU(f, d, gf);
  hn::StoreU(g, d, gg);
  hn::StoreU(o, d, go);
  hn::StoreU(cn, d, c_new);
  hn::StoreU(tc, d, tanh_c);
  hn::StoreU(hn::Mul(o, tc), d, h_new);
}

void ForwardRows(int64_t b0, int64_t b1, int64_t H, float* gates, const float* c, float* h_new,
                 float* c_new, float* tanh_c) {
  const hn::ScalableTag<float> d;
  const int64_t N = int64_t(hn::Lanes(d));
  for (int64_t b = b0; b < b1; ++b) {
    float* g = gates + b * 4 * H;
    const int64_t r = b * H;
    int64_t j = 0;
    for (; j + N <= H; j += N)
      ForwardVec(d, g + j, g + H + j, g + 2 * H + j, g + 3 * H + j, c + r + j, h_new + r + j,
                 c_new + r + j, tanh_c + r + j);
    if (j < H) {
      // Tail: run the same vector code on a zero-padded copy so every element gets identical
      // arithmetic (no scalar fallback with different rounding).
      const int64_t n = H - j;
      HWY_ALIGN float buf[8][HWY_MAX_BYTES / sizeof(float)] = {};
      for (int q = 0; q < 4; ++q) std::memcpy(buf[q], g + q * H + j, size_t(n) * sizeof(float));
      std::memcpy(buf[4], c + r + j, size_t(n) * sizeof(float));
      ForwardVec(d, buf[0], buf[1], buf[2], buf[3], buf[4], buf[5], buf[6], buf[7]);
      for (int q = 0; q < 4; ++q) std::memcpy(g + q * H + j, buf[q], size_t(n) * sizeof(float));
      std::memcpy(h_new + r + j, buf[5], size_t(n) * sizeof(float));
      std::memcpy(c_new + r + j, buf[6], size_t(n) * sizeof(float));
      std::memcpy(tanh_c + r + j, buf[7], size_t(n) * sizeof(float));
    }
  }
}

// Gradients of one vector of hidden units (see lstm.cc for the derivation):
//   dct = dc' + dh'·o·(1 − tanh²c'),  dc = dct·f
//   di = dct·g·i(1−i), df = dct·c·f(1−f), dg = dct·i·(1−g²), do = dh'·tanh c'·o(1−o)
template <class D>
HWY_INLINE void BackwardVec(D d, const float* dh, const float* dcn, const float* gi,
                            const float* gf, const float* gg, const float* go, const float* c,
                            const float* tc, float* di, float* df, float* dg, float* dout,
                            float* dc) {
  const auto one = hn::Set(d, 1.0f);
  const auto i = hn::LoadU(d, gi), f = hn::LoadU(d, gf), g = hn::LoadU(d, gg),
             o = hn::LoadU(d, go);
  const auto t = hn::LoadU(d, tc), dhv = hn::LoadU(d, dh);
  const auto dct = hn::MulAdd(hn::Mul(dhv, o), hn::NegMulAdd(t, t, one), hn::LoadU(d, dcn));
  hn::StoreU(hn::Mul(hn::Mul(dct, g), hn::Mul(i, hn::Sub(one, i))), d, di);
  hn::StoreU(hn::Mul(hn::Mul(dct, hn::LoadU(d, c)), hn::Mul(f, hn::Sub(one, f))), d, df);
  hn::StoreU(hn::Mul(hn::Mul(dct, i), hn::NegMulAdd(g, g, one)), d, dg);
  hn::StoreU(hn::Mul(hn::Mul(dhv, t), hn::Mul(o, hn::Sub(one, o))), d, dout);
  if (dc) hn::StoreU(hn::Mul(dct, f), d, dc);
}

void BackwardRows(int64_t b0, int64_t b1, int64_t H, const float* dh_new, const float* dc_new,
                  const float* gates, const float* c, const float* tanh_c, float* dgates,
                  float* dc) {
  const hn::ScalableTag<float> d;
  const int64_t N = int64_t(hn::Lanes(d));
  for (int64_t b = b0; b < b1; ++b) {
    const float* g = gates + b * 4 * H;
    float* dg = dgates + b * 4 * H;
    const int64_t r = b * H;
    int64_t j = 0;
    for (; j + N <= H; j += N)
      BackwardVec(d, dh_new + r + j, dc_new + r + j, g + j, g + H + j, g + 2 * H + j,
                  g + 3 * H + j, c + r + j, tanh_c + r + j, dg + j, dg + H + j, dg + 2 * H + j,
                  dg + 3 * H + j, dc ? dc + r + j : nullptr);
    if (j < H) {
      const int64_t n = H - j;
      const size_t nb = size_t(n) * sizeof(float);
      HWY_ALIGN float in[8][HWY_MAX_BYTES / sizeof(float)] = {};
      HWY_ALIGN float out[5][HWY_MAX_BYTES / sizeof(float)] = {};
      std::memcpy(in[0], dh_new + r + j, nb);
      std::memcpy(in[1], dc_new + r + j, nb);
      for (int q = 0; q < 4; ++q) std::memcpy(in[2 + q], g + q * H + j, nb);
      std::memcpy(in[6], c + r + j, nb);
      std::memcpy(in[7], tanh_c + r + j, nb);
      BackwardVec(d, in[0], in[1], in[2], in[3], in[4], in[5], in[6], in[7], out[0], out[1],
                  out[2], out[3], out[4]);
      for (int q = 0; q < 4; ++q) std::memcpy(dg + q * H + j, out[q], nb);
      if (dc) std::memcpy(dc + r + j, out[4], nb);
    }
  }
}

}  // namespace finch::ops::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace finch::ops {
HWY_EXPORT(ForwardRows);
HWY_EXPORT(BackwardRows);

namespace {
// Rows per chunk: enough work (~16K gate elements) that a chunk outweighs the pool's overhead.
int64_t row_grain(int64_t H) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(1, 4 * H)); }
}  // namespace

void lstm_gates_forward_f32(int64_t B, int64_t H, float* gates, const float* c, float* h_new,
                            float* c_new, float* tanh_c) {
  parallel_for(0, B, row_grain(H), [&](int64_t b0, int64_t b1) {
    FINCH_DISPATCH(ForwardRows)(b0, b1, H, gates, c, h_new, c_new, tanh_c);
  });
}

void lstm_gates_backward_f32(int64_t B, int64_t H, const float* dh_new, const float* dc_new,
                             const float* gates, const float* c, const float* tanh_c,
                             float* dgates, float* dc) {
  parallel_for(0, B, row_grain(H), [&](int64_t b0, int64_t b1) {
    FINCH_DISPATCH(BackwardRows)(b0, b1, H, dh_new, dc_new, gates, c, tanh_c, dgates, dc);
  });
}
}  // namespace finch::ops
#endif  // HWY_ONCE
