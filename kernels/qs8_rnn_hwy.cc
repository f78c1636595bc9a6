// Highway kernel of the int8 LSTM/GRU operators: int32 dot sums -> Q3.12 gate pre-activations,
// per row multiplier and shift, bit for bit q16_gate (+ q16_add_sat) of qs8_rnn.h.
//
// Per 64-bit lane: acc = raw + offset (int32, wrapping), v = int64(acc) · multiplier (MulEven
// of the sign-extended values: exact), r = (v >> n) + ((v >> (n − 1)) & 1) (the rounding rule,
// variable shift per lane), clamp to int16, optionally + add with a second clamp; the lane is
// narrowed by truncation (it already fits) and a saturating demote. Rows whose total shift
// reaches 64 carry multiplier 0 and n = 1 (the result is 0 either way, pack_rows normalizes).
#include <cstdint>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/qs8_rnn_hwy.cc"
#include "framework/hwy_kernel.h"  // foreach_target, highway, FINCH_DISPATCH

HWY_BEFORE_NAMESPACE();
namespace finch::quant::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// The scalar form of one lane (the tail).
inline int16_t GateLane(int32_t raw, int32_t offset, int64_t mult, int64_t n, const int16_t* add) {
  const auto acc = int32_t(uint32_t(raw) + uint32_t(offset));
  const int64_t v = int64_t(acc) * mult;
  int64_t r = (v >> n) + ((v >> (n - 1)) & 1);
  r = r < -32768 ? -32768 : r > 32767 ? 32767 : r;
  if (add) {
    r += *add;
    r = r < -32768 ? -32768 : r > 32767 ? 32767 : r;
  }
  return int16_t(r);
}

void Q12Rows(const int32_t* raw, const int32_t* offset, const int64_t* mult, const int64_t* shift, const int16_t* add,
             int64_t n, int16_t* out) {
  int64_t i = 0;
#if HWY_TARGET != HWY_SCALAR  // one-lane vectors cannot repartition an int64 into two int32
  const hn::ScalableTag<int64_t> d64;
  const hn::Rebind<int32_t, decltype(d64)> d32;
  const hn::Repartition<int32_t, decltype(d64)> d32f;
  const hn::Rebind<uint32_t, decltype(d64)> du32;
  const hn::RebindToUnsigned<decltype(d64)> du64;
  const hn::Rebind<int16_t, decltype(d64)> d16;
  const auto N = int64_t(hn::Lanes(d64));
  const auto lo = hn::Set(d64, -32768), hi = hn::Set(d64, 32767), one = hn::Set(d64, 1);
  for (; i + N <= n; i += N) {
    const auto acc = hn::Add(hn::LoadU(d32, raw + i), hn::LoadU(d32, offset + i));
    const auto v = hn::MulEven(hn::BitCast(d32f, hn::PromoteTo(d64, acc)), hn::BitCast(d32f, hn::LoadU(d64, mult + i)));
    const auto s = hn::LoadU(d64, shift + i);
    auto r = hn::Add(v >> s, hn::And(v >> hn::Sub(s, one), one));
    r = hn::Min(hn::Max(r, lo), hi);
    if (add) {
      r = hn::Add(r, hn::PromoteTo(d64, hn::PromoteTo(d32, hn::LoadU(d16, add + i))));
      r = hn::Min(hn::Max(r, lo), hi);
    }
    const auto r32 = hn::BitCast(d32, hn::TruncateTo(du32, hn::BitCast(du64, r)));
    hn::StoreU(hn::DemoteTo(d16, r32), d16, out + i);
  }
#endif
  for (; i < n; ++i) out[i] = GateLane(raw[i], offset[i], mult[i], shift[i], add ? add + i : nullptr);
}

}  // namespace finch::quant::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace finch::quant::kernels {

HWY_EXPORT(Q12Rows);

void q12_rows(const int32_t* raw, const int32_t* offset, const int64_t* mult, const int64_t* shift,
              const int16_t* add, int64_t n, int16_t* out) {
  FINCH_DISPATCH(Q12Rows)(raw, offset, mult, shift, add, n, out);
}

}  // namespace finch::quant::kernels
#endif  // HWY_ONCE
