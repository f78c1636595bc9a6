// Conv1d and Conv2d with torch.nn's arguments, weight layouts (OIL / OIHW) and default init.
#pragma once

#include <utility>

#include "autograd/functional.h"
#include "autograd/nn/module.h"

namespace finch::nn {

// Default init as torch: weight kaiming_uniform_(a=√5) → U(-1/√fan_in, 1/√fan_in) with
// fan_in = in/groups·kernel area; bias U(-1/√fan_in, 1/√fan_in).
class Conv2d : public Module {
 public:
  Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel_size, int64_t stride = 1,
         int64_t padding = 0, int64_t dilation = 1, int64_t groups = 1, bool bias = true,
         Generator* gen = nullptr);
  // Non-square kernels/strides/paddings.
  Conv2d(int64_t in_channels, int64_t out_channels, std::pair<int64_t, int64_t> kernel_size,
         const Conv2dParams& options, bool bias = true, Generator* gen = nullptr);
  std::string type_name() const override { return "Conv2d"; }
  Tensor forward_impl(const Tensor& x) override;  // x [N, C, H, W]
  void reset_parameters(Generator* gen = nullptr);

  int64_t in_channels, out_channels;
  std::pair<int64_t, int64_t> kernel_size;
  Conv2dParams options;
  Tensor weight;  // [OC, C/groups, KH, KW]
  Tensor bias;    // [OC] or undefined
};

class Conv1d : public Module {
 public:
  Conv1d(int64_t in_channels, int64_t out_channels, int64_t kernel_size, int64_t stride = 1,
         int64_t padding = 0, int64_t dilation = 1, int64_t groups = 1, bool bias = true,
         Generator* gen = nullptr);
  std::string type_name() const override { return "Conv1d"; }
  Tensor forward_impl(const Tensor& x) override;  // x [N, C, L]
  void reset_parameters(Generator* gen = nullptr);

  int64_t in_channels, out_channels, kernel_size, stride, padding, dilation, groups;
  Tensor weight;  // [OC, C/groups, K]
  Tensor bias;    // [OC] or undefined
};

}  // namespace finch::nn
