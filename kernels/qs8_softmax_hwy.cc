// The integer exp of the softmax row (qs8_transformer.h) over whole vectors: the step the int8
// attention spends most of its time in (S² exps per head). Each lane computes exactly what
// reference::isoftmax_row computes: d = min(max − x, d_max) in u32, the Q14 argument by a
// 32×32 → 64-bit product and one rounding shift, z = ⌊u / ln2⌋ by a float estimate corrected to
// the exact quotient, the quadratic in int32 (it stays below 2^30) and a rounding shift by z.
// Callers check the preconditions (ISoftmaxParams::vector_ok, a row range below 2^31).
#include <climits>
#include <cstdint>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/qs8_softmax_hwy.cc"
#include "framework/hwy_kernel.h"  // foreach_target, highway, FINCH_DISPATCH

HWY_BEFORE_NAMESPACE();
namespace finch::quant::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// e[j] for j < the largest multiple of the vector length <= n; returns how many were written.
int64_t IExpVectors(const int32_t* x, const uint8_t* valid, int64_t n, int32_t mx, uint32_t d_max, uint32_t mult,
                    int total, int32_t* e) {
#if HWY_TARGET == HWY_SCALAR
  (void)x, (void)valid, (void)n, (void)mx, (void)d_max, (void)mult, (void)total, (void)e;
  return 0;  // one lane: the caller's scalar loop is the same thing
#else
  const hn::ScalableTag<uint32_t> du;
  const hn::RebindToSigned<decltype(du)> di;
  const hn::RebindToFloat<decltype(du)> df;
  const hn::Repartition<uint64_t, decltype(du)> d64;
  const hn::Rebind<uint8_t, decltype(du)> du8;
  const int64_t L = int64_t(hn::Lanes(du));
  const auto vmx = hn::Set(di, mx);
  const auto vdmax = hn::Set(du, d_max), vmult = hn::Set(du, mult);
  const auto clamp = hn::Set(du, 22u * 16384u);
  const auto one64 = hn::Set(d64, uint64_t{1});
  const auto ln2 = hn::Set(di, 11357), b = hn::Set(di, 22168), c = hn::Set(di, 257578234);
  const auto one = hn::Set(di, 1), neg_ln2_plus1 = hn::Set(di, 1 - 11357);
  const auto uone = hn::Set(du, 1u), uzero = hn::Zero(du);
  const auto inv_ln2 = hn::Set(df, 1.0f / 11357.0f);
  auto round_shift = [&](auto p) {
    return hn::Add(hn::ShiftRightSame(p, total), hn::And(hn::ShiftRightSame(p, total - 1), one64));
  };
  int64_t j = 0;
  for (; j + L <= n; j += L) {
    const auto d = hn::Min(hn::BitCast(du, hn::Sub(vmx, hn::LoadU(di, x + j))), vdmax);
    // Even lanes' products, then odd lanes' (moved down to the even halves); both below 2^62.
    const auto te = round_shift(hn::MulEven(d, vmult));
    const auto to = round_shift(hn::MulEven(hn::BitCast(du, hn::ShiftRight<32>(hn::BitCast(d64, d))), vmult));
    // Each result < 2^31 (vector_ok): its low half is the value.
    const auto t = hn::Min(hn::OddEven(hn::BitCast(du, hn::ShiftLeft<32>(to)), hn::BitCast(du, te)), clamp);
    const auto u = hn::BitCast(di, t);
    // z = ⌊u / ln2⌋: the float estimate is within one of it; r = z·ln2 − u must land in (−ln2, 0].
    auto z = hn::ConvertTo(di, hn::Mul(hn::ConvertTo(df, u), inv_ln2));
    auto r = hn::Sub(hn::Mul(z, ln2), u);
    const auto too_big = hn::Gt(r, hn::Zero(di));
    z = hn::IfThenElse(too_big, hn::Sub(z, one), z), r = hn::IfThenElse(too_big, hn::Sub(r, ln2), r);
    const auto too_small = hn::Lt(r, neg_ln2_plus1);
    z = hn::IfThenElse(too_small, hn::Add(z, one), z), r = hn::IfThenElse(too_small, hn::Add(r, ln2), r);
    const auto rb = hn::Add(r, b);
    const auto ev = hn::BitCast(du, hn::Add(hn::Mul(rb, rb), c));  // < 2^30
    // Rounding shift by z in 0..31 (z = 31 gives 0: e < 2^30).
    const auto zu = hn::BitCast(du, z);
    const auto half = hn::And(hn::Shr(ev, hn::Sub(hn::Max(zu, uone), uone)), uone);
    auto res = hn::Add(hn::Shr(ev, zu), hn::IfThenZeroElse(hn::Eq(zu, uzero), half));
    if (valid) res = hn::IfThenZeroElse(hn::Eq(hn::PromoteTo(du, hn::LoadU(du8, valid + j)), uzero), res);
    hn::StoreU(hn::BitCast(di, res), di, e + j);
  }
  return j;
#endif
}

// out[j] = rounding_shift(e[j]·g, 40) for the leading whole vectors (g = 255·⌊2^40/Σe⌋ < 2^19,
// e < 2^30: products below 2^49); returns how many were written.
int64_t NormalizeVectors(const int32_t* e, int64_t n, uint32_t g, uint8_t* out) {
#if HWY_TARGET == HWY_SCALAR
  (void)e, (void)n, (void)g, (void)out;
  return 0;
#else
  const hn::ScalableTag<uint32_t> du;
  const hn::RebindToSigned<decltype(du)> di;
  const hn::Repartition<uint64_t, decltype(du)> d64;
  const hn::Rebind<uint8_t, decltype(du)> du8;
  const int64_t L = int64_t(hn::Lanes(du));
  const auto vg = hn::Set(du, g);
  const auto one64 = hn::Set(d64, uint64_t{1});
  auto round_shift = [&](auto p) { return hn::Add(hn::ShiftRight<40>(p), hn::And(hn::ShiftRight<39>(p), one64)); };
  int64_t j = 0;
  for (; j + L <= n; j += L) {
    const auto v = hn::BitCast(du, hn::LoadU(di, e + j));
    const auto re = round_shift(hn::MulEven(v, vg));
    const auto ro = round_shift(hn::MulEven(hn::BitCast(du, hn::ShiftRight<32>(hn::BitCast(d64, v))), vg));
    const auto r = hn::OddEven(hn::BitCast(du, hn::ShiftLeft<32>(ro)), hn::BitCast(du, re));  // each <= 255
    hn::StoreU(hn::DemoteTo(du8, hn::BitCast(di, r)), du8, out + j);
  }
  return j;
#endif
}

// The max and min of the valid scores of the leading whole vectors (lowest/highest int32 when
// none); returns how many were read.
int64_t RangeVectors(const int32_t* x, const uint8_t* valid, int64_t n, int32_t* mx, int32_t* mn) {
  const hn::ScalableTag<int32_t> di;
  const hn::RebindToUnsigned<decltype(di)> du;
  const hn::Rebind<uint8_t, decltype(di)> du8;
  const int64_t L = int64_t(hn::Lanes(di));
  const auto lo = hn::Set(di, INT32_MIN), hi = hn::Set(di, INT32_MAX);
  auto vmax = lo, vmin = hi;
  int64_t j = 0;
  for (; j + L <= n; j += L) {
    const auto v = hn::LoadU(di, x + j);
    if (valid) {
      const auto ok = hn::RebindMask(di, hn::Ne(hn::PromoteTo(du, hn::LoadU(du8, valid + j)), hn::Zero(du)));
      vmax = hn::Max(vmax, hn::IfThenElse(ok, v, lo)), vmin = hn::Min(vmin, hn::IfThenElse(ok, v, hi));
    } else {
      vmax = hn::Max(vmax, v), vmin = hn::Min(vmin, v);
    }
  }
  *mx = hn::GetLane(hn::MaxOfLanes(di, vmax));
  *mn = hn::GetLane(hn::MinOfLanes(di, vmin));
  return j;
}

}  // namespace finch::quant::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace finch::quant {

HWY_EXPORT(IExpVectors);
HWY_EXPORT(NormalizeVectors);
HWY_EXPORT(RangeVectors);

int64_t normalize_vectors(const int32_t* e, int64_t n, uint32_t g, uint8_t* out) {
  return FINCH_DISPATCH(NormalizeVectors)(e, n, g, out);
}
int64_t range_vectors(const int32_t* x, const uint8_t* valid, int64_t n, int32_t* mx, int32_t* mn) {
  return FINCH_DISPATCH(RangeVectors)(x, valid, n, mx, mn);
}

// Declared in qs8_transformer.cc, where the row's scalar parts live.
int64_t iexp_vectors(const int32_t* x, const uint8_t* valid, int64_t n, int32_t mx, uint32_t d_max, uint32_t mult,
                     int total, int32_t* e) {
  return FINCH_DISPATCH(IExpVectors)(x, valid, n, mx, d_max, mult, total, e);
}

}  // namespace finch::quant
#endif  // HWY_ONCE
