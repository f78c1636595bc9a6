// The per-sample step ops of the all-convolutional series models (ops/steps.h, runtime/ops.md):
// mask_steps zeroes each sample's steps past its length — on f32 values, or on integer codes by
// filling the zero point (the code of 0 on every grid, so the codes keep their quantization) —
// and mean_steps averages each sample over its own valid steps.
#include "framework/error.h"
#include "ops/steps.h"
#include "runtime/step_ops.h"

namespace finch::runtime {

namespace {

using Outs = std::vector<Tensor>;

Outs mask_steps_op(const Node& n, const std::vector<Tensor>& in, const Graph& g) {
  double fill = 0.0;
  if (!is_floating(in[0].dtype())) {
    const Value& src = g.values[size_t(n.inputs[0])];
    if (!src.quant || src.quant->zero_point.size() != 1)
      fail(node_where(n), ": masks integer codes; expected a per-tensor quantized input, found ",
           src.quant ? std::to_string(src.quant->zero_point.size()) + " zero points" : std::string("no quantization"));
    fill = double(src.quant->zero_point[0]);
  }
  try {
    return {ops::mask_steps(in[0], in[1], fill)};
  } catch (const Error& e) {
    fail(node_where(n), ": ", e.what());
  }
}

Outs mean_steps_op(const Node& n, const std::vector<Tensor>& in, const Graph&) {
  try {
    return {ops::mean_steps(in[0], in[1])};
  } catch (const Error& e) {
    fail(node_where(n), ": ", e.what());
  }
}

}  // namespace

const std::vector<std::pair<std::string, OpImpl>>& step_ops() {
  static const std::vector<std::pair<std::string, OpImpl>> t = {
      {"mask_steps", {mask_steps_op}},
      {"mean_steps", {mean_steps_op}},
  };
  return t;
}

}  // namespace finch::runtime
