// The fp32 GEMM micro-kernels of the runtime's own conv2d/linear (f32_conv.h): weights packed
// once into panels of 8 output channels, pixels along the vector lanes, a fused epilogue.
//
// Shapes: W [M][K] packed as panels [ceil(M/8)][K][8] (rows past M zero), B [K][ldb] row-major
// (a 1×1 conv's input planes as they are, or an im2col tile), C [M][ldy] with row m at y + m·ldy.
// The epilogue adds the per-row bias, then an optional residual (same layout as C, row stride
// ldr: the fused `add` of a conv + add), then clamps (none / relu / relu6).
//
// Tiles: f32_gemm_8xNR computes 8 rows × NR pixels per step, NR = f32_gemm_tile_cols() of the
// dispatched target — 32 on AVX-512 (2 vectors × 16 lanes: 16 accumulators of the 32 registers),
// 8 on NEON (2 × 4), 8 on AVX2 (1 × 8: 8 accumulators of its 16 registers), 4 on SSE4/EMU128.
// A partial tile takes whole vectors on a one-vector tile and its last few columns (at most 4)
// one by one with the panel's 8 rows along the lanes. Every output's sum is the one fma chain
// k = 0, 1, …, K−1 from zero, in a vector tile and a single column alike, so a result depends
// neither on the thread count nor on how many columns the GEMM has (or where its tiles end).
#pragma once

#include <cstdint>

#include "kernels/fused_act.h"

namespace finch::quant::kernels::f32k {

using Act = FusedAct;

// Output rows per packed panel.
inline constexpr int64_t kMR = 8;

// Columns of one micro-tile on the target FINCH_DISPATCH picks now (a multiple of its lanes).
int64_t f32_gemm_tile_cols();
// Its lanes: columns of one vector (NR is a multiple).
int64_t f32_gemm_vector_cols();

// Rows [0, M) (all panels of wp, the last possibly partial) × columns [0, n), n <= NR. Every row
// of B must be readable for NR columns (lanes past n are computed and dropped). bias: the
// panel-padded bias (ceil(M/8)·8 floats) or null for none. res: null, or the residual with row
// stride ldr.
void f32_gemm_8xNR(const float* wp, int64_t M, int64_t K, const float* b, int64_t ldb, int64_t n, const float* bias,
                   const float* res, int64_t ldr, float* y, int64_t ldy, Act act);

// Whole tiles: columns [0, n), n a multiple of NR, each panel of 8 output rows over all of them
// before the next panel. The same outputs, bit for bit, as f32_gemm_8xNR tile by tile; what
// changes is the order of the stores: 8 output rows at a time, n·4 contiguous bytes each, where
// tile by tile every tile stored into all M rows. With few input channels (a 1×1 conv's K = 16
// at 112², MobileNet v1) the tile loop kept M + K streams open, each of two cache lines per
// tile, and waited on them (docs/fp32-kernels.md).
void f32_gemm_8xNR_block(const float* wp, int64_t M, int64_t K, const float* b, int64_t ldb, int64_t n,
                         const float* bias, const float* res, int64_t ldr, float* y, int64_t ldy, Act act);

// The same with row k of B at b + offs[k] (each readable for NR columns): the indirect GEMM of a
// conv, row k = (channel, tap) read straight from the padded input at that tap's offset, for
// tiles of pixels that lie on one output row. Every output's sum is the same fma chain as
// f32_gemm_8xNR's over the im2col copy of those rows, so the two give the same bits.
void f32_igemm_8xNR(const float* wp, int64_t M, int64_t K, const float* b, const int64_t* offs, int64_t n,
                    const float* bias, const float* res, int64_t ldr, float* y, int64_t ldy, Act act);

// y[m] = act(Σ_k W[m][k]·x[k] + bias[m]) for m in [m0, m1) (multiples of 8 except m1 = M): the
// batch-1 linear, one packed panel at a time with the 8 rows along the lanes.
void f32_gemv(const float* wp, int64_t M, int64_t K, const float* x, const float* bias, float* y, Act act,
              int64_t m0, int64_t m1);

// One run of consecutive output pixels of a tile that lie on one output row: tile columns
// [j0, j0 + len) read len consecutive floats from base (+ the channel's and the tap's offsets) in
// the padded, column-phase-split input of f32_conv.cc.
struct Segment {
  int64_t base;
  int32_t j0, len;
};

// The im2col tile of a convolution, copied run by run: for each input channel c < C and tap
// t < T, row c·T + t of dst (NR floats, NR = f32_gemm_tile_cols()) gets, for every segment,
// dst[(c·T + t)·NR + j0 + i] = xp[c·plane + taps[t] + base + i], i < len; columns [cols, NR) are
// zeroed. Each run moves NR floats whatever its length: xp must be readable NR floats past any
// run's start and dst writable NR floats past its K·NR (what lands past a run is overwritten by
// the next run or row, or dropped).
void f32_im2col_tile(const float* xp, int64_t plane, int64_t C, const int64_t* taps, int64_t T, const Segment* segs,
                     int64_t nseg, int64_t cols, float* dst);

// even[j] = src[2j], odd[j] = src[2j + 1] for the n floats of src (a stride-2 conv's input row
// split into its two column phases).
void f32_split_pairs(const float* src, int64_t n, float* even, float* odd);

// Packs W [M][K] (row stride ldw) into panels [ceil(M/8)][K][8], zero rows past M.
void f32_pack_panels(const float* w, int64_t ldw, int64_t M, int64_t K, float* out);

}  // namespace finch::quant::kernels::f32k
