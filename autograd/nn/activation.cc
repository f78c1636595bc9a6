// Activation and dropout modules.
#include "autograd/nn/activation.h"

#include "autograd/functional.h"

namespace finch::nn {

Tensor ReLU::forward_impl(const Tensor& x) { return finch::relu(x); }
Tensor ReLU6::forward_impl(const Tensor& x) { return finch::relu6(x); }
Tensor LeakyReLU::forward_impl(const Tensor& x) { return finch::leaky_relu(x, negative_slope); }
Tensor Sigmoid::forward_impl(const Tensor& x) { return finch::sigmoid(x); }
Tensor Tanh::forward_impl(const Tensor& x) { return finch::tanh(x); }
Tensor SiLU::forward_impl(const Tensor& x) { return finch::silu(x); }
Tensor Hardswish::forward_impl(const Tensor& x) { return finch::hardswish(x); }

GELU::GELU(std::string approx) : approximate(std::move(approx)) {
  if (approximate != "none" && approximate != "tanh")
    fail("GELU: approximate must be \"none\" or \"tanh\", got \"", approximate, "\"");
}
Tensor GELU::forward_impl(const Tensor& x) { return finch::gelu(x, approximate); }

Dropout::Dropout(double p, Generator* gen) : p(p), gen(gen) {
  if (p < 0.0 || p > 1.0) fail("Dropout: probability must be in [0, 1], got ", p);
}
Tensor Dropout::forward_impl(const Tensor& x) { return finch::dropout(x, p, is_training(), gen); }

}  // namespace finch::nn
