// 1-D pooling over time, x [N, C, L] or [C, L], as torch.nn: MaxPool1d, AvgPool1d,
// AdaptiveAvgPool1d, AdaptiveMaxPool1d, and the functions they call.
#pragma once

#include "autograd/nn/module.h"
#include "framework/tensor.h"

namespace finch::nn {

// Shapes: N batch, C channels, L input length, OL output length.
// The fixed-window pools run the 2-D kernels (ops/pool.h) on an H = 1 view [N, C, 1, L] with a
// 1 × k window, as conv1d does: one kernel, one backward rule, and graph capture records the
// max_pool2d/avg_pool2d ops the runtime already has. Arguments as torch.nn.functional: stride 0
// is torch's stride=None (= kernel_size), padding at most kernel_size / 2.
Tensor max_pool1d(const Tensor& x, int64_t kernel_size, int64_t stride = 0, int64_t padding = 0,
                  bool ceil_mode = false);
Tensor avg_pool1d(const Tensor& x, int64_t kernel_size, int64_t stride = 0, int64_t padding = 0,
                  bool ceil_mode = false, bool count_include_pad = true);
// Output cell o pools [floor(o·L/OL), ceil((o+1)·L/OL)), as torch.
Tensor adaptive_avg_pool1d(const Tensor& x, int64_t output_size);
// The max of each adaptive window; the gradient goes to the window's first maximum (torch's
// CPU kernel keeps the first as well). Composed from max over slices: one window for global
// max pooling (output_size 1), a few for the rest.
Tensor adaptive_max_pool1d(const Tensor& x, int64_t output_size);

class MaxPool1d : public Module {
 public:
  explicit MaxPool1d(int64_t kernel_size, int64_t stride = 0, int64_t padding = 0, bool ceil_mode = false);
  std::string type_name() const override { return "MaxPool1d"; }
  Tensor forward_impl(const Tensor& x) override { return max_pool1d(x, kernel_size, stride, padding, ceil_mode); }
  int64_t kernel_size, stride, padding;  // stride resolved (never 0)
  bool ceil_mode;
};

class AvgPool1d : public Module {
 public:
  explicit AvgPool1d(int64_t kernel_size, int64_t stride = 0, int64_t padding = 0, bool ceil_mode = false,
                     bool count_include_pad = true);
  std::string type_name() const override { return "AvgPool1d"; }
  Tensor forward_impl(const Tensor& x) override {
    return avg_pool1d(x, kernel_size, stride, padding, ceil_mode, count_include_pad);
  }
  int64_t kernel_size, stride, padding;
  bool ceil_mode, count_include_pad;
};

// output_size 1 is global average pooling over time: [N, C, L] -> [N, C, 1].
class AdaptiveAvgPool1d : public Module {
 public:
  explicit AdaptiveAvgPool1d(int64_t output_size);
  std::string type_name() const override { return "AdaptiveAvgPool1d"; }
  Tensor forward_impl(const Tensor& x) override { return adaptive_avg_pool1d(x, output_size); }
  int64_t output_size;
};

// output_size 1 is global max pooling over time: [N, C, L] -> [N, C, 1].
class AdaptiveMaxPool1d : public Module {
 public:
  explicit AdaptiveMaxPool1d(int64_t output_size);
  std::string type_name() const override { return "AdaptiveMaxPool1d"; }
  Tensor forward_impl(const Tensor& x) override { return adaptive_max_pool1d(x, output_size); }
  int64_t output_size;
};

}  // namespace finch::nn
