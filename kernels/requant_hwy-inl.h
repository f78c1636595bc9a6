// Vectorized requantization (per-target Highway header): int32 accumulators -> clamped codes by the
// rule of kernels/requant.h, bit for bit:
//   y = clamp(z_out + rounding_shift(int64(acc) · multiplier, n), qmin, qmax),  n = 31 + shift,
//   rounding_shift(v, n) = floor(v / 2^n + 1/2)  (ties toward +infinity).
// Include it inside a file compiled per target (after foreach_target.h); the toggle below lets it
// be re-included once per target, as Highway's per-target `-inl.h` headers do.
//
// Why it is exact: |acc| < 2^31 and 0 <= multiplier < 2^31, so the product is an exact int64
// (|v| < 2^62), formed by MulEven on the even int32 lanes and on the odd lanes shifted down.
// The rounding is computed as (v >> n) + ((v >> (n − 1)) & 1), the reference's overflow-free form
// of floor((v + 2^(n−1)) / 2^n). The clamp happens in int64 (against qmin − z and qmax − z) before
// the narrowing, so a huge rounded value never wraps. Preconditions (the caller's job):
// 1 <= n <= 63; a channel with n >= 64 is the same as multiplier 0 (its result is 0), and n <= 0
// (real multiplier >= 2^30, never built by any model) must take the scalar quant::requantize.
#if defined(FINCH_QUANT_KERNELS_REQUANT_HWY_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef FINCH_QUANT_KERNELS_REQUANT_HWY_INL_H_
#undef FINCH_QUANT_KERNELS_REQUANT_HWY_INL_H_
#else
#define FINCH_QUANT_KERNELS_REQUANT_HWY_INL_H_
#endif

#include <cstdint>

#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace finch::quant::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// The per-channel constants of one requantization. Plain scalars, broadcast inside Requantize
// (the compiler hoists the broadcasts out of the caller's loop): SVE vectors are sizeless and
// cannot be struct members.
struct RequantParams {
  int32_t multiplier;
  int n;           // total shift, 1..63
  int64_t lo, hi;  // clamp bounds relative to z_out
  int32_t z_out;

  // Multipliers with n >= 64 are normalized to multiplier 0 (rounding_shift gives 0 either way).
  RequantParams(int32_t mult, int total_shift, int32_t z, int32_t qmin, int32_t qmax)
      : multiplier(total_shift >= 64 ? 0 : mult),
        n(total_shift >= 64 ? 1 : total_shift),
        lo(int64_t(qmin) - z),
        hi(int64_t(qmax) - z),
        z_out(z) {}
};

// True when the vector path covers this total shift (see the preconditions above).
inline bool RequantVectorApplies(int total_shift) { return total_shift >= 1; }

// rounding_shift(v, n) clamped to [lo, hi], for int64 lanes.
template <class D64>
HWY_INLINE hn::Vec<D64> RoundClampI64(D64 d64, hn::Vec<D64> v, const RequantParams& q) {
  const auto r = hn::Add(hn::ShiftRightSame(v, q.n), hn::And(hn::ShiftRightSame(v, q.n - 1), hn::Set(d64, 1)));
  return hn::Min(hn::Max(r, hn::Set(d64, q.lo)), hn::Set(d64, q.hi));
}

// The clamped output codes of acc as int32 lanes (same order as acc).
template <class DI32>
HWY_INLINE hn::Vec<DI32> Requantize(DI32 d, hn::Vec<DI32> acc, const RequantParams& q) {
#if HWY_TARGET == HWY_SCALAR
  // One lane: no odd half to move, and the scalar target cannot BitCast between widths.
  const hn::RepartitionToWide<DI32> d64;
  const auto v = hn::Set(d64, int64_t(hn::GetLane(acc)) * q.multiplier);
  return hn::Set(d, int32_t(hn::GetLane(RoundClampI64(d64, v, q))) + q.z_out);
#else
  const hn::RepartitionToWide<DI32> d64;
  // Even lanes: MulEven reads lanes 0, 2, ...; odd lanes: an arithmetic shift of the 64-bit view
  // by 32 moves lane 2k+1 (sign-extended) into lane 2k.
  const auto acc_odd = hn::BitCast(d, hn::ShiftRight<32>(hn::BitCast(d64, acc)));
  const auto m = hn::Set(d, q.multiplier);
  const auto even = RoundClampI64(d64, hn::MulEven(acc, m), q);
  const auto odd = RoundClampI64(d64, hn::MulEven(acc_odd, m), q);
  // Both results fit int32 now: their low halves are the values. Put odd results in odd lanes.
  const auto r = hn::OddEven(hn::BitCast(d, hn::ShiftLeft<32>(odd)), hn::BitCast(d, even));
  return hn::Add(r, hn::Set(d, q.z_out));
#endif
}

// Requantize for total shifts 32 <= n <= 52 (every real multiplier in [2^-21, 0.5): all ordinary
// layers), about half the work. For n >= 32,
//   (v + 2^(n−1)) >> n = ((v + 2^(n−1)) >> 32) >> (n − 32),
// and the first shift is just the high int32 half of each product, so the rest runs on int32
// lanes. z_out is folded into the rounding term: (v + 2^(n−1) + z·2^n) >> n = rounded + z
// exactly, and with |v| < 2^62, 2^(n−1) + |z|·2^n < 2^61 for n <= 52 the sum cannot overflow.
// The result is at most 2^30 + 255 in magnitude, so the int32 clamp equals the int64 one.
inline bool RequantHighApplies(const RequantParams& q) { return q.n >= 32 && q.n <= 52; }

// The rounding term with z_out folded in (see above).
inline int64_t RequantHighRound(const RequantParams& q) {
  return (int64_t(1) << (q.n - 1)) + int64_t(q.z_out) * (int64_t(1) << q.n);
}

#if HWY_TARGET != HWY_SCALAR  // one lane: RequantizeHigh below takes the plain rule
// The same with the per-channel constants already broadcast (hoisted out of the caller's loop:
// stores of int8 codes may alias anything, so the compiler would reload and re-broadcast them):
// m = multiplier, round = RequantHighRound in int64 lanes, shift = n − 32, lo/hi = qmin/qmax.
template <class DI32, class V64>
HWY_INLINE hn::Vec<DI32> RequantizeHighV(DI32 d, hn::Vec<DI32> acc, hn::Vec<DI32> m, V64 round, int shift,
                                         hn::Vec<DI32> lo, hn::Vec<DI32> hi) {
  // Lane swaps (vpshufd) rather than 64-bit shifts move the halves: on AVX-512 the shifts share
  // port 0 with the multiplies, which bound the depthwise loop.
  const auto acc_odd = hn::Shuffle2301(acc);
  const auto even = hn::Add(hn::MulEven(acc, m), round);
  const auto odd = hn::Add(hn::MulEven(acc_odd, m), round);
  // High halves: odd's sit in the odd lanes already; even's move down by the swap.
  const auto h = hn::OddEven(hn::BitCast(d, odd), hn::Shuffle2301(hn::BitCast(d, even)));
  return hn::Min(hn::Max(hn::ShiftRightSame(h, shift), lo), hi);
}
#endif

template <class DI32>
HWY_INLINE hn::Vec<DI32> RequantizeHigh(DI32 d, hn::Vec<DI32> acc, const RequantParams& q, int32_t qmin,
                                        int32_t qmax) {
#if HWY_TARGET == HWY_SCALAR
  (void)qmin;
  (void)qmax;
  return Requantize(d, acc, q);
#else
  const hn::RepartitionToWide<DI32> d64;
  return RequantizeHighV(d, acc, hn::Set(d, q.multiplier), hn::Set(d64, RequantHighRound(q)), q.n - 32,
                         hn::Set(d, qmin), hn::Set(d, qmax));
#endif
}

}  // namespace finch::quant::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // FINCH_QUANT_KERNELS_REQUANT_HWY_INL_H_
