// Native fp16 conv2d and linear: the optimized kernels of the float conv2d/linear nodes of fp16
// programs on CPUs with ARMv8.2 half-precision arithmetic (runtime/float_ops.cc prepares
// them when finch::cpu_has_arm_fp16() holds). f32 activations in, f32 out, so every other op of
// the program is untouched; inside, the input is rounded to f16, the products are summed in f16
// (f16_gemm.h) and the sum is widened to f32 before the bias and the fused activation. Results
// therefore differ from the fp32-compute path (ops::conv2d / ops::linear on the widened weights)
// by fp16 rounding: roughly K·2^-11·Σ|w·x| at worst for a reduction of length K, and inputs above
// 65504 in magnitude overflow to ±inf.
//
// The weight is kept as the program stores it (f16, OIHW or [OUT, IN]): the GEMM reads its rows
// directly, so the resident weight is half the f32 one and nothing is repacked. Any stride,
// padding, dilation and group count ops::conv2d accepts works (im2col into f16, one GEMM per
// group; a depthwise conv is the case of one input channel per group).
//
// Shapes: x [N, C, H, W] f32, weight [OC, C/groups, KH, KW] f16, bias [OC] (f16 or f32) or absent;
// linear: x [..., IN] f32, weight [OUT, IN] f16, bias [OUT] or absent.
#pragma once

#include <string>
#include <vector>

#include "framework/tensor.h"
#include "ops/conv.h"
#include "kernels/f16_gemm.h"

namespace finch::quant::kernels {

class F16Conv2d {
 public:
  F16Conv2d(const Tensor& weight, const Tensor& bias, const ops::Conv2dParams& p, f16k::Act act);
  // Threads: parallel_for over (group, 8-row block, column chunk); each output element is one
  // tile's fixed-order sum, so the result does not depend on the thread count.
  Tensor run(const Tensor& x) const;

 private:
  Tensor w_;                 // f16 [OC, Cg, KH, KW], contiguous (shares the program's storage)
  std::vector<float> bias_;  // [OC] (zeros when absent)
  ops::Conv2dParams p_;
  f16k::Act act_;
  int64_t OC_, Cg_, KH_, KW_;
};

class F16Linear {
 public:
  F16Linear(const Tensor& weight, const Tensor& bias, f16k::Act act);
  Tensor run(const Tensor& x) const;

 private:
  Tensor w_;  // f16 [OUT, IN], contiguous
  std::vector<float> bias_;
  f16k::Act act_;
  int64_t OUT_, IN_;
};

// Plain loops in double over the f16-rounded input and weight (the tests' reference): what the
// kernels compute up to the order and precision of the sum.
Tensor f16_conv2d_reference(const Tensor& x, const Tensor& weight, const Tensor& bias, const ops::Conv2dParams& p,
                            f16k::Act act);
Tensor f16_linear_reference(const Tensor& x, const Tensor& weight, const Tensor& bias, f16k::Act act);

}  // namespace finch::quant::kernels
