// 2-D convolution (NCHW activations, OIHW weights) with stride, padding, dilation and groups:
// im2col + GEMM per (image, group, row tile), a direct GEMM for 1×1 stride-1 convs, Winograd
// F(2×2, 3×3) for 3×3 stride-1 F32 convs (ops/conv_winograd.cc) and a direct Highway kernel for
// depthwise convs (ops/depthwise_hwy.cc). Backward kernels and a 7-loop reference.
// Shapes: x [N, C, H, W], weight [OC, C/groups, KH, KW], bias [OC], y [N, OC, OH, OW].
#pragma once

#include <cstdint>

#include "framework/tensor.h"

namespace finch {

// A convolution's options: stride (sh, sw), padding (ph, pw), dilation (dh, dw), groups. One
// type from the nn module (autograd's conv2d takes it) to the kernels, the capture record and the
// runtime (its JSON form: ops/op_attrs.h). It lives in namespace finch, not finch::ops, so an
// unqualified conv2d(x, w, b, p) finds autograd's function by argument-dependent lookup, never
// also the kernel's.
struct Conv2dParams {
  int64_t sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1, groups = 1;
};

namespace ops {

using finch::Conv2dParams;

// floor((in + 2·pad − dil·(k−1) − 1) / stride) + 1, as torch.
int64_t conv_out_size(int64_t in, int64_t k, int64_t stride, int64_t pad, int64_t dil);

// bias may be undefined. F32 and F64; non-contiguous inputs are copied.
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dParams& p);

struct Conv2dGrads {
  Tensor dx, dweight, dbias;
};
// dX by GEMM + col2im, dW by GEMM accumulated over the batch (per-thread partial sums added in
// a fixed order), db = Σ over N, OH, OW. Only the requested gradients are computed.
Conv2dGrads conv2d_backward(const Tensor& dy, const Tensor& x, const Tensor& weight,
                            const Conv2dParams& p, bool need_x, bool need_weight, bool need_bias);

// Plain 7-loop convolution and its gradient in double (any strides) — the test reference.
Tensor conv2d_reference(const Tensor& x, const Tensor& weight, const Tensor& bias,
                        const Conv2dParams& p);
Conv2dGrads conv2d_backward_reference(const Tensor& dy, const Tensor& x, const Tensor& weight,
                                      const Conv2dParams& p);

// True when conv2d takes the direct depthwise kernel: groups == C, OC = C·multiplier.
bool is_depthwise(int64_t C, int64_t OC, int64_t groups);

// The direct depthwise kernels (Highway, ops/depthwise_hwy.cc). Contiguous F32/F64 tensors,
// shapes already validated by the conv2d operator.
Tensor depthwise_conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias,
                        const Conv2dParams& p);
Conv2dGrads depthwise_conv2d_backward(const Tensor& dy, const Tensor& x, const Tensor& weight,
                                      const Conv2dParams& p, bool need_x, bool need_weight,
                                      bool need_bias);

// Winograd F(2×2, 3×3) (ops/conv_winograd.cc): 3×3, stride 1, dilation 1, groups 1, padding
// <= 2, F32, at least 8 input and output channels. conv2d uses it for the forward and for dX.
bool winograd_applies(int64_t C, int64_t OC, int64_t KH, int64_t KW, const Conv2dParams& p);
// Contiguous-or-not F32 x [N, C, H, W], weight [OC, C, 3, 3], optional bias; stride 1.
Tensor conv2d_winograd(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t ph,
                       int64_t pw);

// The weight gradient of that conv: F32 x [N, C, H, W], dy [N, OC, OH, OW] → dW [OC, C, 3, 3].
Tensor conv2d_winograd_dweight(const Tensor& x, const Tensor& dy, int64_t ph, int64_t pw);

// Σ over N and the spatial dims of y [N, C, S]: the conv bias gradient, summed in a fixed order.
Tensor channel_sums(const Tensor& y);

}  // namespace ops
}  // namespace finch
