// The integer softmax, GELU and LayerNorm of qs8_transformer.h and the scalar reference of the
// int8 attention operator. Plain loops: these are the specification the operator is tested
// against (docs/bert-integer.md derives the constants).
#include "kernels/qs8_transformer.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "framework/error.h"

namespace finch::quant {

namespace {

// I-BERT's second-order fits: exp(p) ≈ 0.3585·(p + 1.353)² + 0.344 on p in (−ln2, 0], and
// erf(u) ≈ sign(u)·(1 − 0.2888·(min(|u|, 1.769) − 1.769)²).
constexpr int64_t kLn2Q14 = 11357;              // round(ln 2 · 2^14)
constexpr int64_t kExpBQ14 = 22168;             // round(1.353 · 2^14)
constexpr int64_t kExpCQ28 = 257578234;         // round(0.344 / 0.3585 · 2^28)
constexpr int64_t kErfBQ12 = 7246;              // round(1.769 · 2^12)
constexpr int64_t kErfAQ16 = 18927;             // round(0.2888 · 2^16)
constexpr int64_t kOneQ24 = int64_t(1) << 24;
constexpr int64_t kExpClampQ14 = 22 * 16384;    // exp(−22) < 2^-31: weights below one code

void check_scale(float s, const char* what) {
  if (!(s > 0) || !std::isfinite(s)) fail("integer ", what, ": expected a positive finite scale, found ", s);
}

int bit_length(uint64_t v) {
  int n = 0;
  while (v) ++n, v >>= 1;
  return n;
}

}  // namespace

// ---- softmax -------------------------------------------------------------------------------

ISoftmaxParams isoftmax_params(float s_in) {
  check_scale(s_in, "softmax");
  ISoftmaxParams p;
  p.to_q14 = quantize_multiplier(double(s_in) * 16384.0);
  // The largest distance from the max that still matters: 22 / s_in, capped so d·multiplier
  // stays below 2^62.
  p.d_max = int64_t(std::min(std::ceil(22.0 / double(s_in)) + 1.0, double(int64_t(1) << 31)));
  // The vector path keeps d and t in 32-bit lanes: t(d_max) < 2^31 and a shift of 2..63.
  const int total = p.to_q14.total_shift();
  p.vector_ok = total >= 2 && total <= 63 && rounding_shift(p.d_max * p.to_q14.multiplier, total) < (int64_t(1) << 31);
  return p;
}

namespace {

// rounding_shift for 1 <= n <= 63 (the same bits), inline: the softmax calls it per score.
inline int64_t rshift(int64_t v, int n) { return (v >> n) + ((v >> (n - 1)) & 1); }

inline int64_t iexp(int64_t t) {
  // t = −z·ln2 + r with r in (−ln2, 0]: exp(t) = 2^-z·exp(r), exp(r) by the quadratic.
  const int64_t z = (-t) / kLn2Q14;
  const int64_t r = t + z * kLn2Q14;
  const int64_t e = (r + kExpBQ14) * (r + kExpBQ14) + kExpCQ28;  // < 2^30, scale 0.3585·2^-28
  return z >= 31 ? 0 : z == 0 ? e : rshift(e, int(z));
}

}  // namespace

int64_t iexp_q14(int64_t t) { return iexp(t); }

// Defined in qs8_softmax_hwy.cc: e[j] of the row's leading whole vectors; returns how many.
int64_t iexp_vectors(const int32_t* x, const uint8_t* valid, int64_t n, int32_t mx, uint32_t d_max, uint32_t mult,
                     int total, int32_t* e);
// Also there: the normalization's and the valid range's leading whole vectors.
int64_t normalize_vectors(const int32_t* e, int64_t n, uint32_t g, uint8_t* out);
int64_t range_vectors(const int32_t* x, const uint8_t* valid, int64_t n, int32_t* mx, int32_t* mn);

namespace {

// The row's max over valid keys (lowest int64 when none) and min (for the vector path's range).
std::pair<int64_t, int64_t> valid_range(const int32_t* x, const uint8_t* valid, int64_t n, bool vectors) {
  int64_t mx = std::numeric_limits<int64_t>::min(), mn = std::numeric_limits<int64_t>::max();
  int64_t j = 0;
  if (vectors) {
    int32_t a = 0, b = 0;
    j = range_vectors(x, valid, n, &a, &b);
    // With a valid score in the vectors, a >= it >= b; with none, a = INT32_MIN < b = INT32_MAX.
    if (j > 0 && a >= b) mx = a, mn = b;
  }
  for (; j < n; ++j)
    if (!valid || valid[j]) mx = std::max<int64_t>(mx, x[j]), mn = std::min<int64_t>(mn, x[j]);
  return {mx, mn};
}

// e[j] for j in [j0, n): the reference's arithmetic, one score at a time.
void iexp_scalar(const int32_t* x, const uint8_t* valid, int64_t j0, int64_t n, int64_t mx, const ISoftmaxParams& p,
                 int32_t* e) {
  const int total = p.to_q14.total_shift();
  const int64_t mult = p.to_q14.multiplier;
  for (int64_t j = j0; j < n; ++j) {
    int64_t v = 0;
    if (!valid || valid[j]) {
      const int64_t d = std::min<int64_t>(mx - x[j], p.d_max) * mult;  // < 2^62
      const int64_t t = total >= 1 && total <= 63 ? rshift(d, total) : rounding_shift(d, total);
      v = iexp(-std::min<int64_t>(t, kExpClampQ14));
    }
    e[j] = int32_t(v);
  }
}

// out[j] = round(255·e_j / Σe) through one reciprocal; a row with no valid key is uniform.
void normalize_row(const int32_t* e, int64_t n, bool any_valid, uint8_t* out, bool vectors) {
  if (!any_valid) {
    // No key attended: transformers' finite mask makes every score equal, so weights are uniform.
    const int64_t u = (2 * 255 + n) / (2 * n);
    for (int64_t j = 0; j < n; ++j) out[j] = uint8_t(u);
    return;
  }
  int64_t sum = 0;
  for (int64_t j = 0; j < n; ++j) sum += e[j];
  // sum >= e(0) > 2^29, so the reciprocal keeps >= 11 bits beyond the 8 of the output; e·255·f <= 255·2^40.
  const int64_t f = (int64_t(1) << 40) / sum;
  const int64_t j0 = vectors ? normalize_vectors(e, n, uint32_t(255 * f), out) : 0;
  for (int64_t j = j0; j < n; ++j) out[j] = uint8_t(rshift(int64_t(e[j]) * 255 * f, 40));
}

// The row's exps (each < 2^30), kept per thread: a row is up to the sequence length long.
int32_t* exp_scratch(int64_t n) {
  thread_local std::vector<int32_t> buf;
  buf.resize(size_t(n));
  return buf.data();
}

}  // namespace

namespace reference {
void isoftmax_row(const int32_t* x, const uint8_t* valid, int64_t n, const ISoftmaxParams& p, uint8_t* out) {
  const auto [mx, mn] = valid_range(x, valid, n, false);
  int32_t* e = exp_scratch(n);
  const bool any = mx != std::numeric_limits<int64_t>::min();
  if (any) iexp_scalar(x, valid, 0, n, mx, p, e);
  normalize_row(e, n, any, out, false);
}
}  // namespace reference

void isoftmax_row(const int32_t* x, const uint8_t* valid, int64_t n, const ISoftmaxParams& p, uint8_t* out) {
  const auto [mx, mn] = valid_range(x, valid, n, true);
  int32_t* e = exp_scratch(n);
  const bool any = mx != std::numeric_limits<int64_t>::min();
  if (any) {
    int64_t j0 = 0;
    if (p.vector_ok && mx - mn < (int64_t(1) << 31))
      j0 = iexp_vectors(x, valid, n, int32_t(mx), uint32_t(p.d_max), uint32_t(p.to_q14.multiplier),
                        p.to_q14.total_shift(), e);
    iexp_scalar(x, valid, j0, n, mx, p, e);
  }
  normalize_row(e, n, any, out, true);
}

// ---- GELU ----------------------------------------------------------------------------------

IGeluParams igelu_params(float s_in, int32_t z_in, float s_out, int32_t z_out, int32_t qmin, int32_t qmax) {
  check_scale(s_in, "GELU input");
  check_scale(s_out, "GELU output");
  if (qmin > qmax || qmin < -(1 << 15) || qmax >= (1 << 16))
    fail("integer GELU: expected an output code range inside 16 bits, found [", qmin, ", ", qmax, "]");
  IGeluParams p;
  p.to_q12 = quantize_multiplier(double(s_in) / std::sqrt(2.0) * 4096.0);
  p.out = quantize_multiplier(double(s_in) / double(s_out) / 256.0);
  p.z_in = z_in, p.z_out = z_out, p.qmin = qmin, p.qmax = qmax;
  return p;
}

int32_t igelu(int32_t code, const IGeluParams& p) {
  const int64_t x = int64_t(code) - p.z_in;  // |x| < 2^22 (8- and 16-bit codes)
  FINCH_DCHECK(x > -(int64_t(1) << 22) && x < (int64_t(1) << 22));
  const int64_t u = rounding_shift(x * p.to_q12.multiplier, p.to_q12.total_shift());  // x/√2 in Q12
  const int64_t c = std::min<int64_t>(u < 0 ? -u : u, kErfBQ12) - kErfBQ12;
  const int64_t erf_mag = kOneQ24 - rounding_shift(c * c * kErfAQ16, 16);  // |erf| in Q24
  const int64_t one_plus_erf = kOneQ24 + (u > 0 ? erf_mag : u < 0 ? -erf_mag : 0);
  // gelu = x·(1 + erf)/2, kept with 8 extra bits (< 2^30), then to the output scale.
  const int64_t g = rounding_shift(x * one_plus_erf, 25 - 8);
  const int64_t y = p.z_out + rounding_shift(g * p.out.multiplier, p.out.total_shift());
  return int32_t(std::clamp<int64_t>(y, p.qmin, p.qmax));
}

std::vector<int8_t> igelu_table_i8(const IGeluParams& p, bool input_u8) {
  if (p.qmin < -128 || p.qmax > 127) fail("integer GELU table: expected i8 output codes, found [", p.qmin, ", ", p.qmax, "]");
  std::vector<int8_t> t(256);
  for (int i = 0; i < 256; ++i) t[size_t(i)] = int8_t(igelu(input_u8 ? i : i - 128, p));
  return t;
}

std::vector<int8_t> gelu_table_i8(float s_in, int32_t z_in, bool input_u8, float s_out, int32_t z_out, int32_t qmin,
                                  int32_t qmax) {
  check_scale(s_in, "GELU input");
  check_scale(s_out, "GELU output");
  if (qmin < -128 || qmax > 127 || qmin > qmax) fail("GELU table: expected i8 output codes, found [", qmin, ", ", qmax, "]");
  std::vector<int8_t> t(256);
  for (int i = 0; i < 256; ++i) {
    const float x = float((input_u8 ? i : i - 128) - z_in) * s_in;
    const float g = 0.5f * x * (1.0f + std::erf(x * float(M_SQRT1_2)));  // as ops::gelu
    const float q = std::nearbyint(g / s_out) + float(z_out);
    t[size_t(i)] = int8_t(std::clamp(q, float(qmin), float(qmax)));
  }
  return t;
}

// ---- LayerNorm -----------------------------------------------------------------------------

uint64_t isqrt_u64(uint64_t v) {
  if (v < 2) return v;
  // Start above the root (2^ceil(bits/2)); Newton's x ← (x + v/x)/2 then decreases to floor(√v).
  uint64_t x = uint64_t(1) << ((bit_length(v) + 1) / 2);
  for (;;) {
    const uint64_t y = (x + v / x) / 2;
    if (y >= x) return x;
    x = y;
  }
}

ILayerNormParams ilayernorm_params(float s_in, double eps, int64_t n) {
  check_scale(s_in, "LayerNorm");
  if (n < 1 || n > 8192) fail("integer LayerNorm: expected a row length in 1..8192, found ", n);
  if (!(eps >= 0) || !std::isfinite(eps)) fail("integer LayerNorm: expected eps >= 0, found ", eps);
  ILayerNormParams p;
  const double e = double(n) * double(n) * eps / (double(s_in) * double(s_in));
  p.eps_q = e >= 4e18 ? int64_t(4e18) : int64_t(std::llround(e));
  return p;
}

void ilayernorm_row(const int32_t* x, int64_t n, const ILayerNormParams& p, int32_t* out_q12) {
  int64_t s = 0, s2 = 0;
  for (int64_t i = 0; i < n; ++i) {
    FINCH_DCHECK(x[i] > -(1 << 16) && x[i] < (1 << 16));
    s += x[i], s2 += int64_t(x[i]) * x[i];
  }
  // V = n·Σx² − (Σx)² = Σ_i (n·x_i − S)² / n: exact (< 2^58 for |x| < 2^16, n <= 8192).
  const uint64_t v = uint64_t(n * s2 - s * s) + uint64_t(p.eps_q);
  if (v == 0) {
    std::fill(out_q12, out_q12 + n, 0);
    return;
  }
  // r = √(V·4^q) with >= 20 significant bits; the result's relative error is then < 2^-19.
  const int q = std::max(0, (41 - bit_length(v)) / 2);
  const int64_t r = int64_t(isqrt_u64(v << (2 * q)));
  for (int64_t i = 0; i < n; ++i) {
    const int64_t num = (n * int64_t(x[i]) - s) * (int64_t(1) << (12 + q));  // < 2^48
    // round(num / r), half toward +infinity, with floor division for either sign.
    const int64_t a = 2 * num + r, d = 2 * r;
    out_q12[i] = int32_t(a >= 0 ? a / d : -((-a + d - 1) / d));
  }
}

// ---- attention reference ---------------------------------------------------------------------

namespace reference {

void qs8_attention_scores(const int8_t* q, const int8_t* k, const QAttentionShape& sh, int64_t b, int64_t h,
                          int32_t* acc) {
  const int64_t S = sh.S, H = sh.H, HD = sh.H / sh.NH;
  for (int64_t i = 0; i < S; ++i)
    for (int64_t j = 0; j < S; ++j) {
      int32_t a = 0;
      for (int64_t d = 0; d < HD; ++d) a += int32_t(q[(b * S + i) * H + h * HD + d]) * k[(b * S + j) * H + h * HD + d];
      acc[i * S + j] = a;
    }
}

void qs8_attention_pv(const uint8_t* p, const int8_t* v, const QAttentionShape& sh, int64_t b, int64_t h,
                      int32_t* acc) {
  const int64_t S = sh.S, H = sh.H, HD = sh.H / sh.NH;
  for (int64_t i = 0; i < S; ++i)
    for (int64_t d = 0; d < HD; ++d) {
      int32_t a = 0;
      for (int64_t j = 0; j < S; ++j) a += int32_t(p[i * S + j]) * v[(b * S + j) * H + h * HD + d];
      acc[i * HD + d] = a;
    }
}

void qs8_attention(const int8_t* q, const int8_t* k, const int8_t* v, const uint8_t* mask, const QAttentionShape& sh,
                   const QAttentionQuant& qu, int8_t* out) {
  const int64_t S = sh.S, H = sh.H, HD = sh.H / sh.NH;
  const ISoftmaxParams sp = isoftmax_params(float(double(qu.s_q) * double(qu.s_k) / std::sqrt(double(HD))));
  const FixedPointMultiplier m = quantize_multiplier(double(qu.s_v) / 255.0 / double(qu.s_out));
  std::vector<int32_t> scores(size_t(S * S)), acc(size_t(S * HD));
  std::vector<uint8_t> pr(size_t(S * S));
  for (int64_t b = 0; b < sh.B; ++b)
    for (int64_t h = 0; h < sh.NH; ++h) {
      qs8_attention_scores(q, k, sh, b, h, scores.data());
      for (int64_t i = 0; i < S; ++i)
        reference::isoftmax_row(scores.data() + i * S, mask ? mask + b * S : nullptr, S, sp, pr.data() + i * S);
      qs8_attention_pv(pr.data(), v, sh, b, h, acc.data());
      for (int64_t i = 0; i < S; ++i)
        for (int64_t d = 0; d < HD; ++d)
          out[(b * S + i) * H + h * HD + d] = int8_t(requantize(acc[i * HD + d], m, qu.z_out, qu.qmin, qu.qmax));
    }
}

}  // namespace reference

}  // namespace finch::quant
