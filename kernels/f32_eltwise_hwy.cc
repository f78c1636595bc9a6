// Highway loops of kernels/f32_eltwise.h.
#include <algorithm>

#include "framework/parallel.h"
#include "kernels/f32_eltwise.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/f32_eltwise_hwy.cc"
#include "framework/hwy_kernel.h"  // foreach_target, highway, FINCH_DISPATCH

HWY_BEFORE_NAMESPACE();
namespace finch::quant::kernels::f32elt {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// ops::relu / ops::relu6's formulas (ops/activation_hwy.cc): NaN passes through, relu keeps −0.
template <class D, class V>
HWY_INLINE V activate(D d, V v, F32Act act) {
  if (act == F32Act::relu) return hn::IfThenZeroElse(hn::Lt(v, hn::Zero(d)), v);
  if (act == F32Act::relu6)
    return hn::IfThenElse(hn::IsNaN(v), v, hn::Min(hn::Max(v, hn::Zero(d)), hn::Set(d, 6.0f)));
  return v;
}

template <bool kAlphaOne>
void add_range(const float* HWY_RESTRICT a, const float* HWY_RESTRICT b, float alpha, F32Act act,
               float* HWY_RESTRICT y, int64_t n) {
  const hn::ScalableTag<float> d;
  const int64_t L = int64_t(hn::Lanes(d));
  const auto va = hn::Set(d, alpha);
  auto op = [&](auto x, auto z) { return kAlphaOne ? hn::Add(x, z) : hn::MulAdd(z, va, x); };
  int64_t i = 0;
  for (; i + L <= n; i += L) hn::StoreU(activate(d, op(hn::LoadU(d, a + i), hn::LoadU(d, b + i)), act), d, y + i);
  if (i < n) {
    HWY_ALIGN float ta[HWY_MAX_BYTES / sizeof(float)] = {}, tb[HWY_MAX_BYTES / sizeof(float)] = {};
    std::copy(a + i, a + n, ta);
    std::copy(b + i, b + n, tb);
    hn::Store(activate(d, op(hn::Load(d, ta), hn::Load(d, tb)), act), d, ta);
    std::copy(ta, ta + (n - i), y + i);
  }
}

void AddAct(const float* a, const float* b, float alpha, F32Act act, float* y, int64_t n) {
  // Streams at memory speed: priced as int8 bytes, a 2 us add was split and took 8 us at 2 threads.
  parallel_for(0, n, Work::bytes_stream(3 * sizeof(float)), [&](int64_t i0, int64_t i1) {
    if (alpha == 1.0f) add_range<true>(a + i0, b + i0, alpha, act, y + i0, i1 - i0);
    else add_range<false>(a + i0, b + i0, alpha, act, y + i0, i1 - i0);
  });
}

void GlobalAvgPool(const float* x, int64_t P, int64_t HW, float* y) {
  const hn::CappedTag<float, 16> d;
  const hn::RebindToSigned<decltype(d)> di;
  const int64_t L = int64_t(hn::Lanes(d)), blocks = (P + L - 1) / L;
  const auto div = hn::Set(d, float(HW));
  parallel_for(0, blocks, Work::bytes(double(HW * L) * sizeof(float)), [&](int64_t b0, int64_t b1) {
    HWY_ALIGN int32_t idx[16];
    HWY_ALIGN float out[16];
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t p0 = b * L, n = std::min(L, P - p0);
      // Lane k sums plane p0 + k (a lane past P repeats the last plane and is not stored).
      for (int64_t k = 0; k < L; ++k) idx[k] = int32_t(std::min(k, n - 1) * HW);
      const auto vi = hn::Load(di, idx);
      const float* xb = x + p0 * HW;
      auto acc = hn::Zero(d);
      for (int64_t i = 0; i < HW; ++i) acc = hn::Add(acc, hn::GatherIndex(d, xb + i, vi));
      hn::Store(hn::Div(acc, div), d, out);
      std::copy(out, out + n, y + p0);
    }
  });
}

}  // namespace HWY_NAMESPACE
}  // namespace finch::quant::kernels::f32elt
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace finch::quant::kernels {
namespace f32elt {
HWY_EXPORT(AddAct);
HWY_EXPORT(GlobalAvgPool);
}  // namespace f32elt
void f32_add_act(const float* a, const float* b, float alpha, F32Act act, float* y, int64_t n) {
  FINCH_DISPATCH(f32elt::AddAct)(a, b, alpha, act, y, n);
}
void f32_global_avg_pool(const float* x, int64_t P, int64_t HW, float* y) {
  FINCH_DISPATCH(f32elt::GlobalAvgPool)(x, P, HW, y);
}
}  // namespace finch::quant::kernels
#endif  // HWY_ONCE
