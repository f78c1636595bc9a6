// Pooling modules: MaxPool2d, AvgPool2d, AdaptiveAvgPool2d (x [N, C, H, W]), as torch.nn.
#pragma once

#include <utility>

#include "autograd/functional.h"
#include "autograd/nn/module.h"

namespace finch::nn {

// stride 0 means "= kernel_size" (torch's default stride=None).
class MaxPool2d : public Module {
 public:
  explicit MaxPool2d(int64_t kernel_size, int64_t stride = 0, int64_t padding = 0, bool ceil_mode = false);
  explicit MaxPool2d(const Pool2dParams& options) : options(options) {}
  std::string type_name() const override { return "MaxPool2d"; }
  Tensor forward_impl(const Tensor& x) override;
  Pool2dParams options;
};

class AvgPool2d : public Module {
 public:
  explicit AvgPool2d(int64_t kernel_size, int64_t stride = 0, int64_t padding = 0,
                     bool ceil_mode = false, bool count_include_pad = true);
  explicit AvgPool2d(const Pool2dParams& options) : options(options) {}
  std::string type_name() const override { return "AvgPool2d"; }
  Tensor forward_impl(const Tensor& x) override;
  Pool2dParams options;
};

class AdaptiveAvgPool2d : public Module {
 public:
  explicit AdaptiveAvgPool2d(int64_t output_size) : output_size{output_size, output_size} {}
  explicit AdaptiveAvgPool2d(std::pair<int64_t, int64_t> output_size) : output_size(output_size) {}
  std::string type_name() const override { return "AdaptiveAvgPool2d"; }
  Tensor forward_impl(const Tensor& x) override;
  std::pair<int64_t, int64_t> output_size;
};

}  // namespace finch::nn
