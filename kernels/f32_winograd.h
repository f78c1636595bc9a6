// Winograd F(2×2, 3×3) pieces of the fp32 conv (f32_conv.h) for 3×3, stride 1, dilation 1,
// ungrouped convs (Lavin & Gray 2015): each 2×2 block of outputs ("tile") is A^T [(G g G^T) ⊙
// (B^T d B)] A over its 4×4 input patch d, so the 36 multiply-adds per tile and channel pair
// become 16, done as 16 GEMMs (one per point ξ of the 4×4 transform) on the packed 8×NR tiles
// of f32_gemm.h with the tiles as the pixels.
//
//   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]   G = [1 0 0; ½ ½ ½; ½ -½ ½; 0 0 1]
//   A^T = [1 1 1 0; 0 1 -1 -1]
//
// The tile layout: the transforms are vectorized across tiles, and a tile row of a small plane is
// short (7×7 outputs: 4 tiles, a quarter of a 16-lane vector). So the tiles are numbered
// j = ty·TW + tx across tile rows, and the padded input is stored as four sub-planes with row
// pitch R = 2TW: padded columns [0, R) and [2, R + 2), each with its rows split by parity
// (padded row r at row r / 2 of sub-plane r % 2, or 2 + r % 2). Patch row a of tile j then
// starts at column 2j of row a / 2 in two of them, for every j: one vector covers consecutive
// tiles across tile rows, and a 7×7 plane's 16 tiles take one vector instead of four
// quarter-full ones.
#pragma once

#include <cstdint>

#include "kernels/f32_gemm.h"

namespace finch::quant::kernels::f32k {

// The tiles of one tile row inside a chunk: chunk columns [j0, j0 + len) are tiles
// tx0 … tx0 + len − 1 of tile row ty.
struct WinoRun {
  int64_t out;  // 2ty·OW + 2tx0: the first output pixel
  int32_t j0, len;
  // Output rows of the tiles, output columns of the run's last tile: 2, or 1 at an odd bottom or
  // right edge.
  int32_t rows, last_cols;
};

// The 16 transformed weights of g [OC][C][3][3]: u[ξ][oc][c] (ξ = 4·i + j of G g G^T).
void f32_wino_weights(const float* g, int64_t OC, int64_t C, float* u);

// One channel x [H][W] (padding ph, pw) into its four sub-planes at dst (stride Lp, rows rows,
// pitch R), borders zeroed; writes up to one vector past each sub-plane's rows (its slack).
void f32_wino_pad(const float* x, int64_t H, int64_t W, int64_t ph, int64_t pw, int64_t R, int64_t rows, int64_t Lp,
                  float* dst);

// v[ξ·xi + c·ldv + j] = (B^T d B)[ξ] of tile j0 + j, channel c, for j < cols rounded up to
// whole vectors: xp holds channel c at c·plane, its four sub-planes PS apart, rows R apart (the
// layout above), each readable two vectors past its tile rows.
// (xi, the distance between transform points, should not be a multiple of 4 KiB: 16 streams
// that far apart fall into one L1 set.)
void f32_wino_input(const float* xp, int64_t plane, int64_t PS, int64_t R, int64_t C, int64_t j0, int64_t cols,
                    float* v, int64_t ldv, int64_t xi);

// y (plane stride P, row stride OW) = act(A^T m A + bias (+ residual)) for output channels
// [0, OC) of one chunk of cols tiles; m[ξ·xi + oc·ldm + j] are the 16 GEMMs' sums
// (readable for cols rounded up to whole vectors), runs the chunk's real tiles in order. res:
// null or the residual laid out as y. Nothing outside the runs' outputs is written.
void f32_wino_output(const float* m, int64_t OC, int64_t ldm, int64_t xi, int64_t cols, const WinoRun* runs,
                     int64_t nruns, const float* bias, const float* res, float* y, int64_t P, int64_t OW, Act act);

}  // namespace finch::quant::kernels::f32k
