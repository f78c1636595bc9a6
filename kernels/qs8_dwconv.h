// Fast int8 depthwise convolution, bit-identical to reference::qconv2d with groups = C.
//
// Shapes: x [N, C, H, W] codes, w [C, 1, KH, KW] i8, y [N, C, OH, OW] codes. Prepared once (at
// program load): the weights are widened and the requantization table kept per channel; run()
// only validates x and splits bands of output rows (one per thread) × channels over the thread
// pool (kernels/dwconv_band.h).
#pragma once

#include <cstdint>
#include <vector>

#include "framework/tensor.h"
#include "ops/conv.h"
#include "kernels/requant.h"

namespace finch::quant::kernels {

struct DwGrid;

// The grid QDepthwiseConv2d::run splits for this geometry on the CPU dispatched now
// (kernels/dwconv_band.h): which kernel runs (channels-last or per plane) and its columns.
DwGrid qs8_dwconv_grid(int64_t C, int64_t H, int64_t W, int64_t OH, int64_t OW, int64_t KH, int64_t KW,
                       int64_t sw, int64_t dw);

class QDepthwiseConv2d {
 public:
  // w: i8 [C, 1, KH, KW] with p.groups == C (channel multiplier 1); bias: i32 [C] or undefined;
  // m: one FixedPointMultiplier per channel; x_dtype i8/u8 with zero point zx; out_dtype i8/u8 with
  // z_out and [qmin, qmax] (any fused activation already applied). Bad arguments give a
  // finch::Error sentence naming qs8_dwconv2d.
  QDepthwiseConv2d(const Tensor& w, const Tensor& bias, std::vector<FixedPointMultiplier> m,
                   const ops::Conv2dParams& p, DType x_dtype, int32_t zx, int32_t z_out, int32_t qmin, int32_t qmax,
                   DType out_dtype);

  // x: x_dtype [N, C, H, W] (any strides) -> out_dtype [N, C, OH, OW], exactly reference::qconv2d.
  Tensor run(const Tensor& x) const;

  int64_t channels() const { return C_; }

 private:
  void build_channels_last_tables();
  void build_quad_tables();

  int64_t C_, KH_, KW_;
  ops::Conv2dParams p_;
  DType x_dtype_, out_dtype_;
  int32_t zx_, z_out_, qmin_, qmax_;
  std::vector<int32_t> w_, bias_, mult_, shift_;  // w_: [C, KH·KW]
  // Raw inputs kept for the rare layer whose int32 sum could wrap (a program the loader refuses,
  // docs/quantization.md §10): the reference then computes the rule's wrapped value.
  Tensor w_raw_, bias_raw_;
  std::vector<FixedPointMultiplier> m_;
  bool may_overflow_ = false;
  // The channels-last tables (DwClArgs of qs8_dwconv_kernels.h), padded to Cp_ channels.
  int64_t Cp_ = 0;
  std::vector<int32_t> cl_w_, cl_bias_, cl_mult_, cl_rshift_;
  std::vector<int64_t> cl_round_even_, cl_round_odd_;
  std::vector<uint8_t> cl_vec_ok_;
  // The weight quads and offsets of the VNNI path (DwConvArgs::quad_w / quad_off).
  std::vector<int32_t> quad_w_, quad_off_;
};

}  // namespace finch::quant::kernels
