// The runtime's float ops (fp32 compute through ops/; fp16 weights are widened at load), and
// the native fp16 conv2d/linear that fp16 programs run on ARMv8.2 FP16 CPUs instead.
#include <algorithm>
#include <map>
#include <memory>

#include "framework/cpu_features.h"
#include "framework/error.h"
#include "ops/activation.h"
#include "ops/conv.h"
#include "ops/elementwise.h"
#include "ops/matmul.h"
#include "ops/norm.h"
#include "ops/pool.h"
#include "ops/reduce.h"
#include "ops/shape.h"
#include "ops/softmax.h"
#include "kernels/f16_conv.h"
#include "runtime/op_table.h"

namespace finch::runtime {

namespace {

using Outs = std::vector<Tensor>;

const nlohmann::json& attr(const Node& n, const char* key) {
  if (!n.attrs.contains(key)) fail("node '", n.name, "' (", n.op, "): missing attribute '", key, "'");
  return n.attrs[key];
}

ops::Pool2dParams pool_params(const Node& n) {
  const auto k = attr_ints(n, "kernel", 2), s = attr_ints(n, "stride", 2), p = attr_ints(n, "padding", 2);
  ops::Pool2dParams q;
  q.kh = k[0], q.kw = k[1], q.sh = s[0], q.sw = s[1], q.ph = p[0], q.pw = p[1];
  q.ceil_mode = attr_bool(n, "ceil_mode", false);
  q.count_include_pad = attr_bool(n, "count_include_pad", true);
  return q;
}

ops::Conv2dParams conv_params(const Node& n) {
  const auto s = attr_ints(n, "stride", 2), p = attr_ints(n, "padding", 2), d = attr_ints(n, "dilation", 2);
  ops::Conv2dParams c;
  c.sh = s[0], c.sw = s[1], c.ph = p[0], c.pw = p[1], c.dh = d[0], c.dw = d[1];
  c.groups = attr_int(n, "groups", 1);
  return c;
}

Outs conv2d(const Node& n, const std::vector<Tensor>& in, const Graph&) {
  const ops::Conv2dParams c = conv_params(n);
  Tensor y = ops::conv2d(in[0], in[1], in.size() > 2 ? in[2] : Tensor(), c);
  apply_activation(n, y);
  return {y};
}

Outs linear(const Node& n, const std::vector<Tensor>& in, const Graph&) {
  Tensor y = ops::linear(in[0], in[1], in.size() > 2 ? in[2] : Tensor());
  apply_activation(n, y);
  return {y};
}

// ---- native fp16 conv2d/linear, prepared at load ----
//
// An fp16 program stores conv/linear weights as f16. Where the CPU has ARMv8.2 half-precision
// arithmetic (a Pi 5) these nodes compute in fp16 on the stored weights (kernels/
// f16_conv.h: activations rounded to f16, f16 accumulation, output widened to f32), so results
// differ from the fp32 compute of conv2d/linear above by fp16 rounding. Everywhere else (x86, a
// Pi 4, FINCH_DISABLE_FP16=1, ProgramOptions::reference_kernels) prepare gives nothing and the
// node runs on the fp32 ops with the weights widened at load, as before.

// True when node n should run natively in fp16: the CPU can, the weight is an f16 constant, the
// bias (if any) a constant and the input f32.
bool native_fp16(const Node& n, const Graph& g) {
  if (!cpu_has_arm_fp16()) return false;
  const Value& w = g.values[size_t(n.inputs[1])];
  if (!w.is_constant() || w.dtype != DType::f16) return false;
  if (n.inputs.size() > 2 && n.inputs[2] >= 0 && !g.values[size_t(n.inputs[2])].is_constant()) return false;
  return g.values[size_t(n.inputs[0])].dtype == DType::f32;
}

Tensor bias_constant(const Node& n, const Graph& g) {
  return n.inputs.size() > 2 && n.inputs[2] >= 0 ? g.values[size_t(n.inputs[2])].data : Tensor();
}

template <class K>
class Fp16Kernel final : public NodeKernel {
 public:
  explicit Fp16Kernel(K k) : k_(std::move(k)) {}
  std::vector<Tensor> run(const std::vector<Tensor>& in) const override { return {k_.run(in[0])}; }

 private:
  K k_;
};

std::unique_ptr<NodeKernel> prepare_conv2d(const Node& n, const Graph& g) {
  if (!native_fp16(n, g)) return nullptr;
  quant::kernels::F16Conv2d k(g.values[size_t(n.inputs[1])].data, bias_constant(n, g), conv_params(n),
                              quant::kernels::f16_act_from_name(attr_string(n, "act", "none")));
  return std::make_unique<Fp16Kernel<quant::kernels::F16Conv2d>>(std::move(k));
}

std::unique_ptr<NodeKernel> prepare_linear(const Node& n, const Graph& g) {
  if (!native_fp16(n, g)) return nullptr;
  quant::kernels::F16Linear k(g.values[size_t(n.inputs[1])].data, bias_constant(n, g),
                              quant::kernels::f16_act_from_name(attr_string(n, "act", "none")));
  return std::make_unique<Fp16Kernel<quant::kernels::F16Linear>>(std::move(k));
}

Outs batch_norm(const Node& n, const std::vector<Tensor>& in, const Graph&) {
  if (attr_bool(n, "training", false)) fail("node '", n.name, "': batch_norm in training mode cannot run in a program");
  return {ops::batch_norm(in[0], in[3], in[4], in[1], in[2], false, 0.0, attr_double(n, "eps")).y};
}

Outs add(const Node& n, const std::vector<Tensor>& in, const Graph&) {
  Tensor y = ops::add(in[0], in[1], n.attrs.contains("alpha") ? attr_double(n, "alpha") : 1.0);
  apply_activation(n, y);
  return {y};
}
Outs sub(const Node& n, const std::vector<Tensor>& in, const Graph&) {
  return {ops::sub(in[0], in[1], n.attrs.contains("alpha") ? attr_double(n, "alpha") : 1.0)};
}
Outs mul(const Node&, const std::vector<Tensor>& in, const Graph&) { return {ops::mul(in[0], in[1])}; }
Outs div(const Node&, const std::vector<Tensor>& in, const Graph&) { return {ops::div(in[0], in[1])}; }
Outs add_scalar(const Node& n, const std::vector<Tensor>& in, const Graph&) {
  return {ops::add_scalar(in[0], attr_double(n, "value"))};
}
Outs mul_scalar(const Node& n, const std::vector<Tensor>& in, const Graph&) {
  return {ops::mul_scalar(in[0], attr_double(n, "value"))};
}

template <Tensor (*F)(const Tensor&)>
Outs unary(const Node&, const std::vector<Tensor>& in, const Graph&) {
  return {F(in[0])};
}
Outs gelu(const Node&, const std::vector<Tensor>& in, const Graph&) { return {ops::gelu(in[0], "none")}; }
Outs gelu_tanh(const Node&, const std::vector<Tensor>& in, const Graph&) { return {ops::gelu(in[0], "tanh")}; }
Outs leaky_relu(const Node& n, const std::vector<Tensor>& in, const Graph&) {
  return {ops::leaky_relu(in[0], attr_double(n, "negative_slope"))};
}

Outs max_pool2d(const Node& n, const std::vector<Tensor>& in, const Graph&) {
  return {ops::max_pool2d(in[0], pool_params(n)).y};
}
Outs avg_pool2d(const Node& n, const std::vector<Tensor>& in, const Graph&) {
  return {ops::avg_pool2d(in[0], pool_params(n))};
}
Outs adaptive_avg_pool2d(const Node& n, const std::vector<Tensor>& in, const Graph&) {
  const auto o = attr_ints(n, "output_size", 2);
  return {ops::adaptive_avg_pool2d(in[0], o[0], o[1])};
}
Outs mean(const Node& n, const std::vector<Tensor>& in, const Graph&) {
  return {ops::mean(in[0], attr_ints(n, "dims", 0), attr_bool(n, "keepdim", false))};
}
Outs softmax(const Node& n, const std::vector<Tensor>& in, const Graph&) {
  return {ops::softmax(in[0], attr_int(n, "dim"))};
}
Outs cat(const Node& n, const std::vector<Tensor>& in, const Graph&) { return {ops::cat(in, attr_int(n, "dim"))}; }

}  // namespace

// Shape ops work on any dtype (integer codes keep their quantization).
Outs flatten_op(const Node& n, const std::vector<Tensor>& in, const Graph&) {
  return {in[0].contiguous().flatten(attr_int(n, "start_dim"), attr_int(n, "end_dim"))};
}
// The recorded shape holds the capture's batch size in dim 0 when the op kept the batch; the
// program runs any batch, so dim 0 follows the input.
Outs reshape_op(const Node& n, const std::vector<Tensor>& in, const Graph& g) {
  Shape s = attr_ints(n, "shape", 0);
  const Value& src = g.values[size_t(n.inputs[0])];
  if (!s.empty() && !src.shape.empty() && s[0] == src.shape[0] && in[0].dim() > 0) s[0] = in[0].size(0);
  return {in[0].contiguous().reshape(s)};
}

const std::vector<std::pair<std::string, OpImpl>>& float_ops() {
  static const std::vector<std::pair<std::string, OpImpl>> t = {
      {"conv2d", {2, 3, conv2d, 0, prepare_conv2d}},
      {"linear", {2, 3, linear, 0, prepare_linear}},
      {"batch_norm", {5, 5, batch_norm}},
      {"add", {2, 2, add}},
      {"sub", {2, 2, sub}},
      {"mul", {2, 2, mul}},
      {"div", {2, 2, div}},
      {"add_scalar", {1, 1, add_scalar}},
      {"mul_scalar", {1, 1, mul_scalar}},
      {"relu", {1, 1, unary<ops::relu>}},
      {"relu6", {1, 1, unary<ops::relu6>}},
      {"sigmoid", {1, 1, unary<ops::sigmoid>}},
      {"tanh", {1, 1, unary<ops::tanh>}},
      {"silu", {1, 1, unary<ops::silu>}},
      {"hardswish", {1, 1, unary<ops::hardswish>}},
      {"hardsigmoid", {1, 1, unary<ops::hardsigmoid>}},
      {"gelu", {1, 1, gelu}},
      {"gelu_tanh", {1, 1, gelu_tanh}},
      {"leaky_relu", {1, 1, leaky_relu}},
      {"max_pool2d", {1, 1, max_pool2d}},
      {"avg_pool2d", {1, 1, avg_pool2d}},
      {"adaptive_avg_pool2d", {1, 1, adaptive_avg_pool2d}},
      {"mean", {1, 1, mean}},
      {"softmax", {1, 1, softmax}},
      {"cat", {1, -1, cat}},
      {"flatten", {1, 1, flatten_op}},
      {"reshape", {1, 1, reshape_op}},
  };
  return t;
}

// --- attribute helpers ---

int64_t attr_int(const Node& n, const char* key) {
  const auto& a = attr(n, key);
  if (!a.is_number_integer()) fail("node '", n.name, "' (", n.op, "): attribute '", key, "' must be an integer");
  return a.get<int64_t>();
}
int64_t attr_int(const Node& n, const char* key, int64_t fallback) {
  return n.attrs.contains(key) ? attr_int(n, key) : fallback;
}
double attr_double(const Node& n, const char* key) {
  const auto& a = attr(n, key);
  if (!a.is_number()) fail("node '", n.name, "' (", n.op, "): attribute '", key, "' must be a number");
  return a.get<double>();
}
bool attr_bool(const Node& n, const char* key, bool fallback) {
  if (!n.attrs.contains(key)) return fallback;
  const auto& a = n.attrs[key];
  if (!a.is_boolean()) fail("node '", n.name, "' (", n.op, "): attribute '", key, "' must be true or false");
  return a.get<bool>();
}
std::string attr_string(const Node& n, const char* key, const std::string& fallback) {
  if (!n.attrs.contains(key)) return fallback;
  const auto& a = n.attrs[key];
  if (!a.is_string()) fail("node '", n.name, "' (", n.op, "): attribute '", key, "' must be a string");
  return a.get<std::string>();
}
std::vector<int64_t> attr_ints(const Node& n, const char* key, size_t count) {
  const auto& a = attr(n, key);
  bool ok = a.is_array() && (count == 0 || a.size() == count);
  if (ok)
    for (const auto& e : a) ok = ok && e.is_number_integer();
  if (!ok)
    fail("node '", n.name, "' (", n.op, "): attribute '", key, "' must be a list of ",
         count ? std::to_string(count) + " " : std::string(), "integers");
  return a.get<std::vector<int64_t>>();
}

void apply_activation(const Node& n, Tensor& y) {
  const std::string act = attr_string(n, "act", "none");
  if (act == "none") return;
  if (act == "relu") y = ops::relu(y);
  else if (act == "relu6") y = ops::relu6(y);
  else fail("node '", n.name, "' (", n.op, "): unknown activation '", act, "' (expected none, relu or relu6)");
}

const OpImpl* find_op(const std::string& op) {
  static const std::map<std::string, OpImpl> all = [] {
    std::map<std::string, OpImpl> m;
    for (const auto& [k, v] : float_ops()) m[k] = v;
    for (const auto& [k, v] : quant_ops()) m[k] = v;
    return m;
  }();
  const auto it = all.find(op);
  return it == all.end() ? nullptr : &it->second;
}

}  // namespace finch::runtime
