// The runtime's integer ops: quantize/dequantize at the float boundaries and the int8 ops of
// ops.md, on the exact reference kernels (quant/kernels/reference.h).
#include "framework/error.h"
#include "quant/kernels/quantize.h"
#include "quant/runtime/op_table.h"

namespace finch::runtime {

namespace {

using Outs = std::vector<Tensor>;

}  // namespace

quant::QParams qparams_of(const Node& n, const Graph& g, int32_t value) {
  if (value < 0 || size_t(value) >= g.values.size()) fail("node '", n.name, "' (", n.op, "): value index out of range");
  const Value& v = g.values[size_t(value)];
  if (!v.quant) fail("node '", n.name, "' (", n.op, "): value '", v.name, "' has no quantization parameters");
  quant::QParams p;
  p.scale = v.quant->scale;
  p.zero_point = v.quant->zero_point;
  p.axis = v.quant->axis;
  p.qmin = v.quant->qmin;
  p.qmax = v.quant->qmax;
  return p;
}

namespace {

Outs quantize_op(const Node& n, const std::vector<Tensor>& in, const Graph& g) {
  if (in[0].dtype() != DType::f32) fail("node '", n.name, "' (quantize): expected an f32 input");
  return {quant::quantize(in[0], qparams_of(n, g, n.outputs[0]))};
}

Outs dequantize_op(const Node& n, const std::vector<Tensor>& in, const Graph& g) {
  return {quant::dequantize(in[0], qparams_of(n, g, n.inputs[0]))};
}

}  // namespace

const std::vector<std::pair<std::string, OpImpl>>& quant_ops() {
  static const std::vector<std::pair<std::string, OpImpl>> t = {
      {"quantize", {1, 1, quantize_op}},
      {"dequantize", {1, 1, dequantize_op}},
  };
  return t;
}

}  // namespace finch::runtime
