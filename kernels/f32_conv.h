// fp32 conv2d (any groups, stride, padding, dilation) and linear on finch's own packed-weight
// GEMM (f32_gemm.h): the optimized kernels of the float conv2d/linear nodes of fp32 programs
// (runtime/float_ops.cc prepares them at load; depthwise convs go elsewhere).
//
// Weights and bias are packed once at construction into panels of 8 output channels per group.
// run() then does only arithmetic: a 1×1 stride-1 unpadded conv reads the input planes directly
// as the GEMM's B operand (no copy), a strided one the planes subsampled; any other conv copies
// the input into zero-padded planes whose columns are split by stride phase (padded column pc
// lands in phase pc % sw at pc / sw), where every tap of a row of output pixels is a contiguous
// run. Both copies are made inside the GEMM's thread region, each thread copying into its own
// buffer the rows its tiles read, halo rows included (kernels/own_rows.h). Output rows at least NR pixels wide are cut into tiles of one row, which
// the indirect GEMM reads in place (f32_igemm_8xNR: row (c, tap) of B at c·plane + the tap's
// offset); narrower rows take tiles across rows, each copied into an im2col tile of NR pixels ×
// K rows in a per-thread buffer by vector copies of those runs (the runs of each tile and the
// taps' offsets are computed at construction for the declared input size) — never a
// whole-image im2col. Work is split over (image, group,
// pixel tile, block of channel panels), the pool's cost model (Work::macs_f32) choosing the
// threads, so a tiny layer stays on one thread. 3×3 stride-1 ungrouped convs with at least
// kWinogradMinChannels input and output channels take Winograd F(2×2, 3×3) instead
// (f32_winograd.h: 16 GEMMs of the same tiles over chunks of NR 2×2 output tiles, numbered
// across tile rows so small planes fill the vectors; 2.25× fewer multiply-adds). Each output's
// sums run in a fixed
// order: results do not depend on the thread count. They differ from ops::conv2d (OpenBLAS /
// its own Winograd) by float rounding only.
//
// Shapes: x [N, C, H, W] f32, weight [OC, C/groups, KH, KW] f32, bias [OC] f32 or absent,
// residual (optional) [N, OC, OH, OW] f32 added before the activation; y [N, OC, OH, OW].
// linear: x [..., IN] f32, weight [OUT, IN], bias [OUT] or absent; y [..., OUT].
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "framework/tensor.h"
#include "kernels/f32_gemm.h"
#include "kernels/f32_winograd.h"
#include "ops/conv.h"

namespace finch::quant::kernels {

class F32Conv2d {
 public:
  // H, W: the input size the im2col runs are computed for (a program's declared shape); run()
  // accepts any size, computing them per call for another one.
  F32Conv2d(const Tensor& weight, const Tensor& bias, const ops::Conv2dParams& p, f32k::Act act, int64_t H,
            int64_t W);
  Tensor run(const Tensor& x, const Tensor& residual = Tensor()) const { return run(x, residual, act_); }
  // The same with another activation than the prepared one (after the residual): the runtime's
  // conv + add fusion runs the conv's own kernel with the add's activation.
  Tensor run(const Tensor& x, const Tensor& residual, f32k::Act act) const;
  bool winograd() const { return wino_; }

 private:
  // Where the im2col rows of an H×W input come from (f32_gemm.h's Segment): the padded, phase
  // split plane's geometry, each tap's offset in it, and each tile's runs.
  // Winograd: the padded input as four sub-planes (Lp: their stride), tiles in chunks of NR, the
  // runs of one tile row per chunk (f32_winograd.h).
  struct Geometry {
    int64_t H = -1, W = -1, phases = 1, Lp = 0, row = 0, plane = 0;  // phase length, padded row, padded plane
    int64_t tiles = 0, rows = 0;  // Winograd: 2×2 tiles, rows per sub-plane
    int64_t per_row = 0;          // row tiles: tiles per output row (0: im2col tiles across rows)
    std::vector<int64_t> offs;                                       // row tiles: [Cg·KH·KW] B row offsets
    std::vector<int64_t> taps;                                       // [KH·KW]
    std::vector<f32k::Segment> segs;                                 // every tile's runs, tile by tile
    std::vector<f32k::WinoRun> wruns;                                // Winograd: every chunk's runs
    std::vector<int64_t> first;                                      // [tiles + 1]: tile i's runs start here
  };
  Geometry geometry(int64_t H, int64_t W) const;
  Geometry wino_geometry(int64_t H, int64_t W) const;
  void pad_rows(const float* x, int64_t H, int64_t W, const Geometry& geo, int64_t r0, int64_t r1, float* xp) const;
  void run_winograd(const float* x, int64_t N, int64_t H, int64_t W, const Geometry& geo, int64_t OH, int64_t OW,
                    const float* res, float* y, f32k::Act act) const;

  std::vector<float> wp_;    // [G][panels][K][8] (empty on the Winograd path)
  std::vector<float> bias_;  // [G][panels·8]
  Geometry geo_;             // for the declared input size (unused by the direct 1×1 path)
  ops::Conv2dParams p_;
  f32k::Act act_;
  int64_t OC_, Cg_, KH_, KW_, NR_;
  bool direct_;  // 1×1, stride 1, no padding: B = the input planes
  bool strided1x1_;  // 1×1, a stride > 1, no padding: B = the input planes subsampled
  bool wino_;    // Winograd F(2×2, 3×3): wu_ holds the transformed weights
  std::vector<float> wu_;  // [16][panels][C][8]
};

// Input and output channels from which a 3×3 stride-1 conv takes Winograd: below, the 16 GEMMs'
// reduction (K = C) is too short to pay for the transforms.
inline constexpr int64_t kWinogradMinChannels = 8;

class F32Linear {
 public:
  F32Linear(const Tensor& weight, const Tensor& bias, f32k::Act act);
  // Up to 3 rows: one GEMV per row over the packed panels (threads split the panels); from 4 rows
  // the GEMM over tiles of NR rows. The two sum in different orders, so a row's result can differ
  // by rounding between a batch of 1–3 and a larger one; from 4 rows on, a row's result is the
  // same bits whatever the row count.
  Tensor run(const Tensor& x) const;

 private:
  std::vector<float> wp_;    // [panels][IN][8]
  std::vector<float> bias_;  // [panels·8]
  f32k::Act act_;
  int64_t OUT_, IN_;
};

}  // namespace finch::quant::kernels
