// Highway kernels of the int8 LSTM/GRU operators, each bit for bit the element steps of
// qs8_rnn.h / qs8_lstm.h / qs8_gru.h (whose inline functions also do the tails):
//   Q12Rows      int32 dot sums -> Q3.12 gate pre-activations (q16_gate, + q16_add_sat)
//   LstmCell     c' = qlstm_cell_update, tanh input = qlstm_cell_to_q12
//   LstmOut      requantize(o · t, m_out, z, -128, 127)
//   GruNPre      qgru_n_preact
//   GruH         qgru_h_update
//   GemmS8U8     the recurrent GEMV (and the input GEMM, 4 rows at a time) on AVX-512 VNNI:
//                output rows in lanes, no reductions
// The σ/tanh table lookups stay scalar between these passes (no 16-bit gather).
// Products of two int16 are formed exactly in int32 lanes, widened to int64 for the shifts.
//
// Per 64-bit lane: acc = raw + offset (int32, wrapping), v = int64(acc) · multiplier (MulEven
// of the sign-extended values: exact), r = (v + 2^(n−1)) >> n (the rounding rule, a variable
// shift per lane), clamp to int16, optionally + add with a second clamp; the lane is
// narrowed by truncation (it already fits) and a saturating demote. Rows whose total shift
// reaches 64 carry multiplier 0 and n = 1 (the result is 0 either way, pack_rows normalizes).
#include <cstdint>
#include <cstring>

#include "kernels/qs8_gru.h"
#include "kernels/qs8_lstm.h"

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

// Rows r0 .. r0+n−1 of pk (r0 a multiple of 16). Full int32 vectors: the even lanes' products
// by MulEven, the odd lanes' by MulEven of both operands shifted down 32 bits in the int64 view;
// each half has its own per-lane shift and rounding offset from pk's even/odd arrays (rows of a
// 16-row chunk stored evens first, so a vector of 4, 8 or 16 rows loads its halves contiguously).
void Q12Rows(const int32_t* raw, const int32_t* offset, const PackedRows& pk, int64_t r0, const int16_t* add,
             int64_t n, int16_t* out) {
  int64_t i = 0;
#if HWY_TARGET != HWY_SCALAR  // one-lane vectors cannot repartition an int64 into two int32
  const hn::ScalableTag<int32_t> d32;
  const hn::Repartition<int64_t, decltype(d32)> d64;
  const hn::Rebind<int16_t, decltype(d32)> d16;
  const auto N = int64_t(hn::Lanes(d32));
  const auto lo = hn::Set(d64, -32768), hi = hn::Set(d64, 32767);
  const int32_t* m32 = pk.mult32.data() + r0;
  if (N <= 16 && r0 % 16 == 0) {
    for (; i + N <= n; i += N) {
      const int64_t row = r0 + i, e = (row / 16) * 16 + (row % 16) / 2;  // this vector's halves
      const auto acc = hn::Add(hn::LoadU(d32, raw + i), hn::LoadU(d32, offset + i));
      const auto m = hn::LoadU(d32, m32 + i);
      const auto ve = hn::MulEven(acc, m);
      const auto vo = hn::MulEven(hn::BitCast(d32, hn::ShiftRight<32>(hn::BitCast(d64, acc))),
                                  hn::BitCast(d32, hn::ShiftRight<32>(hn::BitCast(d64, m))));
      // floor((v + 2^(n−1)) / 2^n) as written: |v| < 2^62 and 2^(n−1) <= 2^62 cannot overflow
      // here, so one variable shift does (rounding_shift's overflow-free form is for any int64).
      auto re = hn::Shr(hn::Add(ve, hn::LoadU(d64, pk.half_eo.data() + e)), hn::LoadU(d64, pk.shift_eo.data() + e));
      auto ro = hn::Shr(hn::Add(vo, hn::LoadU(d64, pk.half_eo.data() + e + 8)),
                        hn::LoadU(d64, pk.shift_eo.data() + e + 8));
      re = hn::Min(hn::Max(re, lo), hi);
      ro = hn::Min(hn::Max(ro, lo), hi);
      auto r = hn::OddEven(hn::BitCast(d32, hn::ShiftLeft<32>(ro)), hn::BitCast(d32, re));
      if (add) r = hn::Min(hn::Max(hn::Add(r, hn::PromoteTo(d32, hn::LoadU(d16, add + i))), hn::Set(d32, -32768)),
                           hn::Set(d32, 32767));
      hn::StoreU(hn::DemoteTo(d16, r), d16, out + i);
    }
  }
#endif
  for (; i < n; ++i)
    out[i] = GateLane(raw[i], offset[i], pk.mult[size_t(r0 + i)], pk.shift[size_t(r0 + i)], add ? add + i : nullptr);
}

// The GEMV of a recurrent step with the output rows in the lanes: weights packed as u8 (w + 128)
// in groups of 8 blocks of 16 rows, [ceil(M/128)][K4][8][16][4] (one k4 step of a group is 512
// contiguous bytes: one stream for the prefetcher, not 8), x i8 codes (4·K4 bytes, zero
// padded), one vpdpbusd per 16 rows and 4 k:
//   S[r] = Σ_k x[k] · (w[r][k] + 128) = Σ_k x[k]·w[r][k] + 128·Σ_k x[k]
// and acc[r] = S[r] − 128·Σx (wrapping int32). The dot kernel for one vector (qu8s8_dot_rows)
// reduces each row horizontally, which dominates at K = 128; this layout never reduces.
// `rows` rows of x (stride ldx) against the M rows from block b0 on give rows of acc (stride
// ldacc, each holding ceil(M/16)·16 values). Returns false on targets without it (the caller
// then uses qu8s8_dot_rows). Named as kernels/README.md asks: s8 activations × u8 weights, K
// taken 4 at a time, AVX-512 VNNI.
#if HWY_TARGET == HWY_AVX3_DL
// Inline asm, as qs8_gemm_vnni-inl.h does (GCC 12 keeps the builtin's operands in zmm0–15).
HWY_INLINE void VnniDot(__m512i& c, __m512i u8, __m512i i8) { asm("vpdpbusd %2, %1, %0" : "+v"(c) : "v"(u8), "v"(i8)); }
#endif

#if HWY_TARGET == HWY_AVX3_DL
// R rows of x (stride ldx) against Q consecutive blocks of one group starting at w (block q at
// w + 64·q, step k4 at + 512·k4): Q·R accumulators, each weight vector loaded once for the R rows.
template <int R, int Q>
HWY_INLINE void qs8u8_gemm_block_c4__avx512vnni(const int8_t* x, int64_t ldx, const uint8_t* w, int64_t K4,
                                                const __m512i* corr, int32_t* acc, int64_t ldacc) {
  __m512i c[R][Q];
  for (int r = 0; r < R; ++r)
    for (int q = 0; q < Q; ++q) c[r][q] = _mm512_setzero_si512();
  for (int64_t k4 = 0; k4 < K4; ++k4) {
    __m512i wv[Q];
    for (int q = 0; q < Q; ++q) wv[q] = _mm512_loadu_si512(w + k4 * 512 + q * 64);
    for (int r = 0; r < R; ++r) {
      int32_t word;
      std::memcpy(&word, x + r * ldx + 4 * k4, 4);
      const __m512i xv = _mm512_set1_epi32(word);
      for (int q = 0; q < Q; ++q) VnniDot(c[r][q], wv[q], xv);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int q = 0; q < Q; ++q) _mm512_storeu_si512(acc + r * ldacc + q * 16, _mm512_sub_epi32(c[r][q], corr[r]));
}

template <int R>
void qs8u8_gemm_rows_c4__avx512vnni(const int8_t* x, int64_t ldx, const uint8_t* wu, int64_t b0, int64_t M,
                                    int64_t K4, int32_t* acc, int64_t ldacc) {
  __m512i corr[R];
  for (int r = 0; r < R; ++r) {
    uint32_t sx = 0;
    for (int64_t k = 0; k < 4 * K4; ++k) sx += uint32_t(int32_t(x[r * ldx + k]));
    corr[r] = _mm512_set1_epi32(int32_t(sx * 128u));
  }
  const int64_t end = b0 + (M + 15) / 16;
  for (int64_t b = b0; b < end;) {
    const uint8_t* w = wu + (b / 8) * K4 * 512 + (b % 8) * 64;
    int32_t* a = acc + (b - b0) * 16;
    // One row: a whole group of 8 blocks, so that 8 independent vpdpbusd chains hide its 5-cycle
    // latency (4 left the GEMV latency-bound); more rows already give 4·R chains.
    if (R == 1 && b % 8 == 0 && b + 8 <= end) {
      qs8u8_gemm_block_c4__avx512vnni<R, 8>(x, ldx, w, K4, corr, a, ldacc);
      b += 8;
    } else if (b % 4 == 0 && b + 4 <= end) {
      qs8u8_gemm_block_c4__avx512vnni<R, 4>(x, ldx, w, K4, corr, a, ldacc);
      b += 4;
    } else {
      qs8u8_gemm_block_c4__avx512vnni<R, 1>(x, ldx, w, K4, corr, a, ldacc);
      b += 1;
    }
  }
}
#endif

bool GemmS8U8(const int8_t* x, int64_t ldx, int64_t rows, const uint8_t* wu, int64_t b0, int64_t M, int64_t K4,
              int32_t* acc, int64_t ldacc) {
#if HWY_TARGET == HWY_AVX3_DL
  int64_t r = 0;
  for (; r + 4 <= rows; r += 4)
    qs8u8_gemm_rows_c4__avx512vnni<4>(x + r * ldx, ldx, wu, b0, M, K4, acc + r * ldacc, ldacc);
  switch (rows - r) {
    case 3: qs8u8_gemm_rows_c4__avx512vnni<3>(x + r * ldx, ldx, wu, b0, M, K4, acc + r * ldacc, ldacc); break;
    case 2: qs8u8_gemm_rows_c4__avx512vnni<2>(x + r * ldx, ldx, wu, b0, M, K4, acc + r * ldacc, ldacc); break;
    case 1: qs8u8_gemm_rows_c4__avx512vnni<1>(x + r * ldx, ldx, wu, b0, M, K4, acc + r * ldacc, ldacc); break;
    default: break;
  }
  return true;
#else
  (void)x, (void)ldx, (void)rows, (void)wu, (void)b0, (void)M, (void)K4, (void)acc, (void)ldacc;
  return false;
#endif
}

#if HWY_TARGET != HWY_SCALAR
namespace {
using D64 = hn::ScalableTag<int64_t>;
using D32 = hn::Rebind<int32_t, D64>;
using D16 = hn::Rebind<int16_t, D64>;
using D8 = hn::Rebind<int8_t, D64>;

// int16 lanes -> int32 / int64 lanes.
HWY_INLINE hn::Vec<D32> Load16As32(const int16_t* p) { return hn::PromoteTo(D32(), hn::LoadU(D16(), p)); }
// The rounding rule for one shift n >= 1 on int64 lanes.
HWY_INLINE hn::Vec<D64> RoundShift(hn::Vec<D64> v, int n) {
  return hn::Add(hn::ShiftRightSame(v, n), hn::And(hn::ShiftRightSame(v, n - 1), hn::Set(D64(), 1)));
}
HWY_INLINE hn::Vec<D64> Clamp(hn::Vec<D64> v, int64_t lo, int64_t hi) {
  return hn::Min(hn::Max(v, hn::Set(D64(), lo)), hn::Set(D64(), hi));
}
// int64 lanes already inside int16 (or int8) range -> int32 lanes (truncation).
HWY_INLINE hn::Vec<D32> Narrow(hn::Vec<D64> v) {
  const hn::RebindToUnsigned<D64> du64;
  const hn::Rebind<uint32_t, D64> du32;
  return hn::BitCast(D32(), hn::TruncateTo(du32, hn::BitCast(du64, v)));
}
// int64(a) · m for int32 lanes a and a multiplier in [0, 2^31): MulEven of the low halves.
HWY_INLINE hn::Vec<D64> MulWide(hn::Vec<D32> a, hn::Vec<D64> m) {
  const hn::Repartition<int32_t, D64> d32f;
  return hn::MulEven(hn::BitCast(d32f, hn::PromoteTo(D64(), a)), hn::BitCast(d32f, m));
}
}  // namespace
#endif

void LstmCell(int64_t H, const int16_t* i_g, const int16_t* f_g, const int16_t* g_g, int k, int16_t* c, int16_t* tin) {
  int64_t j = 0;
#if HWY_TARGET != HWY_SCALAR
  const D64 d64;
  const auto N = int64_t(hn::Lanes(d64));
  for (; j + N <= H; j += N) {
    const auto fc = hn::PromoteTo(d64, hn::Mul(Load16As32(f_g + j), Load16As32(c + j)));
    const auto ig = hn::PromoteTo(d64, hn::Mul(Load16As32(i_g + j), Load16As32(g_g + j)));
    const auto v = hn::Add(hn::ShiftLeft<15>(fc), hn::ShiftLeftSame(ig, k));
    const auto cn = Clamp(RoundShift(v, 30), -32768, 32767);
    hn::StoreU(hn::DemoteTo(D16(), Narrow(cn)), D16(), c + j);
    const auto t = k > 12 ? RoundShift(cn, k - 12) : k == 12 ? cn : Clamp(hn::ShiftLeftSame(cn, 12 - k), -32768, 32767);
    hn::StoreU(hn::DemoteTo(D16(), Narrow(t)), D16(), tin + j);
  }
#endif
  for (; j < H; ++j) {
    c[j] = qlstm_cell_update(f_g[j], c[j], i_g[j], g_g[j], k);
    tin[j] = qlstm_cell_to_q12(c[j], k);
  }
}

void LstmOut(int64_t H, const int16_t* o, const int16_t* t, int32_t mult, int n, int32_t z, int8_t* out) {
  int64_t j = 0;
#if HWY_TARGET != HWY_SCALAR
  const D64 d64;
  const auto N = int64_t(hn::Lanes(d64));
  const auto m = hn::Set(d64, mult);
  for (; j + N <= H; j += N) {
    const auto v = MulWide(hn::Mul(Load16As32(o + j), Load16As32(t + j)), m);
    const auto r = hn::Add(Clamp(RoundShift(v, n), -128 - int64_t(z), 127 - int64_t(z)), hn::Set(d64, z));
    hn::StoreU(hn::DemoteTo(D8(), Narrow(r)), D8(), out + j);
  }
#endif
  const FixedPointMultiplier fm{mult, n - 31};
  for (; j < H; ++j) out[j] = int8_t(requantize(int32_t(o[j]) * t[j], fm, z, -128, 127));
}

void GruNPre(int64_t H, const int16_t* gx_n, const int16_t* r, const int16_t* gh_n, int16_t* out) {
  int64_t j = 0;
#if HWY_TARGET != HWY_SCALAR
  const D64 d64;
  const auto N = int64_t(hn::Lanes(d64));
  for (; j + N <= H; j += N) {
    const auto v = hn::Add(hn::ShiftLeft<15>(hn::PromoteTo(d64, Load16As32(gx_n + j))),
                           hn::PromoteTo(d64, hn::Mul(Load16As32(r + j), Load16As32(gh_n + j))));
    hn::StoreU(hn::DemoteTo(D16(), Narrow(Clamp(RoundShift(v, 15), -32768, 32767))), D16(), out + j);
  }
#endif
  for (; j < H; ++j) out[j] = qgru_n_preact(gx_n[j], r[j], gh_n[j]);
}

void GruH(int64_t H, const int16_t* z_g, const int16_t* n_g, int8_t* h, int32_t z_h, int32_t mult, int n) {
  int64_t j = 0;
#if HWY_TARGET != HWY_SCALAR
  const D64 d64;
  const auto N = int64_t(hn::Lanes(d64));
  const auto m = hn::Set(d64, mult);
  const auto k32768 = hn::Set(D32(), 32768);
  for (; j + N <= H; j += N) {
    const auto z = Load16As32(z_g + j);
    const auto hz = hn::Sub(hn::PromoteTo(D32(), hn::PromoteTo(D16(), hn::LoadU(D8(), h + j))), hn::Set(D32(), z_h));
    const auto a = MulWide(hn::Mul(hn::Sub(k32768, z), Load16As32(n_g + j)), m);
    const auto b = hn::ShiftLeftSame(hn::PromoteTo(d64, hn::Mul(z, hz)), n - 15);
    const auto r =
        hn::Add(Clamp(RoundShift(hn::Add(a, b), n), -128 - int64_t(z_h), 127 - int64_t(z_h)), hn::Set(d64, z_h));
    hn::StoreU(hn::DemoteTo(D8(), Narrow(r)), D8(), h + j);
  }
#endif
  const FixedPointMultiplier fm{mult, n - 31};
  for (; j < H; ++j) h[j] = qgru_h_update(z_g[j], n_g[j], h[j], z_h, fm);
}

}  // namespace finch::quant::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace finch::quant::kernels {

HWY_EXPORT(Q12Rows);
HWY_EXPORT(GemmS8U8);
HWY_EXPORT(LstmCell);
HWY_EXPORT(LstmOut);
HWY_EXPORT(GruNPre);
HWY_EXPORT(GruH);

void q12_rows(const int32_t* raw, const int32_t* offset, const PackedRows& pk, int64_t r0, const int16_t* add,
              int64_t n, int16_t* out) {
  FINCH_DISPATCH(Q12Rows)(raw, offset, pk, r0, add, n, out);
}

bool gemm_s8u8(const int8_t* x, int64_t ldx, int64_t rows, const uint8_t* wu, int64_t b0, int64_t M, int64_t K4,
               int32_t* acc, int64_t ldacc) {
  return FINCH_DISPATCH(GemmS8U8)(x, ldx, rows, wu, b0, M, K4, acc, ldacc);
}
void lstm_cell_pass(int64_t H, const int16_t* i, const int16_t* f, const int16_t* g, int k, int16_t* c, int16_t* tin) {
  FINCH_DISPATCH(LstmCell)(H, i, f, g, k, c, tin);
}
void lstm_out_pass(int64_t H, const int16_t* o, const int16_t* t, const FixedPointMultiplier& m, int32_t z,
                   int8_t* out) {
  FINCH_DISPATCH(LstmOut)(H, o, t, m.multiplier, m.total_shift(), z, out);
}
void gru_n_pass(int64_t H, const int16_t* gx_n, const int16_t* r, const int16_t* gh_n, int16_t* out) {
  FINCH_DISPATCH(GruNPre)(H, gx_n, r, gh_n, out);
}
void gru_h_pass(int64_t H, const int16_t* z, const int16_t* n, int8_t* h, int32_t z_h, const FixedPointMultiplier& m) {
  FINCH_DISPATCH(GruH)(H, z, n, h, z_h, m.multiplier, m.total_shift());
}

}  // namespace finch::quant::kernels
#endif  // HWY_ONCE
