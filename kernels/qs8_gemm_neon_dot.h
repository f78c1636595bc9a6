// The ARMv8.2 dot-product kernels of the int8 GEMM (qs8_gemm.h) for aarch64 CPUs that have
// SDOT/UDOT (a Raspberry Pi 5's Cortex-A76, not a Pi 4's A72). The NEON target of
// qs8_gemm_hwy.cc hands over to them when finch::cpu_has_arm_dotprod() holds; everything else in
// the build stays ARMv8.0. Same contracts as qu8s8_gemm_tile / qu8s8_dot_rows (exact, the same
// codes bit for bit). Defined on aarch64 only; internal to kernels.
#pragma once

#include <cstdint>

#include "kernels/qs8_gemm.h"

namespace finch::quant::kernels::qs8::neon_dot {

// Pixels per activation tile of the sdot micro-kernel (8 output channels × 8 pixels: 16
// accumulators of 32 NEON registers). The NEON target's portable tile is 4 pixels, so T says
// which kernel a tile was packed for.
inline constexpr int64_t kTilePixels = 8;

// qu8s8_gemm_tile with T == kTilePixels: x XOR 0x80 (x − 128, i8) times w by vdotq_laneq_s32,
// and q[m].offset_s8 (= offset + 128·Σw) in place of q[m].offset.
void qs8_gemm_8x8c4__neondot(const int8_t* w, const uint8_t* x, int64_t K4, int64_t T, int64_t rows, int64_t count,
                         const RowQuant* q, const OutQuant& o, uint8_t* out, int64_t row_stride, int64_t col_stride);

// qu8s8_dot_rows by UDOT: Σ x·w = Σ x·(w XOR 0x80) − 128·Σx, both sums of u8 × u8.
void qu8s8_dot_rows__neondot(const uint8_t* x, const int8_t* w, int64_t M, int64_t Kp, int32_t* acc);

}  // namespace finch::quant::kernels::qs8::neon_dot
