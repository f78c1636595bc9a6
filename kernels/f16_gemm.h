// The fp16 GEMM of the native fp16 conv2d/linear (f16_conv.h): y = act(W·X + bias) with f16
// operands and f16 accumulation, widened to f32 on the way out. On aarch64 CPUs with ARMv8.2
// half-precision arithmetic (finch::cpu_has_arm_fp16(): a Pi 5) it runs the NEON micro-kernel of
// f16_gemm_neon.cc; elsewhere a portable micro-kernel with the same tiling that rounds every
// multiply-add to f16 (so the operator's im2col, tiling and threading are tested on any machine;
// the runtime only uses fp16 compute where the CPU has it).
//
// Shapes: W [M][K] row-major (row stride ldw: an OIHW conv weight or an [OUT, IN] linear weight
// as stored, no repacking), X [K][P] row-major (row stride ldx, a multiple of 8, every row
// readable up to round_up(P, 8): lanes past P are computed and dropped), y element (m, p) at
// y[m·row_stride + p·col_stride].
#pragma once

#include <cstdint>

#include "framework/dtype.h"
#include "kernels/fused_act.h"

namespace finch::quant::kernels::f16k {

using Act = FusedAct;

// Output rows per micro-kernel call and pixels (columns of X) per vector: an 8×8 tile of eight
// float16x8_t accumulators (the NEON kernel widens it to 16–32 columns when M <= 4).
inline constexpr int64_t kMR = 8, kNR = 8;

// One call covers rows [0, M) (M <= kMR) and columns [0, P) (any P) of the block it is given.
// bias: M floats or null. Every output element's sum runs k = 0, 1, …, K−1 in order (blocks of
// eight taken lane by lane), whatever M, P and the block's position: results do not depend on
// how a caller splits the work.
void f16_gemm_8x8(const f16* w, int64_t ldw, const f16* x, int64_t ldx, int64_t M, int64_t K, int64_t P,
                  const float* bias, Act act, float* y, int64_t row_stride, int64_t col_stride);

// "neonfp16" (ARMv8.2 FP16 NEON) or "portable": what f16_gemm_8x8 runs on this CPU now.
const char* f16_gemm_kernel_name();

#if defined(__aarch64__)
namespace neon_fp16 {
// The ARMv8.2 micro-kernel (f16_gemm_neon.cc); call only when cpu_has_arm_fp16().
void f16_gemm_8x8__neonfp16arith(const f16* w, int64_t ldw, const f16* x, int64_t ldx, int64_t M,
                                 int64_t K, int64_t P, const float* bias, Act act, float* y,
                                 int64_t row_stride, int64_t col_stride);
}  // namespace neon_fp16
#endif

}  // namespace finch::quant::kernels::f16k
