// Internal: the Highway micro-kernels behind kernels/qs8_eltwise.h. No validation here.
#pragma once

#include <cstdint>

namespace finch::quant::kernels {

// Elements [b, e) of contiguous a, b codes (i8 or u8 each, as flagged) into y (i8 or u8).
struct AddArgs {
  const void* a;
  bool a_u8;
  float sa;
  int32_t za;
  const void* b;
  bool b_u8;
  float sb;
  int32_t zb;
  float s_out;
  int32_t z_out, qmin, qmax;
  void* y;
  bool y_u8;
};
void qs8_add_range(const AddArgs& a, int64_t begin, int64_t end);

// y[i] = clamp(x[i], lo, hi) over n contiguous codes (lo, hi inside the dtype's range).
void qs8_clamp(const int8_t* x, int8_t* y, int64_t n, int32_t lo, int32_t hi);
void qs8_clamp(const uint8_t* x, uint8_t* y, int64_t n, int32_t lo, int32_t hi);

// Max pooling over planes [p_begin, p_end) of contiguous x [P, H, W] into y [P, OH, OW].
struct MaxPoolArgs {
  const void* x;
  void* y;
  bool u8;
  int64_t H, W, OH, OW, KH, KW, sh, sw, ph, pw;
};
void qs8_max_pool2d_planes(const MaxPoolArgs& a, int64_t p_begin, int64_t p_end);

}  // namespace finch::quant::kernels
