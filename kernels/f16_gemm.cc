// The fp16 GEMM's dispatch and its portable micro-kernel (f16_gemm.h).
#include "kernels/f16_gemm.h"

#include <algorithm>
#include <cmath>

#include "framework/cpu_features.h"

namespace finch::quant::kernels::f16k {
namespace {

float round_f16(float v) { return f16_to_f32(f32_to_f16(v)); }

// The NEON kernel's arithmetic, one lane at a time: acc = f16(w·x + acc) per k with one rounding
// (fmaf then the conversion to f16 rounds twice, f32 then f16; a tie can differ from the fused
// f16 FMA by one f16 ulp, well inside the error bound the tests allow either kernel).
void f16_gemm_8x8__scalar(const f16* w, int64_t ldw, const f16* x, int64_t ldx, int64_t M, int64_t K,
                          int64_t P, const float* bias, Act act, float* y, int64_t row_stride, int64_t col_stride) {
  for (int64_t p0 = 0; p0 < P; p0 += kNR) {
    const int64_t count = std::min(kNR, P - p0);
    for (int64_t m = 0; m < M; ++m) {
      float acc[kNR] = {};
      for (int64_t k = 0; k < K; ++k) {
        const float wv = f16_to_f32(w[m * ldw + k]);
        for (int64_t t = 0; t < count; ++t)
          acc[t] = round_f16(std::fma(wv, f16_to_f32(x[k * ldx + p0 + t]), acc[t]));
      }
      for (int64_t t = 0; t < count; ++t) {
        float v = acc[t] + (bias ? bias[m] : 0.0f);
        if (act != Act::none) v = std::max(v, 0.0f);
        if (act == Act::relu6) v = std::min(v, 6.0f);
        y[m * row_stride + (p0 + t) * col_stride] = v;
      }
    }
  }
}

}  // namespace

void f16_gemm_8x8(const f16* w, int64_t ldw, const f16* x, int64_t ldx, int64_t M, int64_t K, int64_t P,
                  const float* bias, Act act, float* y, int64_t row_stride, int64_t col_stride) {
#if defined(__aarch64__)
  if (cpu_has_arm_fp16())
    return neon_fp16::f16_gemm_8x8__neonfp16arith(w, ldw, x, ldx, M, K, P, bias, act, y, row_stride, col_stride);
#endif
  f16_gemm_8x8__scalar(w, ldw, x, ldx, M, K, P, bias, act, y, row_stride, col_stride);
}

const char* f16_gemm_kernel_name() { return cpu_has_arm_fp16() ? "neonfp16" : "portable"; }

}  // namespace finch::quant::kernels::f16k
