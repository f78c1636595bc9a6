// Fast fp32 depthwise convolution for the runtime: the prepared kernel of a float conv2d node
// whose groups equal its input channels (runtime/float_ops.cc).
//
// Shapes: x [N, C, H, W] f32, w [C·M, 1, KH, KW] (f32, or f16 widened once), bias [C·M] or
// absent, residual [N, C·M, OH, OW] or absent, y [N, C·M, OH, OW] f32. Any kernel size, stride,
// padding, dilation and channel multiplier M. Weights and bias are packed at construction; run()
// allocates only its output (the per-thread scratch of kernels/f32_dwconv_hwy.cc is reused).
// Each output is bias + Σ taps in (kh, kw) order by FMA, as ops::conv2d's depthwise path sums
// it, then the residual is added and the activation applied.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "framework/tensor.h"
#include "ops/conv.h"
#include "kernels/f32_dwconv_kernels.h"

namespace finch::quant::kernels {

struct DwGrid;

// The grid F32DepthwiseConv2d::run splits for this geometry on the CPU dispatched now
// (kernels/dwconv_band.h): which kernel runs (channels-last or per plane) and its columns.
DwGrid f32_dwconv_grid(int64_t C, int64_t M, int64_t H, int64_t W, int64_t OH, int64_t OW, int64_t KH, int64_t KW,
                       int64_t sh, int64_t sw, int64_t dh, int64_t dw);

class F32DepthwiseConv2d {
 public:
  // weight [C·M, 1, KH, KW] f32/f16 with p.groups == C; bias [C·M] f32/f16 or undefined. Bad
  // arguments give a finch::Error sentence naming f32_dwconv2d.
  F32DepthwiseConv2d(const Tensor& weight, const Tensor& bias, const ops::Conv2dParams& p, F32Act act);

  // x: f32 [N, C, H, W] (any strides) -> f32 [N, C·M, OH, OW]; residual (optional) f32 of the
  // output's shape, added before the activation. Threads: bands of output rows (one per thread)
  // × channels (kernels/dwconv_band.h), split by the pool's cost model (Work::macs_dw_f32) so a
  // tiny layer stays on one thread; every output is computed by one thread in a fixed order, so
  // results do not depend on the thread count.
  Tensor run(const Tensor& x, const Tensor& residual = Tensor()) const;

  int64_t channels() const { return C_; }

 private:
  int64_t C_, M_, KH_, KW_;
  ops::Conv2dParams p_;
  F32Act act_;
  std::vector<float> w_, bias_;  // w_: [C·M, KH·KW]; bias_: [C·M] (zeros when absent)
  // Channels-last copies for the small-plane kernel (M == 1): [KH·KW, Cp], [Cp], zero past C.
  std::vector<float> w_cl_, bias_cl_;
  int64_t Cp_ = 0;
};

}  // namespace finch::quant::kernels
