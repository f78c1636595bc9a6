// Winograd F(2×2, 3×3) pieces of the fp32 conv (f32_conv.h) for 3×3, stride 1, dilation 1,
// ungrouped convs (Lavin & Gray 2015): each 2×2 block of outputs ("tile") is A^T [(G g G^T) ⊙
// (B^T d B)] A over its 4×4 input patch d, so the 36 multiply-adds per tile and channel pair
// become 16, done as 16 GEMMs (one per point ξ of the 4×4 transform) on the packed 8×NR tiles
// of f32_gemm.h with the tiles as the pixels. Transforms are vectorized across consecutive tiles
// of one tile row (a Run).
//
//   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]   G = [1 0 0; ½ ½ ½; ½ -½ ½; 0 0 1]
//   A^T = [1 1 1 0; 0 1 -1 -1]
#pragma once

#include <cstdint>

#include "kernels/f32_gemm.h"

namespace finch::quant::kernels::f32k {

// Consecutive tiles tx0 … tx0 + len − 1 of tile row ty, at columns [j0, j0 + len) of a chunk.
struct WinoRun {
  int64_t in;   // 2ty·row + 2tx0: the first patch's origin in the padded input
  int64_t out;  // 2ty·OW + 2tx0: the first output pixel
  int32_t j0, len;
  // Output rows of the tiles, output columns of the run's last tile: 2, or 1 at an odd bottom or
  // right edge.
  int32_t rows, last_cols;
};

// The 16 transformed weights of g [OC][C][3][3]: u[ξ][oc][c] (ξ = 4·i + j of G g G^T).
void f32_wino_weights(const float* g, int64_t OC, int64_t C, float* u);

// v[ξ·xi + c·ldv + j] = (B^T d B)[ξ] of the patch of tile column j, channel c: xp holds channel
// c at c·plane, padded row r at r·row (columns in order; a run's patches start at in + 2·tile).
// Whole vectors move per run: ldv must leave a vector of slack past the chunk's last column, and
// xp must be readable two vectors past a run's last patch. (xi, the
// distance between transform points, should not be a multiple of 4 KiB: 16 streams that far
// apart fall into one L1 set.)
void f32_wino_input(const float* xp, int64_t plane, int64_t row, int64_t C, const WinoRun* runs, int64_t nruns,
                    float* v, int64_t ldv, int64_t xi);

// y (plane stride P, row stride OW) = act(A^T m A + bias (+ residual)) for output channels
// [0, OC) of the chunk's runs; m[ξ·xi + oc·ldm + j] are the 16 GEMMs' sums. res: null or the
// residual laid out as y.
void f32_wino_output(const float* m, int64_t OC, int64_t ldm, int64_t xi, const WinoRun* runs, int64_t nruns,
                     const float* bias, const float* res, float* y, int64_t P, int64_t OW, Act act);

}  // namespace finch::quant::kernels::f32k
