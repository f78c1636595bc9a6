// Differentiable activations: each records its rule with the tensor its backward kernel needs
// (the output for relu/sigmoid/tanh, the input for the rest).
#include "autograd/capture.h"
#include "autograd/functional.h"
#include "autograd/node.h"
#include "framework/grad_mode.h"
#include "ops/activation.h"
#include "ops/op_attrs.h"

namespace finch {

using autograd::Grads;
using autograd::Needs;

namespace {

// Records `name` with backward(dy, saved) where saved is x or y as the rule needs.
template <typename Fwd, typename Bwd>
Tensor activation(const char* name, const Tensor& x, bool save_output, Fwd&& fwd, Bwd&& bwd,
                  const nlohmann::json& attrs = nlohmann::json::object()) {
  autograd::CaptureScope cap;
  const bool rec = autograd::should_record({x});
  NoGradGuard ng;
  Tensor y = fwd(x);
  if (cap.active()) cap.record(name, {x}, {y}, attrs);
  if (rec)
    autograd::record(name, {x}, {y},
                     [z = (save_output ? y : x).detach(), bwd](const Grads& g, const Needs&) {
                       return Grads{bwd(g[0], z)};
                     });
  return y;
}

}  // namespace

Tensor relu(const Tensor& x) {
  return activation("relu", x, true, [](const Tensor& t) { return ops::relu(t); },
                    [](const Tensor& g, const Tensor& y) { return ops::relu_backward(g, y); });
}

Tensor relu6(const Tensor& x) {
  return activation("relu6", x, false, [](const Tensor& t) { return ops::relu6(t); },
                    [](const Tensor& g, const Tensor& z) { return ops::relu6_backward(g, z); });
}

Tensor leaky_relu(const Tensor& x, double negative_slope) {
  return activation(
      "leaky_relu", x, false, [&](const Tensor& t) { return ops::leaky_relu(t, negative_slope); },
      [negative_slope](const Tensor& g, const Tensor& z) {
        return ops::leaky_relu_backward(g, z, negative_slope);
      },
      {{ops::attr::negative_slope.name, negative_slope}});
}

Tensor sigmoid(const Tensor& x) {
  return activation("sigmoid", x, true, [](const Tensor& t) { return ops::sigmoid(t); },
                    [](const Tensor& g, const Tensor& y) { return ops::sigmoid_backward(g, y); });
}

Tensor tanh(const Tensor& x) {
  return activation("tanh", x, true, [](const Tensor& t) { return ops::tanh(t); },
                    [](const Tensor& g, const Tensor& y) { return ops::tanh_backward(g, y); });
}

Tensor gelu(const Tensor& x, const std::string& approximate) {
  if (approximate != "none" && approximate != "tanh")
    fail("gelu: approximate must be \"none\" or \"tanh\", got \"", approximate, "\"");
  return activation(
      approximate == "tanh" ? "gelu_tanh" : "gelu", x, false,
      [&](const Tensor& t) { return ops::gelu(t, approximate); },
      [approximate](const Tensor& g, const Tensor& z) { return ops::gelu_backward(g, z, approximate); });
}

Tensor silu(const Tensor& x) {
  return activation("silu", x, false, [](const Tensor& t) { return ops::silu(t); },
                    [](const Tensor& g, const Tensor& z) { return ops::silu_backward(g, z); });
}

Tensor hardswish(const Tensor& x) {
  return activation("hardswish", x, false, [](const Tensor& t) { return ops::hardswish(t); },
                    [](const Tensor& g, const Tensor& z) { return ops::hardswish_backward(g, z); });
}

Tensor hardsigmoid(const Tensor& x) {
  return activation("hardsigmoid", x, false, [](const Tensor& t) { return ops::hardsigmoid(t); },
                    [](const Tensor& g, const Tensor& z) { return ops::hardsigmoid_backward(g, z); });
}

}  // namespace finch
