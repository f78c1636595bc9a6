// Internal: the Highway micro-kernel behind QDepthwiseConv2d (kernels/qs8_dwconv.h). No
// validation here; the operator has checked shapes, dtypes and that no accumulator can overflow.
#pragma once

#include <cstdint>

namespace finch::quant::kernels {

// One depthwise convolution over planes [p_begin, p_end) of x [N, C, H, W] (p = n·C + c),
// channel multiplier 1. x and y are codes (i8 or u8 as the flags say), planes x_plane / y_plane
// apart, rows W / OW apart; input rows past H are zero padding, whatever OH asks for. The kernel
// may read anywhere before x_end, never past it, and writes only y's [OH, OW] of its planes.
struct DwConvArgs {
  const void* x;
  bool x_u8;
  int32_t zx;
  void* y;
  bool y_u8;
  int64_t N, C, H, W, OH, OW, KH, KW, sh, sw, ph, pw, dh, dw;
  const int32_t* w;     // [C, KH·KW] weights widened to int32
  const int32_t* bias;  // [C]
  const int32_t* mult;  // [C] requantization multipliers
  const int32_t* shift; // [C] total shifts 31 + shift
  int32_t z_out, qmin, qmax;
  // For the AVX-512 VNNI path (qs8_dwconv_quad-inl.h): per channel, KH·ceil(KW/4) weight quads
  // (bytes w[kh][4g .. 4g+3], 0 past KW, as one int32) and bias − zx_u8·Σw wrapped to int32,
  // zx_u8 the input zero point of the u8 form of the codes.
  const int32_t* quad_w;
  const int32_t* quad_off;
  // Codes from one input (output) plane to the next: H·W (OH·OW), except for a band of rows
  // (qs8_dwconv.cc), where x and y point at the band's first row of plane 0 and H, OH, ph
  // describe the band. x_end: the end of the whole input (loads may run up to there).
  int64_t x_plane, y_plane;
  const void* x_end;
};

// y[p] = clamp(z_out + rounding_shift(Σ (x − zx)·w + bias, shift[c]), qmin, qmax), as
// reference::qconv2d with groups = C.
void qs8_dwconv_planes(const DwConvArgs& a, int64_t p_begin, int64_t p_end);

// True when qs8_dwconv_planes takes the AVX-512 VNNI path (qs8_dwconv_quad-inl.h) for this
// column stride and dilation on the current CPU: column dilation 1, column stride 1, 2 or 4.
bool qs8_dwconv_quad_path(int64_t sw, int64_t dw);

}  // namespace finch::quant::kernels

namespace finch::quant::kernels {

// The channels-last path for small planes (kernels/qs8_dwconv_cl_hwy.cc): image n's
// channels [c_begin, c_end) are transposed into a padded [Hp][Wp][C] int32 scratch of (x − zx), and each
// output pixel accumulates its taps with vectors along C, so a 7×7 plane costs no per-plane setup.
// The tables are channels-last and padded to Cp >= C + 64 entries (reads past C stay inside).
struct DwClArgs {
  const void* x;
  bool x_u8;
  int32_t zx;
  void* y;
  bool y_u8;
  int64_t N, C, H, W, OH, OW, KH, KW, sh, sw, ph, pw, dh, dw, Cp;
  const int32_t* w;           // [KH·KW][Cp]: the weight in the low int16 half, 0 in the high one
  const int32_t* bias;        // [Cp]
  const int32_t* mult;        // [Cp]: vector multipliers (0 where the total shift is >= 64)
  const int32_t* rshift;      // [Cp]: total shift − 32 (0 where the multiplier is 0)
  const int64_t* round_even;  // [Cp / 2]: RequantHighRound of channels 0, 2, 4, ...
  const int64_t* round_odd;   // [Cp / 2]: of channels 1, 3, 5, ...
  const uint8_t* vec_ok;      // [Cp]: 1 where the vector rule above is exact (else scalar)
  const int32_t* mult_raw;    // [C] multipliers and total shifts for the scalar rule
  const int32_t* shift_raw;
  int32_t z_out, qmin, qmax;
  int64_t x_plane, y_plane;  // as in DwConvArgs (a band of rows: plane pitches of the whole tensors)
};

// Channels [c_begin, c_end) of image n (c_begin even), exactly as reference::qconv2d.
void qs8_dwconv_cl(const DwClArgs& a, int64_t n, int64_t c_begin, int64_t c_end);

}  // namespace finch::quant::kernels
