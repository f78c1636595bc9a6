// LeNet-5 (LeCun et al. 1998), the modern variant: ReLU instead of scaled tanh, max pooling
// instead of trainable subsampling, a full C3 connection table and a plain Linear output
// instead of RBF units. Names as the PyTorch tutorials write it:
//   conv1 6@5×5 -> relu -> maxpool 2 -> conv2 16@5×5 -> relu -> maxpool 2 -> flatten
//   -> fc1 120 -> relu -> fc2 84 -> relu -> fc3 num_classes
// conv1 gets padding 2 for 28×28 input (MNIST-style, so conv2 still sees 14×14 as for the
// paper's 32×32) and padding 0 otherwise; fc1's input size follows from `input_size`
// (16·5·5 = 400 for both 28 and 32). Init: torch's nn defaults.
// Shapes: x [N, C, input_size, input_size] -> logits [N, num_classes].
#pragma once

#include <memory>
#include <string>

#include "autograd/nn/nn.h"

namespace finch::models {

class LeNet5 : public nn::Module {
 public:
  LeNet5(int64_t in_channels = 1, int64_t num_classes = 10, int64_t input_size = 28,
         Generator* gen = nullptr);
  std::string type_name() const override { return "LeNet5"; }
  Tensor forward_impl(const Tensor& x) override;

  int64_t input_size;
  std::shared_ptr<nn::Conv2d> conv1, conv2;
  std::shared_ptr<nn::Linear> fc1, fc2, fc3;
};

}  // namespace finch::models
