// Fast int8 element-wise ops and max pooling of the int8 runtime, bit-identical to their scalar
// references in kernels/reference.h (same contracts, same error sentences apart from the op
// name). Inputs may have any strides (non-contiguous ones are copied first); outputs are new
// contiguous tensors.
#pragma once

#include <cstdint>

#include "framework/tensor.h"
#include "ops/pool.h"

namespace finch::quant::kernels {

// reference::qadd: y = clamp(rne((f32(a − za)·sa + f32(b − zb)·sb) / s_out) + z_out, qmin, qmax),
// every step one IEEE f32 operation (no fused multiply-add, a true division).
Tensor qs8_add(const Tensor& a, float sa, int32_t za, const Tensor& b, float sb, int32_t zb, float s_out,
               int32_t z_out, int32_t qmin, int32_t qmax, DType out_dtype);

// reference::qmax_pool2d: x i8/u8 [N, C, H, W] or [C, H, W]; padding never wins.
Tensor qs8_max_pool2d(const Tensor& x, const ops::Pool2dParams& p);

// reference::qrelu / qrelu6: clamps of the codes, same dtype in and out.
Tensor qs8_relu(const Tensor& x, int32_t z, int32_t qmin, int32_t qmax);
Tensor qs8_relu6(const Tensor& x, float s, int32_t z, int32_t qmin, int32_t qmax);

}  // namespace finch::quant::kernels
