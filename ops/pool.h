// 2-D pooling over NCHW planes: max (with argmax indices for backward), average
// (count_include_pad, ceil_mode) and adaptive average, their backward kernels and references.
// Shapes: x [N, C, H, W] or [C, H, W]; y [..., OH, OW]; indices i64 into each H·W plane.
#pragma once

#include <cstdint>
#include <vector>

#include "framework/tensor.h"

namespace finch {

// A pooling window: kernel (kh, kw), stride (sh, sw), padding (ph, pw), ceil_mode and, for
// average pools, count_include_pad. One type from the nn modules (autograd's max_pool2d/
// avg_pool2d take it) to the kernels, the capture record and the runtime (its JSON form:
// ops/op_attrs.h). In namespace finch, not finch::ops, so an unqualified max_pool2d(x, p) finds
// autograd's function by argument-dependent lookup, never also the kernel's.
struct Pool2dParams {
  int64_t kh = 2, kw = 2, sh = 2, sw = 2, ph = 0, pw = 0;
  bool ceil_mode = false;
  bool count_include_pad = true;  // avg pool only
};

namespace ops {

using finch::Pool2dParams;

// torch's pooling output size: floor or ceil of (in + 2p − k)/s + 1, and with ceil_mode the last
// window must start inside the input or the left padding.
int64_t pool_out_size(int64_t in, int64_t k, int64_t stride, int64_t pad, bool ceil_mode);

// Window of output o along one dim: [lo, hi) clipped to the input, plus avg pooling's divisor
// span (clipped to input + padding, as torch counts padded cells). Shared by the float pools and
// the int8 reference pools (kernels), so both read the same cells.
struct PoolWindow {
  int64_t lo, hi, span;
};
std::vector<PoolWindow> pool_windows(int64_t out, int64_t in, int64_t k, int64_t s, int64_t pad);
// Adaptive pooling: [floor(o·in/out), ceil((o+1)·in/out)), span = its cells.
std::vector<PoolWindow> adaptive_pool_windows(int64_t out, int64_t in);

struct MaxPoolResult {
  Tensor y, indices;
};
MaxPoolResult max_pool2d(const Tensor& x, const Pool2dParams& p);
// dx[plane, indices[o]] += dy[o].
Tensor max_pool2d_backward(const Tensor& dy, const Tensor& indices, const Shape& x_shape);
MaxPoolResult max_pool2d_reference(const Tensor& x, const Pool2dParams& p);

Tensor avg_pool2d(const Tensor& x, const Pool2dParams& p);
Tensor avg_pool2d_backward(const Tensor& dy, const Shape& x_shape, const Pool2dParams& p);
Tensor avg_pool2d_reference(const Tensor& x, const Pool2dParams& p);
Tensor avg_pool2d_backward_reference(const Tensor& dy, const Shape& x_shape, const Pool2dParams& p);

// Output cell i pools [floor(i·In/Out), ceil((i+1)·In/Out)) in each spatial dim (as torch).
Tensor adaptive_avg_pool2d(const Tensor& x, int64_t OH, int64_t OW);
Tensor adaptive_avg_pool2d_backward(const Tensor& dy, const Shape& x_shape);
Tensor adaptive_avg_pool2d_reference(const Tensor& x, int64_t OH, int64_t OW);

}  // namespace ops
}  // namespace finch
