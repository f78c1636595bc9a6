// Highway F32 kernel of the Adam/AdamW update (autograd/optim/update_kernels.h): GCC does not
// vectorize the reference loop because std::sqrt may set errno; Highway's Sqrt is the
// instruction. The tail runs the reference loop, which rounds identically (no FMA anywhere).

// Keep every multiply and add separately rounded, as torch's kernels and our reference do: on
// FMA targets (AVX2, AVX-512) GCC would otherwise contract Mul+Add into vfmadd and the
// results would differ from the reference in the last bit.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "autograd/optim/update_kernels.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "autograd/optim/update_hwy.cc"
#include "framework/hwy_kernel.h"  // foreach_target, highway, FINCH_DISPATCH

HWY_BEFORE_NAMESPACE();
namespace finch::optim::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

template <bool kAmsgrad>
HWY_INLINE int64_t AdamBody(float* HWY_RESTRICT p, const float* HWY_RESTRICT g, float* HWY_RESTRICT m,
                            float* HWY_RESTRICT v, float* HWY_RESTRICT vmax, int64_t n,
                            const AdamScalars& s) {
  const hn::ScalableTag<float> d;
  const auto decay = hn::Set(d, float(s.decay)), l2 = hn::Set(d, float(s.l2));
  const auto b1 = hn::Set(d, float(s.beta1)), b2 = hn::Set(d, float(s.beta2));
  const auto one_m_b1 = hn::Set(d, float(1.0 - s.beta1)), one_m_b2 = hn::Set(d, float(1.0 - s.beta2));
  const auto neg_step = hn::Set(d, float(-s.step_size)), bc2 = hn::Set(d, float(s.bc2_sqrt));
  const auto eps = hn::Set(d, float(s.eps));
  const int64_t N = int64_t(hn::Lanes(d));
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    const auto pi = hn::Mul(hn::LoadU(d, p + i), decay);
    const auto gi = hn::Add(hn::LoadU(d, g + i), hn::Mul(l2, pi));
    const auto mi = hn::Add(hn::Mul(hn::LoadU(d, m + i), b1), hn::Mul(one_m_b1, gi));
    const auto vi = hn::Add(hn::Mul(hn::LoadU(d, v + i), b2), hn::Mul(hn::Mul(one_m_b2, gi), gi));
    hn::StoreU(mi, d, m + i);
    hn::StoreU(vi, d, v + i);
    auto vu = vi;
    if constexpr (kAmsgrad) {
      vu = hn::Max(hn::LoadU(d, vmax + i), vi);
      hn::StoreU(vu, d, vmax + i);
    }
    const auto denom = hn::Add(hn::Div(hn::Sqrt(vu), bc2), eps);
    hn::StoreU(hn::Add(pi, hn::Mul(neg_step, hn::Div(mi, denom))), d, p + i);
  }
  return i;
}

void AdamF32(float* p, const float* g, float* m, float* v, float* vmax, int64_t n, const AdamScalars& s) {
  const int64_t done = vmax ? AdamBody<true>(p, g, m, v, vmax, n, s) : AdamBody<false>(p, g, m, v, vmax, n, s);
  adam_reference<float>(p + done, g + done, m + done, v + done, vmax ? vmax + done : nullptr, n - done, s);
}

}  // namespace finch::optim::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace finch::optim::kernels {

HWY_EXPORT(AdamF32);

void adam_f32(float* p, const float* g, float* m, float* v, float* vmax, int64_t n, const AdamScalars& s) {
  FINCH_DISPATCH(AdamF32)(p, g, m, v, vmax, n, s);
}

}  // namespace finch::optim::kernels
#endif  // HWY_ONCE
