// Highway kernels for the F32 activations and their backward passes.
//
// Transcendentals come from hwy/contrib/math (Exp, Tanh: ≤ 1–4 ulp on their valid ranges). erf
// has no Highway version in 1.0.3, so gelu uses the Abramowitz–Stegun 7.1.26 rational form
// (|error| ≤ 1.5e-7) with the very constants torch's own vectorized erf uses.
#include <algorithm>
#include <cstring>
#include <limits>

#include "ops/activation.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/activation_hwy.cc"
#include "framework/hwy_kernel.h"  // foreach_target, highway, FINCH_DISPATCH
#include "hwy/contrib/math/math-inl.h"

HWY_BEFORE_NAMESPACE();
namespace finch::ops::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;
// The piecewise-linear activations are memory bound and run on 128-bit vectors (see the note
// on DM in ops/elementwise_hwy.cc); the transcendental ones use the full width.
using DM = hn::CappedTag<float, 4>;
using VM = hn::Vec<DM>;
constexpr size_t kMaxLanesAct = HWY_MAX_BYTES / sizeof(float);

constexpr float kSqrt1_2 = 0.70710678118654752440f;
constexpr float kInvSqrt2Pi = 0.39894228040143267794f;  // 1/√(2π)
constexpr float kBeta = 0.79788456080286535588f;        // √(2/π)
constexpr float kKappa = 0.044715f;

// sigmoid from e = e^−|x| ∈ (0, 1]: 1/(1+e) for x ≥ 0, e/(1+e) for x < 0. Never overflows, and
// keeps full relative precision on the small side (for x → −∞ it returns e^x, not 1 − 1).
HWY_INLINE VF Sigmoid(DF d, VF x) {
  const VF e = hn::Exp(d, hn::Neg(hn::Abs(x)));  // Exp returns 0 below −104
  const VF r = hn::Div(hn::Set(d, 1.0f), hn::Add(hn::Set(d, 1.0f), e));
  const VF s = hn::IfThenElse(hn::Ge(x, hn::Zero(d)), r, hn::Mul(e, r));
  return hn::IfThenElse(hn::IsNaN(x), x, s);
}

HWY_INLINE VF TanhF(DF d, VF x) { return hn::IfThenElse(hn::IsNaN(x), x, hn::Tanh(d, x)); }

// erf(z) = sign(z)·(1 − t·P(t)·e^(−z²)), t = 1/(1 + p|z|) (A&S 7.1.26, as torch's Vectorized),
// given e = e^(−z²) (gelu's backward needs the same exponential for its pdf).
HWY_INLINE VF ErfWithExp(DF d, VF z, VF e) {
  const VF one = hn::Set(d, 1.0f);
  const VF sign = hn::And(hn::SignBit(d), z);
  const VF a = hn::Xor(z, sign);
  const VF t = hn::Div(one, hn::MulAdd(hn::Set(d, 0.3275911f), a, one));
  VF r = hn::MulAdd(hn::Set(d, 1.061405429f), t, hn::Set(d, -1.453152027f));
  r = hn::MulAdd(r, t, hn::Set(d, 1.421413741f));
  r = hn::MulAdd(r, t, hn::Set(d, -0.284496736f));
  r = hn::MulAdd(r, t, hn::Set(d, 0.254829592f));
  const VF y = hn::NegMulAdd(hn::Mul(e, t), r, one);
  return hn::Xor(y, sign);
}

HWY_INLINE VF Erf(DF d, VF z) { return ErfWithExp(d, z, hn::Exp(d, hn::Neg(hn::Mul(z, z)))); }

template <class D, class F>
HWY_INLINE void Map1(D d, float* out, const float* x, int64_t n, const F& f) {
  const int64_t N = int64_t(hn::Lanes(d));
  int64_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(f(hn::LoadU(d, x + i)), d, out + i);
  if (i < n) {  // tail through a padded buffer, same vector code
    HWY_ALIGN float bx[kMaxLanesAct] = {}, bo[kMaxLanesAct];
    std::memcpy(bx, x + i, size_t(n - i) * sizeof(float));
    hn::Store(f(hn::Load(d, bx)), d, bo);
    std::memcpy(out + i, bo, size_t(n - i) * sizeof(float));
  }
}

template <class D, class F>
HWY_INLINE void Map2(D d, float* out, const float* g, const float* z, int64_t n, const F& f) {
  const int64_t N = int64_t(hn::Lanes(d));
  int64_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(f(hn::LoadU(d, g + i), hn::LoadU(d, z + i)), d, out + i);
  if (i < n) {
    HWY_ALIGN float bg[kMaxLanesAct] = {}, bz[kMaxLanesAct] = {}, bo[kMaxLanesAct];
    std::memcpy(bg, g + i, size_t(n - i) * sizeof(float));
    std::memcpy(bz, z + i, size_t(n - i) * sizeof(float));
    hn::Store(f(hn::Load(d, bg), hn::Load(d, bz)), d, bo);
    std::memcpy(out + i, bo, size_t(n - i) * sizeof(float));
  }
}

void ActivationF32(ActivationOp op, float* y, const float* x, int64_t n, float param) {
  const DF d;
  const DM m;
  const VF one = hn::Set(d, 1.0f), half = hn::Set(d, 0.5f);
  const VM zero = hn::Zero(m), three = hn::Set(m, 3.0f), six = hn::Set(m, 6.0f);
  switch (op) {
    // NaN passes through every activation, as in torch (x86 max/min would turn it into a bound).
    case ActivationOp::relu:
      return Map1(m, y, x, n, [&](VM v) { return hn::IfThenZeroElse(hn::Lt(v, zero), v); });
    case ActivationOp::relu6:
      return Map1(m, y, x, n, [&](VM v) {
        return hn::IfThenElse(hn::IsNaN(v), v, hn::Min(hn::Max(v, zero), six));
      });
    case ActivationOp::leaky_relu: {
      const VM s = hn::Set(m, param);
      return Map1(m, y, x, n, [&](VM v) { return hn::IfThenElse(hn::Gt(v, zero), v, hn::Mul(v, s)); });
    }
    case ActivationOp::sigmoid: return Map1(d, y, x, n, [&](VF v) { return Sigmoid(d, v); });
    case ActivationOp::tanh: return Map1(d, y, x, n, [&](VF v) { return TanhF(d, v); });
    case ActivationOp::gelu:
      return Map1(d, y, x, n, [&](VF v) {
        return hn::Mul(hn::Mul(v, half), hn::Add(one, Erf(d, hn::Mul(v, hn::Set(d, kSqrt1_2)))));
      });
    case ActivationOp::gelu_tanh:
      return Map1(d, y, x, n, [&](VF v) {
        const VF cube = hn::Mul(hn::Mul(v, v), v);
        const VF inner = hn::Mul(hn::Set(d, kBeta), hn::MulAdd(hn::Set(d, kKappa), cube, v));
        return hn::Mul(hn::Mul(half, v), hn::Add(one, TanhF(d, inner)));
      });
    case ActivationOp::silu: return Map1(d, y, x, n, [&](VF v) { return hn::Mul(v, Sigmoid(d, v)); });
    case ActivationOp::hardswish:
      return Map1(m, y, x, n, [&](VM v) {
        const VM r = hn::Div(hn::Mul(v, hn::Min(hn::Max(hn::Add(v, three), zero), six)), six);
        return hn::IfThenElse(hn::IsNaN(v), v, r);
      });
    case ActivationOp::hardsigmoid:
      return Map1(m, y, x, n, [&](VM v) {
        const VM r = hn::Div(hn::Min(hn::Max(hn::Add(v, three), zero), six), six);
        return hn::IfThenElse(hn::IsNaN(v), v, r);
      });
  }
}

void ActivationBackwardF32(ActivationOp op, float* dx, const float* dy, const float* z, int64_t n,
                           float param) {
  const DF d;
  const DM m;
  const VF one = hn::Set(d, 1.0f), half = hn::Set(d, 0.5f);
  const VM zero = hn::Zero(m), three = hn::Set(m, 3.0f), mthree = hn::Set(m, -3.0f);
  const VM six = hn::Set(m, 6.0f), mhalf = hn::Set(m, 0.5f), mone = hn::Set(m, 1.0f);
  switch (op) {
    case ActivationOp::relu:  // z = y
      return Map2(m, dx, dy, z, n, [&](VM g, VM v) { return hn::IfThenElseZero(hn::Gt(v, zero), g); });
    case ActivationOp::relu6:  // z = x; torch's hardtanh_backward passes strictly inside (0, 6)
      return Map2(m, dx, dy, z, n, [&](VM g, VM v) {
        return hn::IfThenElseZero(hn::And(hn::Gt(v, zero), hn::Lt(v, six)), g);
      });
    case ActivationOp::leaky_relu: {
      const VM s = hn::Set(m, param);
      return Map2(m, dx, dy, z, n,
                  [&](VM g, VM v) { return hn::IfThenElse(hn::Gt(v, zero), g, hn::Mul(g, s)); });
    }
    case ActivationOp::sigmoid:  // z = y
      return Map2(m, dx, dy, z, n, [&](VM g, VM v) { return hn::Mul(hn::Mul(g, hn::Sub(mone, v)), v); });
    case ActivationOp::tanh:  // z = y
      return Map2(m, dx, dy, z, n, [&](VM g, VM v) { return hn::Mul(g, hn::NegMulAdd(v, v, mone)); });
    case ActivationOp::gelu:
      return Map2(d, dx, dy, z, n, [&](VF g, VF v) {
        // One exponential serves both terms: e^(−(x/√2)²) = e^(−x²/2).
        const VF zz = hn::Mul(v, hn::Set(d, kSqrt1_2));
        const VF e = hn::Exp(d, hn::Neg(hn::Mul(zz, zz)));
        const VF cdf = hn::Mul(half, hn::Add(one, ErfWithExp(d, zz, e)));
        const VF pdf = hn::Mul(e, hn::Set(d, kInvSqrt2Pi));
        return hn::Mul(g, hn::MulAdd(v, pdf, cdf));
      });
    case ActivationOp::gelu_tanh:
      // With s = sigmoid(2u): 1 + tanh u = 2s and 1 − tanh² u = 4s(1 − s). The sigmoid form keeps
      // full precision for x ≲ −2, where torch's 1 + tanh u cancels (same math, fewer lost bits).
      return Map2(d, dx, dy, z, n, [&](VF g, VF v) {
        const VF sq = hn::Mul(v, v);
        const VF u = hn::Mul(hn::Set(d, kBeta), hn::MulAdd(hn::Mul(hn::Set(d, kKappa), sq), v, v));
        const VF s = Sigmoid(d, hn::Add(u, u));
        const VF du = hn::Mul(hn::Set(d, kBeta), hn::MulAdd(hn::Set(d, 3.0f * kKappa), sq, one));
        const VF right_d = hn::Mul(hn::Mul(hn::Add(v, v), hn::Mul(s, hn::Sub(one, s))), du);
        return hn::Mul(g, hn::Add(s, right_d));
      });
    case ActivationOp::silu:  // dy·s·(1 + x·(1 − s))
      return Map2(d, dx, dy, z, n, [&](VF g, VF v) {
        const VF s = Sigmoid(d, v);
        return hn::Mul(hn::Mul(g, s), hn::MulAdd(v, hn::Sub(one, s), one));
      });
    case ActivationOp::hardswish:  // torch: 0 below −3, dy·(x/3 + 0.5) on [−3, 3], dy above
      return Map2(m, dx, dy, z, n, [&](VM g, VM v) {
        const VM mid = hn::Mul(g, hn::Add(hn::Div(v, three), mhalf));
        const VM r = hn::IfThenElse(hn::Le(v, three), mid, g);
        return hn::IfThenElseZero(hn::Ge(v, mthree), r);
      });
    case ActivationOp::hardsigmoid:  // torch: dy/6 strictly inside (−3, 3)
      return Map2(m, dx, dy, z, n, [&](VM g, VM v) {
        return hn::IfThenElseZero(hn::And(hn::Gt(v, mthree), hn::Lt(v, three)),
                                  hn::Mul(g, hn::Set(m, 1.0f / 6.0f)));
      });
  }
}

}  // namespace finch::ops::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace finch::ops::kernels {

HWY_EXPORT(ActivationF32);
HWY_EXPORT(ActivationBackwardF32);

void activation_f32(ActivationOp op, float* y, const float* x, int64_t n, float param) {
  FINCH_DISPATCH(ActivationF32)(op, y, x, n, param);
}
void activation_backward_f32(ActivationOp op, float* dx, const float* dy, const float* z,
                             int64_t n, float param) {
  FINCH_DISPATCH(ActivationBackwardF32)(op, dx, dy, z, n, param);
}

}  // namespace finch::ops::kernels
#endif  // HWY_ONCE
