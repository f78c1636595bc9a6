// The one BatchNorm fold: conv weight and bias with an eval-mode BN folded in, shared by the fp32
// compiler pass (compile/passes.cc) and the quantized model (quant/prepare.cc), so fp32 and int8
// programs fold to the same weights bit for bit.
#pragma once

#include "framework/tensor.h"

namespace finch::compile {

struct FoldedConv {
  Tensor weight;  // f32 [OC, ...], w·γ/σ
  Tensor bias;    // f32 [OC], β + (b − μ)·γ/σ
};

// σ = sqrt(var + eps). Shapes: w [OC, ...] (OIHW conv or [OC, K]), conv_bias, gamma, beta, mean,
// var [OC]; conv_bias, gamma and beta may be undefined (0, 1 and 0). Any float dtype is read.
// Computed in f64 and rounded once to f32 (docs/quantization.md, "BatchNorm folding"): an f32
// γ/σ is itself rounded, and w·(γ/σ) then rounds again, so two f32 folds of the same numbers
// can differ in the last bit; one rounding from the exact-as-possible value is the closest f32.
// No autograd: the result is detached.
FoldedConv fold_conv_bn(const Tensor& w, const Tensor& conv_bias, const Tensor& gamma, const Tensor& beta,
                        const Tensor& mean, const Tensor& var, double eps);

}  // namespace finch::compile
