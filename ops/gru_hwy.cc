// Highway kernels for the GRU cell's fused gate passes (ops/gru.h), parallel over batch rows.
#include <algorithm>
#include <cstring>

#include "framework/parallel.h"
#include "ops/gru.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/gru_hwy.cc"
#include "framework/hwy_kernel.h"  // foreach_target, highway, FINCH_DISPATCH
#include <hwy/contrib/math/math-inl.h>

HWY_BEFORE_NAMESPACE();
namespace finch::ops::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// σ(x) = 1 / (1 + e^-x) with the argument clamped to ±88 so e^-x stays finite in f32 (as
// ops/lstm_hwy.cc; beyond that σ is 0 or 1 to f32 precision).
template <class D, class V>
HWY_INLINE V Sigmoid(D d, V x) {
  const V lim = hn::Set(d, 88.0f);
  x = hn::Min(hn::Max(x, hn::Neg(lim)), lim);
  const V one = hn::Set(d, 1.0f);
  return hn::Div(one, hn::Add(one, hn::Exp(d, hn::Neg(x))));
}

// One vector of hidden units: pointers to the r, z, n slices of gi (in/out) and gh, h, h'.
template <class D>
HWY_INLINE void ForwardVec(D d, float* ar, float* az, float* an, const float* cr,
                           const float* cz, const float* cn, const float* h, float* h_new) {
  const auto r = Sigmoid(d, hn::Add(hn::LoadU(d, ar), hn::LoadU(d, cr)));
  const auto z = Sigmoid(d, hn::Add(hn::LoadU(d, az), hn::LoadU(d, cz)));
  const auto n = hn::Tanh(d, hn::MulAdd(r, hn::LoadU(d, cn), hn::LoadU(d, an)));
  hn::StoreU(r, d, ar);
  hn::StoreU(z, d, az);
  hn::StoreU(n, d, an);
  // (1 − z)·n + z·h = n + z·(h − n)
  hn::StoreU(hn::MulAdd(z, hn::Sub(hn::LoadU(d, h), n), n), d, h_new);
}

void ForwardRows(int64_t b0, int64_t b1, int64_t H, float* gi, const float* gh, const float* h,
                 float* h_new) {
  const hn::ScalableTag<float> d;
  const int64_t N = int64_t(hn::Lanes(d));
  for (int64_t b = b0; b < b1; ++b) {
    float* a = gi + b * 3 * H;
    const float* c = gh + b * 3 * H;
    const int64_t k = b * H;
    int64_t j = 0;
    for (; j + N <= H; j += N)
      ForwardVec(d, a + j, a + H + j, a + 2 * H + j, c + j, c + H + j, c + 2 * H + j, h + k + j,
                 h_new + k + j);
    if (j < H) {
      // Tail: the same vector code on zero-padded copies, so every element gets identical
      // arithmetic.
      const size_t nb = size_t(H - j) * sizeof(float);
      HWY_ALIGN float buf[8][HWY_MAX_BYTES / sizeof(float)] = {};
      for (int q = 0; q < 3; ++q) std::memcpy(buf[q], a + q * H + j, nb);
      for (int q = 0; q < 3; ++q) std::memcpy(buf[3 + q], c + q * H + j, nb);
      std::memcpy(buf[6], h + k + j, nb);
      ForwardVec(d, buf[0], buf[1], buf[2], buf[3], buf[4], buf[5], buf[6], buf[7]);
      for (int q = 0; q < 3; ++q) std::memcpy(a + q * H + j, buf[q], nb);
      std::memcpy(h_new + k + j, buf[7], nb);
    }
  }
}

template <class D>
HWY_INLINE void BackwardVec(D d, const float* dhn, const float* gr, const float* gz,
                            const float* gn, const float* cn, const float* h, float* dir,
                            float* diz, float* din, float* dgr, float* dgz, float* dgn,
                            float* dh) {
  const auto one = hn::Set(d, 1.0f);
  const auto r = hn::LoadU(d, gr), z = hn::LoadU(d, gz), n = hn::LoadU(d, gn);
  const auto dv = hn::LoadU(d, dhn);
  const auto dan = hn::Mul(hn::Mul(dv, hn::Sub(one, z)), hn::NegMulAdd(n, n, one));
  const auto daz = hn::Mul(hn::Mul(dv, hn::Sub(hn::LoadU(d, h), n)), hn::Mul(z, hn::Sub(one, z)));
  const auto dar = hn::Mul(hn::Mul(dan, hn::LoadU(d, cn)), hn::Mul(r, hn::Sub(one, r)));
  hn::StoreU(dar, d, dir);
  hn::StoreU(daz, d, diz);
  hn::StoreU(dan, d, din);
  hn::StoreU(dar, d, dgr);
  hn::StoreU(daz, d, dgz);
  hn::StoreU(hn::Mul(dan, r), d, dgn);
  hn::StoreU(hn::Mul(dv, z), d, dh);
}

void BackwardRows(int64_t b0, int64_t b1, int64_t H, const float* dh_new, const float* gates,
                  const float* gh, const float* h, float* dgi, float* dgh, float* dh) {
  const hn::ScalableTag<float> d;
  const int64_t N = int64_t(hn::Lanes(d));
  for (int64_t b = b0; b < b1; ++b) {
    const float* g = gates + b * 3 * H;
    const float* c = gh + b * 3 * H;
    float* di = dgi + b * 3 * H;
    float* dg = dgh + b * 3 * H;
    const int64_t k = b * H;
    int64_t j = 0;
    for (; j + N <= H; j += N)
      BackwardVec(d, dh_new + k + j, g + j, g + H + j, g + 2 * H + j, c + 2 * H + j, h + k + j,
                  di + j, di + H + j, di + 2 * H + j, dg + j, dg + H + j, dg + 2 * H + j,
                  dh + k + j);
    if (j < H) {
      const size_t nb = size_t(H - j) * sizeof(float);
      HWY_ALIGN float in[6][HWY_MAX_BYTES / sizeof(float)] = {};
      HWY_ALIGN float out[7][HWY_MAX_BYTES / sizeof(float)] = {};
      std::memcpy(in[0], dh_new + k + j, nb);
      for (int q = 0; q < 3; ++q) std::memcpy(in[1 + q], g + q * H + j, nb);
      std::memcpy(in[4], c + 2 * H + j, nb);
      std::memcpy(in[5], h + k + j, nb);
      BackwardVec(d, in[0], in[1], in[2], in[3], in[4], in[5], out[0], out[1], out[2], out[3],
                  out[4], out[5], out[6]);
      for (int q = 0; q < 3; ++q) std::memcpy(di + q * H + j, out[q], nb);
      for (int q = 0; q < 3; ++q) std::memcpy(dg + q * H + j, out[3 + q], nb);
      std::memcpy(dh + k + j, out[6], nb);
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
int64_t row_grain(int64_t H) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(1, 3 * H)); }
}  // namespace

void gru_gates_forward_f32(int64_t B, int64_t H, float* gi, const float* gh, const float* h,
                           float* h_new) {
  parallel_for(0, B, row_grain(H), [&](int64_t b0, int64_t b1) {
    FINCH_DISPATCH(ForwardRows)(b0, b1, H, gi, gh, h, h_new);
  });
}

void gru_gates_backward_f32(int64_t B, int64_t H, const float* dh_new, const float* gates,
                            const float* gh, const float* h, float* dgi, float* dgh, float* dh) {
  parallel_for(0, B, row_grain(H), [&](int64_t b0, int64_t b1) {
    FINCH_DISPATCH(BackwardRows)(b0, b1, H, dh_new, gates, gh, h, dgi, dgh, dh);
  });
}
}  // namespace finch::ops
#endif  // HWY_ONCE
