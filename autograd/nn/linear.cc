// Linear, Flatten.
#include "autograd/nn/linear.h"

#include <cmath>

#include "autograd/functional.h"
#include "autograd/nn/init.h"

namespace finch::nn {

Linear::Linear(int64_t in, int64_t out, bool with_bias, Generator* gen)
    : in_features(in), out_features(out) {
  if (in < 0 || out < 0) fail("Linear: feature counts must be non-negative, got in=", in, ", out=", out);
  weight = register_parameter("weight", empty({out, in}));
  bias = register_parameter("bias", with_bias ? empty({out}) : Tensor());
  reset_parameters(gen);
}

void Linear::reset_parameters(Generator* gen) {
  // kaiming_uniform_(a=√5) gives bound √3·√(2/(1+5))/√fan_in = 1/√fan_in (torch's default).
  init::kaiming_uniform_(weight, std::sqrt(5.0), "fan_in", "leaky_relu", gen);
  if (bias.defined()) {
    const double bound = in_features > 0 ? 1.0 / std::sqrt(double(in_features)) : 0.0;
    init::uniform_(bias, -bound, bound, gen);
  }
}

Tensor Linear::forward_impl(const Tensor& x) {
  if (x.dim() < 1 || x.size(-1) != in_features)
    fail("Linear: expected an input whose last dim is ", in_features, ", got shape ", shape_str(x.shape()));
  return finch::linear(x, weight, bias);
}

Tensor Flatten::forward_impl(const Tensor& x) { return finch::flatten(x, start_dim, end_dim); }

}  // namespace finch::nn
