// Integer forms of a BERT encoder's non-linear ops (I-BERT, Kim et al. 2021: polynomial exp and
// erf, integer square root) and the int8 attention operator built on them; docs/bert-integer.md
// derives each form and tables its measured error against the float function.
//
// Every form fixes its own internal fixed point (not the input's scale, as I-BERT does), so its
// precision does not depend on how coarsely the input was quantized: the int32 input codes are
// first brought to Q14 (softmax), Q12 (GELU) by one FixedPointMultiplier. All arithmetic is int64
// on exact values; each rounding is the one rule of kernels/requant.h (half toward +infinity).
//
// Shape vocabulary: B batch, S sequence, H hidden, NH heads, HD = H / NH, n row length.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/requant.h"

namespace finch::quant {

// ---- integer softmax over one row -------------------------------------------------------------
// Input: int32 scores x (real value x·s_in), valid[j] != 0 where key j is attended (null: all).
// Output: u8 probabilities p with scale 1/255 (p = 255 for a probability of one), 0 where not
// valid; a row with no valid key gets uniform weights over all keys (as transformers' finite
// additive mask gives). Steps: d = max_valid(x) − x ≥ 0, t = −d·s_in in Q14 (clamped at −22,
// where exp < 2^-31), i-exp(t) = 2^-z·((p + b)² + c) with t = −z·ln2 + p, then
// p_j = round(255·e_j / Σe) through a reciprocal computed once per row.
struct ISoftmaxParams {
  FixedPointMultiplier to_q14;  // s_in·2^14
  int64_t d_max = 0;            // |x − max| beyond this is exp(-22) = 0
  bool vector_ok = false;       // the Highway path applies (32-bit lanes hold d and t)
};
ISoftmaxParams isoftmax_params(float s_in);  // fails on a non-positive or non-finite s_in
// One row of n >= 1 scores: the exps of whole vectors by the Highway kernel (qs8_softmax_hwy.cc)
// where vector_ok and the row's range is below 2^31, the rest as reference::isoftmax_row, whose
// codes it equals on every target.
void isoftmax_row(const int32_t* x, const uint8_t* valid, int64_t n, const ISoftmaxParams& p, uint8_t* out);
namespace reference {
void isoftmax_row(const int32_t* x, const uint8_t* valid, int64_t n, const ISoftmaxParams& p, uint8_t* out);
}
// The integer exp: e(t) for t <= 0 in Q14, result with scale 0.3585·2^-28 (e(0) = 748,998,458).
int64_t iexp_q14(int64_t t);
inline constexpr double kIExpScale = 0.3585 / 268435456.0;

// ---- integer GELU ---------------------------------------------------------------------------
// gelu(x) = x·(1 + erf(x/√2))/2 with I-BERT's erf ≈ sign(u)·(1 − 0.2888·(min(|u|, 1.769) − 1.769)²),
// u = x/√2 in Q12 (one multiplier), the bracket in Q24. Input codes x − z_in, |x − z_in| < 2^23;
// output codes clamp(z_out + round(gelu·/s_out), qmin, qmax).
struct IGeluParams {
  FixedPointMultiplier to_q12;  // s_in/√2·2^12
  FixedPointMultiplier out;     // s_in/s_out·2^-8 (the product keeps 8 extra bits)
  int32_t z_in = 0, z_out = 0, qmin = -128, qmax = 127;
};
IGeluParams igelu_params(float s_in, int32_t z_in, float s_out, int32_t z_out, int32_t qmin, int32_t qmax);
int32_t igelu(int32_t x, const IGeluParams& p);
// The same function as a table over every int8 (i8: index code + 128) or u8 input code: what the
// runtime's qgelu op reads; equal to igelu() at every code by construction.
std::vector<int8_t> igelu_table_i8(const IGeluParams& p, bool input_u8);
// The float form at the same codes: clamp(z_out + rne(gelu((c − z_in)·s_in) / s_out)).
std::vector<int8_t> gelu_table_i8(float s_in, int32_t z_in, bool input_u8, float s_out, int32_t z_out, int32_t qmin,
                                  int32_t qmax);

// ---- integer LayerNorm (normalization only; γ, β are the caller's) --------------------------
// Over one row of n int32 codes (|x| < 2^16, n <= 8192): with S = Σx and V = n·Σx² − S² (exact,
// = n²·variance in codes², plus n²·eps/s_in²), the normalized value (x − μ)/σ = (n·x − S)/√V,
// computed as round((n·x − S)·2^(12+p) / r) with r = isqrt(V·4^p) (Newton), p chosen so r has
// >= 20 bits. Output in Q12. A constant row gives zeros.
struct ILayerNormParams {
  int64_t eps_q = 0;  // round(n²·eps/s_in²), saturated
};
ILayerNormParams ilayernorm_params(float s_in, double eps, int64_t n);
void ilayernorm_row(const int32_t* x, int64_t n, const ILayerNormParams& p, int32_t* out_q12);
uint64_t isqrt_u64(uint64_t v);  // floor(sqrt(v)), by Newton's iteration

// ---- int8 multi-head self-attention ---------------------------------------------------------
// q, k, v: i8 [B, S, H] symmetric per-tensor (zero point 0) with scales s_q, s_k, s_v; mask u8
// [B, S] (1 attended, 0 padding) or null. Per (b, head): scores = Q·Kᵀ in int32, P = the integer
// softmax of scores at s_q·s_k/√HD (u8, scale 1/255), acc = P·V in int32, out = requantize(acc,
// (s_v/255)/s_out, z_out, qmin, qmax): i8 [B, S, H].
struct QAttentionShape {
  int64_t B = 0, S = 0, H = 0, NH = 0;
};
struct QAttentionQuant {
  float s_q = 0, s_k = 0, s_v = 0, s_out = 0;
  int32_t z_out = 0, qmin = -128, qmax = 127;
};

namespace reference {
// acc [S, S] = Q_h·K_hᵀ of one (b, head), plain loops.
void qs8_attention_scores(const int8_t* q, const int8_t* k, const QAttentionShape& sh, int64_t b, int64_t h,
                          int32_t* acc);
// acc [S, HD] = P·V_h of one (b, head); p u8 [S, S].
void qs8_attention_pv(const uint8_t* p, const int8_t* v, const QAttentionShape& sh, int64_t b, int64_t h,
                      int32_t* acc);
// The whole operator, plain loops over the functions above.
void qs8_attention(const int8_t* q, const int8_t* k, const int8_t* v, const uint8_t* mask, const QAttentionShape& sh,
                   const QAttentionQuant& qu, int8_t* out);
}  // namespace reference

namespace kernels {
// The operator: per (b, head) task on the pool, both matmuls through qs8::qu8s8_dot_rows over
// padded K_h and V_hᵀ (VNNI / sdot / Highway), equal to reference::qs8_attention bit for bit.
void qs8_attention(const int8_t* q, const int8_t* k, const int8_t* v, const uint8_t* mask, const QAttentionShape& sh,
                   const QAttentionQuant& qu, int8_t* out);
}  // namespace kernels

}  // namespace finch::quant
