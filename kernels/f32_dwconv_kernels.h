// Internal: the Highway micro-kernels behind F32DepthwiseConv2d (kernels/f32_dwconv.h). No
// validation here; the operator has checked shapes and chosen the geometry.
#pragma once

#include <cstdint>

#include "kernels/fused_act.h"

namespace finch::quant::kernels {

// Fused activation of the fp32 runtime kernels (the node's "act" attribute); one enum for all.
using F32Act = FusedAct;

// One depthwise convolution over planes [p_begin, p_end) of x [N, C, H, W] (p = n·C + c) into
// y [N, C·M, OH, OW], channel multiplier M: y[n, c·M + m] = act(Σ w[c·M + m]·x[n, c] window +
// bias + residual). Planes lie x_plane / y_plane apart, rows W / OW apart; input rows past H are
// zero padding, whatever OH asks for. The kernel writes only y's [OH, OW] of its planes.
struct F32DwArgs {
  const float* x;
  float* y;
  const float* residual;  // [N, C·M, OH, OW] added before the activation, or null
  const float* w;         // [C·M, KH·KW]
  const float* bias;      // [C·M]
  int64_t N, C, M, H, W, OH, OW, KH, KW, sh, sw, ph, pw, dh, dw;
  F32Act act;
  // Channels-last form of w and bias (M == 1): w_cl [KH·KW, Cp], bias_cl [Cp], zero past C.
  const float* w_cl;
  const float* bias_cl;
  int64_t Cp;
  // Floats from one input plane to the next and from one output (and residual) plane to the
  // next: H·W and OH·OW, except for a band of rows (f32_dwconv.cc), where x, y and residual
  // point at the band's first row of plane 0 and H, OH, ph describe the band. x_end is the end of
  // the whole input (vector loads may run past a row up to there).
  int64_t x_plane, y_plane;
  const float* x_end;
};

void f32_dwconv_planes(const F32DwArgs& a, int64_t p_begin, int64_t p_end);

// Channels-last kernel for small planes (M == 1): blocks b = n·ceil(C / 16) + c/16 of 16
// channels, [b_begin, b_end). Each block is transposed into a zero-padded [Hp·Wp, 16] scratch,
// so one vector holds one pixel of 16 channels and a 4×4 plane costs no per-plane overhead.
constexpr int64_t kF32DwClBlock = 16;
void f32_dwconv_cl_blocks(const F32DwArgs& a, int64_t b_begin, int64_t b_end);

// The largest output plane (pixels) the channels-last kernel takes on the target dispatched
// now: 1024 where its transposes are register shuffles (AVX-512: it beats the plane walk up to
// 28×28 outputs, 1.2–2× on MobileNet's layers, bench_f32_dwconv), 64 where they are gathers.
int64_t f32_dwconv_cl_max_plane();

}  // namespace finch::quant::kernels
