// Highway kernels of qs8_add (the f32 rule of reference::qadd) and of the ReLU clamps.
//
// qs8_add is bit-identical to the reference because each lane performs the same IEEE f32
// operations in the same order: f32(q − z) is exact (|q − z| <= 255), hn::Mul and hn::Add are
// correctly rounded like the scalar * and +, hn::Div is the true quotient (never a multiply by the
// reciprocal, which differs by an ulp and moves .5 ties), hn::Round rounds half to even like
// std::nearbyint, and + z_out and the clamp are exact on integral floats. The one trap is
// contraction: GCC may fuse a vector multiply and a following add into an FMA on targets that
// have one (AVX2, AVX-512, NEON), which rounds once instead of twice. The pragma forbids it here
// as reference.cc does for the scalar loop.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include <algorithm>
#include <cstring>

#include "kernels/qs8_eltwise_kernels.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/qs8_eltwise_hwy.cc"
#include "framework/hwy_kernel.h"  // foreach_target, highway, FINCH_DISPATCH

HWY_BEFORE_NAMESPACE();
namespace finch::quant::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;
using DI = hn::Rebind<int32_t, DF>;
constexpr size_t kMaxLanes = HWY_MAX_BYTES / sizeof(float);

// f32(q − z) · s for L codes at p.
template <typename T>
HWY_INLINE VF Dequant(const T* p, hn::Vec<DI> z, VF s) {
  const DI di;
  const hn::Rebind<T, DI> dt;
  return hn::Mul(hn::ConvertTo(DF(), hn::Sub(hn::PromoteTo(di, hn::LoadU(dt, p)), z)), s);
}

template <typename TA, typename TB, typename TY>
void AddT(const AddArgs& g, int64_t begin, int64_t end) {
  const DF d;
  const DI di;
  const hn::Rebind<TY, DI> dy;
  const int64_t L = int64_t(hn::Lanes(d));
  const TA* a = static_cast<const TA*>(g.a);
  const TB* b = static_cast<const TB*>(g.b);
  TY* y = static_cast<TY*>(g.y);
  const auto za = hn::Set(di, g.za), zb = hn::Set(di, g.zb);
  const VF sa = hn::Set(d, g.sa), sb = hn::Set(d, g.sb), so = hn::Set(d, g.s_out), zo = hn::Set(d, float(g.z_out));
  const VF lo = hn::Set(d, float(g.qmin)), hi = hn::Set(d, float(g.qmax));
  auto codes = [&](const TA* pa, const TB* pb) {
    const VF v = hn::Add(Dequant(pa, za, sa), Dequant(pb, zb, sb));  // two roundings, then a third
    const VF q = hn::Add(hn::Round(hn::Div(v, so)), zo);
    return hn::DemoteTo(dy, hn::ConvertTo(di, hn::Min(hn::Max(q, lo), hi)));  // integral, inside TY
  };
  int64_t i = begin;
  for (; i + L <= end; i += L) hn::StoreU(codes(a + i, b + i), dy, y + i);
  if (i < end) {  // the tail through zero-filled buffers (the extra lanes are computed, not stored)
    const size_t rest = size_t(end - i);
    HWY_ALIGN TA ba[kMaxLanes] = {};
    HWY_ALIGN TB bb[kMaxLanes] = {};
    HWY_ALIGN TY by[kMaxLanes];
    std::memcpy(ba, a + i, rest * sizeof(TA));
    std::memcpy(bb, b + i, rest * sizeof(TB));
    hn::Store(codes(ba, bb), dy, by);
    std::memcpy(y + i, by, rest * sizeof(TY));
  }
}

template <typename TA, typename TB>
void AddB(const AddArgs& g, int64_t begin, int64_t end) {
  g.y_u8 ? AddT<TA, TB, uint8_t>(g, begin, end) : AddT<TA, TB, int8_t>(g, begin, end);
}

void AddRange(const AddArgs& g, int64_t begin, int64_t end) {
  if (g.a_u8)
    g.b_u8 ? AddB<uint8_t, uint8_t>(g, begin, end) : AddB<uint8_t, int8_t>(g, begin, end);
  else
    g.b_u8 ? AddB<int8_t, uint8_t>(g, begin, end) : AddB<int8_t, int8_t>(g, begin, end);
}

template <typename T>
HWY_INLINE void ClampT(const T* x, T* y, int64_t n, int32_t lo, int32_t hi) {
  const hn::ScalableTag<T> d;
  const int64_t L = int64_t(hn::Lanes(d));
  const auto vlo = hn::Set(d, T(lo)), vhi = hn::Set(d, T(hi));
  int64_t i = 0;
  for (; i + L <= n; i += L) hn::StoreU(hn::Min(hn::Max(hn::LoadU(d, x + i), vlo), vhi), d, y + i);
  for (; i < n; ++i) y[i] = T(std::min(std::max(int32_t(x[i]), lo), hi));
}

void ClampI8(const int8_t* x, int8_t* y, int64_t n, int32_t lo, int32_t hi) { ClampT(x, y, n, lo, hi); }
void ClampU8(const uint8_t* x, uint8_t* y, int64_t n, int32_t lo, int32_t hi) { ClampT(x, y, n, lo, hi); }

}  // namespace finch::quant::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace finch::quant::kernels {

HWY_EXPORT(AddRange);
HWY_EXPORT(ClampI8);
HWY_EXPORT(ClampU8);

void qs8_add_range(const AddArgs& a, int64_t begin, int64_t end) { FINCH_DISPATCH(AddRange)(a, begin, end); }
void qs8_clamp(const int8_t* x, int8_t* y, int64_t n, int32_t lo, int32_t hi) {
  FINCH_DISPATCH(ClampI8)(x, y, n, lo, hi);
}
void qs8_clamp(const uint8_t* x, uint8_t* y, int64_t n, int32_t lo, int32_t hi) {
  FINCH_DISPATCH(ClampU8)(x, y, n, lo, hi);
}

}  // namespace finch::quant::kernels
#endif  // HWY_ONCE
