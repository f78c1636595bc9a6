// Internal: the Highway micro-kernel behind QDepthwiseConv2d (quant/kernels/qs8_dwconv.h). No
// validation here; the operator has checked shapes, dtypes and that no accumulator can overflow.
#pragma once

#include <cstdint>

namespace finch::quant::kernels {

// One depthwise convolution over planes [p_begin, p_end) of x [N, C, H, W] (p = n·C + c),
// channel multiplier 1. x and y are contiguous codes (i8 or u8 as the flags say); the kernel may
// read anywhere inside x [N, C, H, W], never past it.
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
};

// y[p] = clamp(z_out + rounding_shift(Σ (x − zx)·w + bias, shift[c]), qmin, qmax), as
// reference::qconv2d with groups = C.
void qs8_dwconv_planes(const DwConvArgs& a, int64_t p_begin, int64_t p_end);

}  // namespace finch::quant::kernels
