// The ARMv8.2 half-precision micro-kernel of the fp16 GEMM (f16_gemm.h), plain arm_neon.h
// intrinsics: Highway 1.0.3's NEON target has no f16 arithmetic.
//
// Tile: 8 rows of W × 8 columns of X, eight float16x8_t accumulators (one per row, lanes =
// columns). Per block of eight k: one 8-wide load from each W row (W is the weight as stored,
// [M][K] row-major, so the eight k of a row are contiguous: no packed copy is needed), eight
// loads of X (one per k), and 64 FMAs by lane (vfmaq_laneq_f16: acc[r] += X[k0+j] · W[r][k0+j]).
// The K % 8 tail takes one W scalar per row (vfmaq_n_f16). Accumulation is f16 (FMLA rounds once
// per multiply-add): the error bound grows like K·2^-11·Σ|w·x|, which the tests check.
//
// Functions with the target attribute are compiled for ARMv8.2-A+FP16 (GCC 12's arm_neon.h
// declares the f16 vector arithmetic under that pragma); the rest of the build stays ARMv8.0 and
// f16_gemm.cc calls in only when finch::cpu_has_arm_fp16() holds, so a Pi 4 never executes them.
#include "quant/kernels/f16_gemm.h"

#if defined(__aarch64__)
#include <arm_neon.h>

#include <algorithm>

namespace finch::quant::kernels::f16k::neon_fp16 {
namespace {

#define FINCH_FP16 __attribute__((target("arch=armv8.2-a+fp16")))

static_assert(kMR == 8 && kNR == 8, "the micro-kernel below is written for 8×8 tiles");

// acc[r] += X[k0 + J] · W[r][k0 + J] for the rows r < R (lane J of wv[r]).
template <int R, int J>
FINCH_FP16 inline __attribute__((always_inline)) void step(float16x8_t* acc, const float16x8_t* wv,
                                                           const float16_t* x, int64_t ldx) {
  const float16x8_t xv = vld1q_f16(x + J * ldx);
  for (int r = 0; r < R; ++r) acc[r] = vfmaq_laneq_f16(acc[r], xv, wv[r], J);
}

// Rows [0, R) × 8 columns starting at x: acc[r] = Σ_k W[r][k] · X[k][0..8).
template <int R>
FINCH_FP16 void tile(const float16_t* w, int64_t ldw, const float16_t* x, int64_t ldx, int64_t K,
                     float16x8_t* out) {
  float16x8_t acc[R];
  for (int r = 0; r < R; ++r) acc[r] = vdupq_n_f16(0);
  int64_t k = 0;
  for (; k + 8 <= K; k += 8, x += 8 * ldx) {
    float16x8_t wv[R];
    for (int r = 0; r < R; ++r) wv[r] = vld1q_f16(w + r * ldw + k);
    step<R, 0>(acc, wv, x, ldx), step<R, 1>(acc, wv, x, ldx), step<R, 2>(acc, wv, x, ldx);
    step<R, 3>(acc, wv, x, ldx), step<R, 4>(acc, wv, x, ldx), step<R, 5>(acc, wv, x, ldx);
    step<R, 6>(acc, wv, x, ldx), step<R, 7>(acc, wv, x, ldx);
  }
  for (; k < K; ++k, x += ldx) {
    const float16x8_t xv = vld1q_f16(x);
    for (int r = 0; r < R; ++r) acc[r] = vfmaq_n_f16(acc[r], xv, w[r * ldw + k]);
  }
  for (int r = 0; r < R; ++r) out[r] = acc[r];
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

template <int R>
FINCH_FP16 void rows(const float16_t* w, int64_t ldw, const float16_t* x, int64_t ldx, int64_t K, int64_t P,
                     const float* bias, Act act, float* y, int64_t row_stride, int64_t col_stride) {
  float16x8_t acc[R];
  for (int64_t p0 = 0; p0 < P; p0 += kNR) {
    tile<R>(w, ldw, x + p0, ldx, K, acc);
    const int64_t count = std::min(kNR, P - p0);
    for (int r = 0; r < R; ++r)
      store_row(acc[r], bias ? bias[r] : 0.0f, act, y + r * row_stride + p0 * col_stride, count, col_stride);
  }
}

}  // namespace

void f16_gemm_8x8(const f16* w16, int64_t ldw, const f16* x16, int64_t ldx, int64_t M, int64_t K, int64_t P,
                  const float* bias, Act act, float* y, int64_t rs, int64_t cs) {
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
