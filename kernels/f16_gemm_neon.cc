// The ARMv8.2 half-precision micro-kernel of the fp16 GEMM (f16_gemm.h), plain arm_neon.h
// intrinsics: Highway 1.0.3's NEON target has no f16 arithmetic.
//
// Tile: 8 rows of W × 8 columns of X, eight float16x8_t accumulators (one per row, lanes =
// columns; with 1–4 rows, 16–32 columns, so that there are still 4–8 independent accumulators). Per block of eight k: one 8-wide load from each W row (W is the weight as stored,
// [M][K] row-major, so the eight k of a row are contiguous: no packed copy is needed), eight
// loads of X (one per k), and 64 FMAs by lane (vfmaq_laneq_f16: acc[r] += X[k0+j] · W[r][k0+j]).
// The K % 8 tail takes one W scalar per row (vfmaq_n_f16). Accumulation is f16 (FMLA rounds once
// per multiply-add): the error bound grows like K·2^-11·Σ|w·x|, which the tests check.
//
// Functions with the target attribute are compiled for ARMv8.2-A+FP16 (GCC 12's arm_neon.h
// declares the f16 vector arithmetic under that pragma); the rest of the build stays ARMv8.0 and
// f16_gemm.cc calls in only when finch::cpu_has_arm_fp16() holds, so a Pi 4 never executes them.
#include "kernels/f16_gemm.h"

#if defined(__aarch64__)
#include <arm_neon.h>

#include <algorithm>

namespace finch::quant::kernels::f16k::neon_fp16 {
namespace {

#define FINCH_FP16 __attribute__((target("arch=armv8.2-a+fp16")))

static_assert(kMR == 8 && kNR == 8, "the micro-kernel below is written for 8×8 tiles");

// acc[r·V + v] += X[k0 + J][8v .. 8v+8) · W[r][k0 + J] for rows r < R, vectors v < V (lane J of
// wv[r]).
template <int R, int V, int J>
FINCH_FP16 inline __attribute__((always_inline)) void step(float16x8_t* acc, const float16x8_t* wv,
                                                           const float16_t* x, int64_t ldx) {
  for (int v = 0; v < V; ++v) {
    const float16x8_t xv = vld1q_f16(x + J * ldx + 8 * v);
    for (int r = 0; r < R; ++r) acc[r * V + v] = vfmaq_laneq_f16(acc[r * V + v], xv, wv[r], J);
  }
}

// Rows [0, R) × 8·V columns starting at x: out[r·V + v] = Σ_k W[r][k] · X[k][8v .. 8v+8).
template <int R, int V>
FINCH_FP16 void tile(const float16_t* w, int64_t ldw, const float16_t* x, int64_t ldx, int64_t K,
                     float16x8_t* out) {
  float16x8_t acc[R * V];
  for (int i = 0; i < R * V; ++i) acc[i] = vdupq_n_f16(0);
  int64_t k = 0;
  for (; k + 8 <= K; k += 8, x += 8 * ldx) {
    float16x8_t wv[R];
    for (int r = 0; r < R; ++r) wv[r] = vld1q_f16(w + r * ldw + k);
    step<R, V, 0>(acc, wv, x, ldx), step<R, V, 1>(acc, wv, x, ldx), step<R, V, 2>(acc, wv, x, ldx);
    step<R, V, 3>(acc, wv, x, ldx), step<R, V, 4>(acc, wv, x, ldx), step<R, V, 5>(acc, wv, x, ldx);
    step<R, V, 6>(acc, wv, x, ldx), step<R, V, 7>(acc, wv, x, ldx);
  }
  for (; k < K; ++k, x += ldx)
    for (int v = 0; v < V; ++v) {
      const float16x8_t xv = vld1q_f16(x + 8 * v);
      for (int r = 0; r < R; ++r) acc[r * V + v] = vfmaq_n_f16(acc[r * V + v], xv, w[r * ldw + k]);
    }
  for (int i = 0; i < R * V; ++i) out[i] = acc[i];
}

// Widens row r's accumulator to f32, adds the bias, applies the activation, stores `count`
// columns (contiguous when col_stride is 1 and the tile is full).
FINCH_FP16 void store_row(float16x8_t acc, float b, Act act, float* y, int64_t count, int64_t col_stride) {
  float32x4_t lo = vaddq_f32(vcvt_f32_f16(vget_low_f16(acc)), vdupq_n_f32(b));
  float32x4_t hi = vaddq_f32(vcvt_high_f32_f16(acc), vdupq_n_f32(b));
  if (act != Act::none) {
    lo = vmaxq_f32(lo, vdupq_n_f32(0.0f)), hi = vmaxq_f32(hi, vdupq_n_f32(0.0f));
    if (act == Act::relu6) lo = vminq_f32(lo, vdupq_n_f32(6.0f)), hi = vminq_f32(hi, vdupq_n_f32(6.0f));
  }
  if (count == kNR && col_stride == 1) {
    vst1q_f32(y, lo), vst1q_f32(y + 4, hi);
    return;
  }
  float v[kNR];
  vst1q_f32(v, lo), vst1q_f32(v + 4, hi);
  for (int64_t t = 0; t < count; ++t) y[t * col_stride] = v[t];
}

// Stores the R × `vectors` accumulators of the tile at column p0 (acc[r·vectors + v]).
template <int R>
FINCH_FP16 void store_tile(const float16x8_t* acc, int vectors, int64_t p0, int64_t P, const float* bias, Act act,
                           float* y, int64_t row_stride, int64_t col_stride) {
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < vectors; ++v) {
      const int64_t p = p0 + kNR * v;
      store_row(acc[r * vectors + v], bias ? bias[r] : 0.0f, act, y + r * row_stride + p * col_stride,
                std::min(kNR, P - p), col_stride);
    }
}

// Tiles of R rows × 8·V columns, then 8-column tiles for the rest. With few rows (a depthwise
// conv has one per group) a single accumulator would make every FMA wait for the previous one;
// V independent column vectors keep the FMA pipes busy. Each lane's sum is the same k-ordered
// chain whatever V is, so the results do not depend on the tiling.
template <int R>
FINCH_FP16 void rows(const float16_t* w, int64_t ldw, const float16_t* x, int64_t ldx, int64_t K, int64_t P,
                     const float* bias, Act act, float* y, int64_t row_stride, int64_t col_stride) {
  constexpr int V = R <= 2 ? 4 : R <= 4 ? 2 : 1;
  const int64_t readable = (P + kNR - 1) / kNR * kNR;  // X's rows are readable this far
  float16x8_t acc[R * V];
  int64_t p0 = 0;
  if constexpr (V > 1)
    for (; p0 + kNR * V <= readable; p0 += kNR * V) {
      tile<R, V>(w, ldw, x + p0, ldx, K, acc);
      store_tile<R>(acc, V, p0, P, bias, act, y, row_stride, col_stride);
    }
  for (; p0 < P; p0 += kNR) {
    tile<R, 1>(w, ldw, x + p0, ldx, K, acc);
    store_tile<R>(acc, 1, p0, P, bias, act, y, row_stride, col_stride);
  }
}

}  // namespace

void f16_gemm_8x8__neonfp16arith(const f16* w16, int64_t ldw, const f16* x16, int64_t ldx, int64_t M,
                                 int64_t K, int64_t P, const float* bias, Act act, float* y, int64_t rs,
                                 int64_t cs) {
  const auto* w = reinterpret_cast<const float16_t*>(w16);
  const auto* x = reinterpret_cast<const float16_t*>(x16);
  switch (M) {
    case 8: return rows<8>(w, ldw, x, ldx, K, P, bias, act, y, rs, cs);
    case 7: return rows<7>(w, ldw, x, ldx, K, P, bias, act, y, rs, cs);
    case 6: return rows<6>(w, ldw, x, ldx, K, P, bias, act, y, rs, cs);
    case 5: return rows<5>(w, ldw, x, ldx, K, P, bias, act, y, rs, cs);
    case 4: return rows<4>(w, ldw, x, ldx, K, P, bias, act, y, rs, cs);
    case 3: return rows<3>(w, ldw, x, ldx, K, P, bias, act, y, rs, cs);
    case 2: return rows<2>(w, ldw, x, ldx, K, P, bias, act, y, rs, cs);
    case 1: return rows<1>(w, ldw, x, ldx, K, P, bias, act, y, rs, cs);
    default: return;  // M == 0
  }
}

}  // namespace finch::quant::kernels::f16k::neon_fp16

#endif  // __aarch64__
