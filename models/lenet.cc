// LeNet-5 built from nn modules.
#include "models/lenet.h"

#include "autograd/functional.h"
#include "framework/tensor.h"

namespace finch::models {

LeNet5::LeNet5(int64_t in_channels, int64_t num_classes, int64_t input_size, Generator* gen)
    : input_size(input_size) {
  if (in_channels <= 0 || num_classes <= 0)
    fail("LeNet5: in_channels and num_classes must be positive, got ", in_channels, " and ", num_classes);
  const int64_t pad = input_size == 28 ? 2 : 0;
  // conv 5×5, pool 2, conv 5×5, pool 2 (floor, as torch's max_pool2d).
  const int64_t side = ((input_size + 2 * pad - 4) / 2 - 4) / 2;
  if (input_size + 2 * pad - 4 < 2 || side < 1)
    fail("LeNet5: input_size must be at least 16 (32 in the paper, 28 with padding), got ", input_size);
  conv1 = register_module("conv1", std::make_shared<nn::Conv2d>(in_channels, 6, 5, 1, pad, 1, 1, true, gen));
  conv2 = register_module("conv2", std::make_shared<nn::Conv2d>(6, 16, 5, 1, 0, 1, 1, true, gen));
  fc1 = register_module("fc1", std::make_shared<nn::Linear>(16 * side * side, 120, true, gen));
  fc2 = register_module("fc2", std::make_shared<nn::Linear>(120, 84, true, gen));
  fc3 = register_module("fc3", std::make_shared<nn::Linear>(84, num_classes, true, gen));
}

Tensor LeNet5::forward_impl(const Tensor& x) {
  if (x.dim() != 4 || x.size(2) != input_size || x.size(3) != input_size)
    fail("LeNet5: expected an input [N, C, ", input_size, ", ", input_size, "], got ", shape_str(x.shape()));
  Pool2dParams pool;  // 2×2, stride 2
  Tensor h = max_pool2d(relu(conv1->forward(x)), pool);
  h = max_pool2d(relu(conv2->forward(h)), pool);
  h = relu(fc1->forward(flatten(h, 1)));
  h = relu(fc2->forward(h));
  return fc3->forward(h);
}

}  // namespace finch::models
