// Highway kernels for quantize / fake_quantize / fake_quantize_mask over one contiguous f32 run.
//
// Bit-exactness with the scalar reference (and with the integer runtime) rests on three facts:
// hn::Div is the IEEE correctly rounded quotient (the same x / s as the C++ expression; never
// x * (1/s), which differs by an ulp and flips codes at .5 ties), hn::Round is round half to
// even like std::nearbyint, and every later step (+ z, clamp, - z) is exact on integers below
// 2^24 — past that the value is far outside [qmin, qmax] and the clamp gives the same bound.
#include <cstring>

#include "kernels/quantize_kernels.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/quantize_hwy.cc"
#include "framework/hwy_kernel.h"  // foreach_target, highway, FINCH_DISPATCH

HWY_BEFORE_NAMESPACE();
namespace finch::quant::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;
using DI = hn::Rebind<int32_t, DF>;
constexpr size_t kMaxLanes = HWY_MAX_BYTES / sizeof(float);

// round_half_even(x / s) + z, not yet clamped (NaN stays NaN).
HWY_INLINE VF Unclamped(VF x, VF s, VF z) { return hn::Add(hn::Round(hn::Div(x, s)), z); }

// The clamped code as an (integral) float; NaN inputs give z. x86 max/min would turn NaN into a
// bound, so NaN is handled explicitly and identically on every target.
HWY_INLINE VF Code(VF x, VF s, VF z, VF lo, VF hi) {
  const VF c = hn::Min(hn::Max(Unclamped(x, s, z), lo), hi);
  return hn::IfThenElse(hn::IsNaN(x), z, c);
}

// Calls body(x, s, z) -> vector for each full vector and once for the padded tail, handing the
// result to store(i, count, result). Per-element parameters are loaded beside x; the tail pads
// them with s = 1, z = 0 so the unused lanes compute nothing odd.
template <class Body, class Store>
HWY_INLINE void Drive(const float* x, int64_t n, const QuantArgs& a, const Body& body, const Store& store) {
  const DF d;
  const int64_t N = int64_t(hn::Lanes(d));
  VF s = hn::Set(d, a.scale[0]), z = hn::Set(d, a.zero[0]);
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    if (a.per_element) {
      s = hn::LoadU(d, a.scale + i);
      z = hn::LoadU(d, a.zero + i);
    }
    store(i, N, body(hn::LoadU(d, x + i), s, z));
  }
  if (i < n) {
    const size_t rest = size_t(n - i);
    HWY_ALIGN float bx[kMaxLanes] = {}, bs[kMaxLanes], bz[kMaxLanes] = {};
    std::memcpy(bx, x + i, rest * sizeof(float));
    if (a.per_element) {
      for (size_t k = 0; k < kMaxLanes; ++k) bs[k] = 1.0f;
      std::memcpy(bs, a.scale + i, rest * sizeof(float));
      std::memcpy(bz, a.zero + i, rest * sizeof(float));
      s = hn::Load(d, bs);
      z = hn::Load(d, bz);
    }
    store(i, int64_t(rest), body(hn::Load(d, bx), s, z));
  }
}

// Stores `count` lanes of v (count <= Lanes(dt)) at out + i.
template <class DT, class V, typename T>
HWY_INLINE void StorePart(DT dt, V v, T* out, int64_t i, int64_t count) {
  if (count == int64_t(hn::Lanes(dt))) {
    hn::StoreU(v, dt, out + i);
  } else {
    HWY_ALIGN T buf[kMaxLanes];
    hn::Store(v, dt, buf);
    std::memcpy(out + i, buf, size_t(count) * sizeof(T));
  }
}

template <typename T>
HWY_INLINE void QuantizeT(const float* x, T* q, int64_t n, const QuantArgs& a) {
  const DF d;
  const DI di;
  const hn::Rebind<T, DF> dt;
  const VF lo = hn::Set(d, a.qmin), hi = hn::Set(d, a.qmax);
  Drive(
      x, n, a,
      [&](VF v, VF s, VF z) {
        const auto c = hn::ConvertTo(di, Code(v, s, z, lo, hi));  // exact: c is an integer
        if constexpr (sizeof(T) == 4) {
          return c;
        } else {
          return hn::DemoteTo(dt, c);  // saturating, but c is already inside T
        }
      },
      [&](int64_t i, int64_t count, auto v) { StorePart(dt, v, q, i, count); });
}

void QuantizeI8(const float* x, int8_t* q, int64_t n, const QuantArgs& a) { QuantizeT(x, q, n, a); }
void QuantizeU8(const float* x, uint8_t* q, int64_t n, const QuantArgs& a) { QuantizeT(x, q, n, a); }
void QuantizeI16(const float* x, int16_t* q, int64_t n, const QuantArgs& a) { QuantizeT(x, q, n, a); }
void QuantizeI32(const float* x, int32_t* q, int64_t n, const QuantArgs& a) { QuantizeT(x, q, n, a); }

void FakeQuantize(const float* x, float* y, int64_t n, const QuantArgs& a) {
  const DF d;
  const VF lo = hn::Set(d, a.qmin), hi = hn::Set(d, a.qmax);
  Drive(
      x, n, a,
      [&](VF v, VF s, VF z) {
        const VF r = hn::Mul(hn::Sub(Code(v, s, z, lo, hi), z), s);
        return hn::IfThenElse(hn::IsNaN(v), v, r);
      },
      [&](int64_t i, int64_t count, VF v) { StorePart(d, v, y, i, count); });
}

void FakeQuantizeMask(const float* x, uint8_t* m, int64_t n, const QuantArgs& a) {
  const DF d;
  const DI di;
  const hn::Rebind<uint8_t, DF> du;
  const VF lo = hn::Set(d, a.qmin), hi = hn::Set(d, a.qmax);
  const auto one = hn::Set(di, 1);
  Drive(
      x, n, a,
      [&](VF v, VF s, VF z) {
        const VF r = Unclamped(v, s, z);  // NaN compares false: no gradient through NaN
        const auto inside = hn::RebindMask(di, hn::And(hn::Ge(r, lo), hn::Le(r, hi)));
        return hn::DemoteTo(du, hn::IfThenElseZero(inside, one));
      },
      [&](int64_t i, int64_t count, auto v) { StorePart(du, v, m, i, count); });
}

}  // namespace finch::quant::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace finch::quant::kernels {

HWY_EXPORT(QuantizeI8);
HWY_EXPORT(QuantizeU8);
HWY_EXPORT(QuantizeI16);
HWY_EXPORT(QuantizeI32);
HWY_EXPORT(FakeQuantize);
HWY_EXPORT(FakeQuantizeMask);

void quantize_f32_i8(const float* x, int8_t* q, int64_t n, const QuantArgs& a) {
  FINCH_DISPATCH(QuantizeI8)(x, q, n, a);
}
void quantize_f32_u8(const float* x, uint8_t* q, int64_t n, const QuantArgs& a) {
  FINCH_DISPATCH(QuantizeU8)(x, q, n, a);
}
void quantize_f32_i16(const float* x, int16_t* q, int64_t n, const QuantArgs& a) {
  FINCH_DISPATCH(QuantizeI16)(x, q, n, a);
}
void quantize_f32_i32(const float* x, int32_t* q, int64_t n, const QuantArgs& a) {
  FINCH_DISPATCH(QuantizeI32)(x, q, n, a);
}
void fake_quantize_f32(const float* x, float* y, int64_t n, const QuantArgs& a) {
  FINCH_DISPATCH(FakeQuantize)(x, y, n, a);
}
void fake_quantize_mask_f32(const float* x, uint8_t* m, int64_t n, const QuantArgs& a) {
  FINCH_DISPATCH(FakeQuantizeMask)(x, m, n, a);
}

}  // namespace finch::quant::kernels
#endif  // HWY_ONCE
