// The runtime's float ops (fp32 compute through ops/; fp16 weights are widened at load), the
// packed-weight fp32 conv2d/linear prepared at load for f32 constant weights, and the native fp16
// conv2d/linear that fp16 programs run on ARMv8.2 FP16 CPUs instead.
#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>

#include "framework/cpu_features.h"
#include "framework/error.h"
#include "ops/activation.h"
#include "ops/conv.h"
#include "ops/elementwise.h"
#include "ops/matmul.h"
#include "ops/op_attrs.h"
#include "ops/norm.h"
#include "ops/pool.h"
#include "ops/reduce.h"
#include "ops/shape.h"
#include "ops/softmax.h"
#include "kernels/f16_conv.h"
#include "kernels/f32_conv.h"
#include "kernels/f32_dwconv.h"
#include "kernels/f32_eltwise.h"
#include "kernels/sparse_conv.h"
#include "runtime/op_table.h"

namespace finch::runtime {

namespace {

using Outs = std::vector<Tensor>;

namespace attr = ops::attr;

ops::Pool2dParams pool_params(const Node& n) { return ops::pool2d_from_json(n.attrs, node_where(n)); }
ops::Conv2dParams conv_params(const Node& n) { return ops::conv2d_from_json(n.attrs, node_where(n)); }
double number(const Node& n, const ops::AttrSpec& s, double fallback = 0) {
  return ops::read_number(n.attrs, s, node_where(n), fallback);
}
int64_t integer(const Node& n, const ops::AttrSpec& s) { return ops::read_int(n.attrs, s, node_where(n)); }

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

// ---- fp32 conv2d (not depthwise) and linear on packed weights, prepared at load ----
//
// An f32 constant weight (and constant bias, f32 input) is packed once into the kernels of
// kernels/f32_conv.h; results differ from ops::conv2d / ops::linear (OpenBLAS, Winograd) by
// float rounding only. ProgramOptions::reference_kernels keeps the ops/ path, and so do the
// float stages of quantized programs (mixed precision, dynamic linear): those promise every value
// of their simulated model bit for bit (finch verify), and the simulation computes them in ops/.
bool quantized_program(const Graph& g) {
  for (const Value& v : g.values)
    if (v.dtype == DType::i8 || v.dtype == DType::u8) return true;
  return false;
}

bool packed_fp32(const Node& n, const Graph& g) {
  if (quantized_program(g)) return false;
  const Value& w = g.values[size_t(n.inputs[1])];
  if (!w.is_constant() || w.dtype != DType::f32 || w.data.dtype() != DType::f32) return false;
  if (n.inputs.size() > 2 && n.inputs[2] >= 0) {
    const Value& b = g.values[size_t(n.inputs[2])];
    if (!b.is_constant() || b.data.dtype() != DType::f32) return false;
  }
  return g.values[size_t(n.inputs[0])].dtype == DType::f32;
}

quant::kernels::FusedAct fused_act(const Node& n) {
  return quant::kernels::fused_act_from_name(ops::read_activation(n.attrs, node_where(n)));
}

template <class K>
class OneInputKernel final : public NodeKernel {
 public:
  explicit OneInputKernel(K k) : k_(std::move(k)) {}
  std::vector<Tensor> run(const std::vector<Tensor>& in) const override { return {k_.run(in[0])}; }

 private:
  K k_;
};

// ---- fp32 depthwise conv2d, prepared at load (kernels/f32_dwconv.h) ----
//
// A conv2d with groups == C > 1 and one input channel per group, f32 constant weights and a
// constant or absent bias runs on F32DepthwiseConv2d: weights packed once, the activation fused,
// and the same sums as ops::conv2d's depthwise path. (The kernel takes f16 weights too, but an
// fp16 program's nodes stay on the path tests/runtime/test_f16_program.cc pins down.)
bool f32_depthwise(const Node& n, const Graph& g) {
  const Value& x = g.values[size_t(n.inputs[0])];
  const Value& w = g.values[size_t(n.inputs[1])];
  if (x.dtype != DType::f32 || x.shape.size() != 4 || !w.is_constant() || w.shape.size() != 4) return false;
  if (w.dtype != DType::f32) return false;
  if (n.inputs.size() > 2 && n.inputs[2] >= 0 && !g.values[size_t(n.inputs[2])].is_constant()) return false;
  const int64_t C = x.shape[1];
  return C > 1 && conv_params(n).groups == C && w.shape[1] == 1;
}

std::unique_ptr<NodeKernel> prepare_f32_dwconv(const Node& n, const Graph& g) {
  return std::make_unique<OneInputKernel<quant::kernels::F32DepthwiseConv2d>>(quant::kernels::F32DepthwiseConv2d(
      g.values[size_t(n.inputs[1])].data, bias_constant(n, g), conv_params(n),
      fused_act(n)));
}

std::unique_ptr<NodeKernel> prepare_conv2d(const Node& n, const Graph& g) {
  if (f32_depthwise(n, g)) return prepare_f32_dwconv(n, g);  // f32 weights: never native_fp16's
  if (!native_fp16(n, g)) {
    const Shape& xs = g.values[size_t(n.inputs[0])].shape;
    const Shape& ws = g.values[size_t(n.inputs[1])].shape;
    const ops::Conv2dParams p = conv_params(n);
    // Depthwise convs (groups = C > 1) are not GEMMs; a one-channel input with groups 1 (a stem) is.
    const bool depthwise = xs.size() == 4 && ws.size() == 4 && p.groups > 1 && ops::is_depthwise(xs[1], ws[0], p.groups);
    if (!packed_fp32(n, g) || xs.size() != 4 || ws.size() != 4 || depthwise) return nullptr;
    quant::kernels::F32Conv2d k(g.values[size_t(n.inputs[1])].data, bias_constant(n, g), p, fused_act(n), xs[2], xs[3]);
    return std::make_unique<OneInputKernel<quant::kernels::F32Conv2d>>(std::move(k));
  }
  quant::kernels::F16Conv2d k(g.values[size_t(n.inputs[1])].data, bias_constant(n, g), conv_params(n), fused_act(n));
  return std::make_unique<OneInputKernel<quant::kernels::F16Conv2d>>(std::move(k));
}

std::unique_ptr<NodeKernel> prepare_linear(const Node& n, const Graph& g) {
  if (!native_fp16(n, g)) {
    if (!packed_fp32(n, g)) return nullptr;
    quant::kernels::F32Linear k(g.values[size_t(n.inputs[1])].data, bias_constant(n, g), fused_act(n));
    return std::make_unique<OneInputKernel<quant::kernels::F32Linear>>(std::move(k));
  }
  quant::kernels::F16Linear k(g.values[size_t(n.inputs[1])].data, bias_constant(n, g), fused_act(n));
  return std::make_unique<OneInputKernel<quant::kernels::F16Linear>>(std::move(k));
}

}  // namespace

// The fp32 sparse kernels (op_table.h prepare_sparse): where the packed fp32 kernels would run
// (fp32 programs only: the float stages of quantized programs stay on ops/, see packed_fp32).
std::unique_ptr<NodeKernel> prepare_sparse_f32(const Node& n, const Graph& g, SparseKernels mode, double* sparsity) {
  if ((n.op != "conv2d" && n.op != "linear") || n.inputs.size() < 2 || !packed_fp32(n, g)) return nullptr;
  const Tensor& w = g.values[size_t(n.inputs[1])].data;
  const Shape& xs = g.values[size_t(n.inputs[0])].shape;
  if (w.dim() != (n.op == "conv2d" ? 4 : 2) || w.numel() == 0) return nullptr;
  ops::Conv2dParams p;
  if (n.op == "conv2d") {
    p = conv_params(n);
    if (p.groups != 1 || xs.size() != 4) return nullptr;  // grouped and depthwise convs keep their kernels
  }
  const SparseShape shape = sparse_shape_of(n.op == "conv2d", p, w.shape(), xs);
  const Tensor wc = w.contiguous();
  const double s = quant::kernels::zero_fraction(wc.data<float>(), wc.numel());
  if (!choose_sparse(mode, false, shape, s)) return nullptr;
  *sparsity = s;
  if (n.op == "conv2d")
    return std::make_unique<OneInputKernel<quant::kernels::F32SparseConv2d>>(
        quant::kernels::F32SparseConv2d(wc, bias_constant(n, g), p, fused_act(n)));
  return std::make_unique<OneInputKernel<quant::kernels::F32SparseLinear>>(
      quant::kernels::F32SparseLinear(wc, bias_constant(n, g), fused_act(n)));
}

namespace {

Outs batch_norm(const Node& n, const std::vector<Tensor>& in, const Graph&) {
  if (ops::read_bool(n.attrs, attr::training, node_where(n), false))
    fail(node_where(n), ": attribute 'training' is true; expected false (a program runs batch_norm in inference form)");
  return {ops::batch_norm(in[0], in[3], in[4], in[1], in[2], false, 0.0, number(n, attr::eps)).y};
}

Outs add(const Node& n, const std::vector<Tensor>& in, const Graph&) {
  Tensor y = ops::add(in[0], in[1], number(n, attr::alpha, 1.0));
  apply_activation(n, y);
  return {y};
}
// ---- prepared add / global average pool (kernels/f32_eltwise.h) ----
//
// The attributes are read once at load; run() makes one pass and one tensor (the plain fn makes
// a second tensor for the activation). Same bits as the fn; inputs the fast path does not take
// (broadcasting, strided views, f64) go through the ops/ calls the fn makes.
class AddKernel final : public NodeKernel {
 public:
  AddKernel(double alpha, quant::kernels::F32Act act) : alpha_(alpha), act_(act) {}
  std::vector<Tensor> run(const std::vector<Tensor>& in) const override {
    const Tensor &a = in[0], &b = in[1];
    if (a.dtype() != DType::f32 || b.dtype() != DType::f32 || a.shape() != b.shape() || !a.is_contiguous() ||
        !b.is_contiguous()) {
      Tensor y = ops::add(a, b, alpha_);
      if (act_ == quant::kernels::F32Act::relu) y = ops::relu(y);
      if (act_ == quant::kernels::F32Act::relu6) y = ops::relu6(y);
      return {y};
    }
    Tensor y = empty(a.shape(), DType::f32);
    quant::kernels::f32_add_act(a.data<float>(), b.data<float>(), float(alpha_), act_, y.data<float>(), a.numel());
    return {y};
  }

 private:
  double alpha_;
  quant::kernels::F32Act act_;
};

std::unique_ptr<NodeKernel> prepare_add(const Node& n, const Graph&) {
  return std::make_unique<AddKernel>(number(n, attr::alpha, 1.0),
                                     fused_act(n));
}

class GlobalAvgPoolKernel final : public NodeKernel {
 public:
  std::vector<Tensor> run(const std::vector<Tensor>& in) const override {
    const Tensor& x = in[0];
    // (The kernel gathers 16 planes with int32 offsets.)
    if (x.dtype() != DType::f32 || x.dim() < 3 || x.size(-1) < 1 || x.size(-2) < 1 ||
        x.size(-1) * x.size(-2) > INT32_MAX / 16)
      return {ops::adaptive_avg_pool2d(x, 1, 1)};
    const Tensor xc = x.contiguous();
    Shape s = x.shape();
    const int64_t HW = s[s.size() - 1] * s[s.size() - 2];
    s[s.size() - 1] = s[s.size() - 2] = 1;
    Tensor y = empty(s, DType::f32);
    quant::kernels::f32_global_avg_pool(xc.data<float>(), y.numel(), HW, y.data<float>());
    return {y};
  }
};

std::unique_ptr<NodeKernel> prepare_adaptive_avg_pool2d(const Node& n, const Graph&) {
  const ops::AdaptivePool2dAttrs o = ops::adaptive_pool2d_from_json(n.attrs, node_where(n));
  if (o.oh != 1 || o.ow != 1) return nullptr;
  return std::make_unique<GlobalAvgPoolKernel>();
}

Outs sub(const Node& n, const std::vector<Tensor>& in, const Graph&) {
  Tensor y = ops::sub(in[0], in[1], number(n, attr::alpha, 1.0));
  apply_activation(n, y);
  return {y};
}
Outs mul(const Node&, const std::vector<Tensor>& in, const Graph&) { return {ops::mul(in[0], in[1])}; }
Outs div(const Node&, const std::vector<Tensor>& in, const Graph&) { return {ops::div(in[0], in[1])}; }
Outs add_scalar(const Node& n, const std::vector<Tensor>& in, const Graph&) {
  return {ops::add_scalar(in[0], number(n, attr::value))};
}
Outs mul_scalar(const Node& n, const std::vector<Tensor>& in, const Graph&) {
  return {ops::mul_scalar(in[0], number(n, attr::value))};
}

template <Tensor (*F)(const Tensor&)>
Outs unary(const Node&, const std::vector<Tensor>& in, const Graph&) {
  return {F(in[0])};
}
Outs gelu(const Node&, const std::vector<Tensor>& in, const Graph&) { return {ops::gelu(in[0], "none")}; }
Outs gelu_tanh(const Node&, const std::vector<Tensor>& in, const Graph&) { return {ops::gelu(in[0], "tanh")}; }
Outs leaky_relu(const Node& n, const std::vector<Tensor>& in, const Graph&) {
  return {ops::leaky_relu(in[0], number(n, attr::negative_slope))};
}

Outs max_pool2d(const Node& n, const std::vector<Tensor>& in, const Graph&) {
  return {ops::max_pool2d(in[0], pool_params(n)).y};
}
Outs avg_pool2d(const Node& n, const std::vector<Tensor>& in, const Graph&) {
  return {ops::avg_pool2d(in[0], pool_params(n))};
}
Outs adaptive_avg_pool2d(const Node& n, const std::vector<Tensor>& in, const Graph&) {
  const ops::AdaptivePool2dAttrs o = ops::adaptive_pool2d_from_json(n.attrs, node_where(n));
  return {ops::adaptive_avg_pool2d(in[0], o.oh, o.ow)};
}
Outs mean(const Node& n, const std::vector<Tensor>& in, const Graph&) {
  return {ops::mean(in[0], ops::read_ints(n.attrs, attr::dims, node_where(n)),
                   ops::read_bool(n.attrs, attr::keepdim, node_where(n), false))};
}
Outs softmax(const Node& n, const std::vector<Tensor>& in, const Graph&) {
  return {ops::softmax(in[0], integer(n, attr::dim))};
}
Outs cat(const Node& n, const std::vector<Tensor>& in, const Graph&) { return {ops::cat(in, integer(n, attr::dim))}; }

}  // namespace

// Shape ops work on any dtype (integer codes keep their quantization).
Outs flatten_op(const Node& n, const std::vector<Tensor>& in, const Graph&) {
  return {in[0].contiguous().flatten(integer(n, attr::start_dim), integer(n, attr::end_dim))};
}
// The recorded shape holds the capture's batch size in dim 0 when the op kept the batch; the
// program runs any batch, so dim 0 follows the input.
Outs reshape_op(const Node& n, const std::vector<Tensor>& in, const Graph& g) {
  Shape s = ops::read_ints(n.attrs, attr::shape, node_where(n));
  const Value& src = g.values[size_t(n.inputs[0])];
  if (!s.empty() && !src.shape.empty() && s[0] == src.shape[0] && in[0].dim() > 0) s[0] = in[0].size(0);
  return {in[0].contiguous().reshape(s)};
}

// Constant padding. On integer codes only a zero pad exists: it fills the zero point, the code of
// 0 on every grid (the lowering keeps any other pad in float).
Outs pad_op(const Node& n, const std::vector<Tensor>& in, const Graph& g) {
  const std::vector<int64_t> pads = ops::read_ints(n.attrs, attr::pads, node_where(n));
  double v = ops::read_number(n.attrs, attr::value, node_where(n));
  if (!is_floating(in[0].dtype())) {
    const Value& src = g.values[size_t(n.inputs[0])];
    if (v != 0.0 || !src.quant || src.quant->zero_point.size() != 1)
      fail(node_where(n), ": pads integer codes; expected value 0 and a per-tensor quantized input, found value ", v,
           src.quant ? "" : " and no quantization");
    v = double(src.quant->zero_point[0]);
  }
  return {ops::pad(in[0], pads, "constant", v)};
}

// The fp32 half of the load-time fusion (op_table.h): a conv2d without an activation whose only
// reader is an add with alpha 1 runs as one F32Conv2d with that add's activation and the add's
// other operand as its residual. The epilogues (f32_gemm.h, f32_winograd.h) round acc + bias,
// then add the residual, then clamp: the unfused conv's stored value plus the operand, the
// add's own two roundings, so the bits are the unfused pair's.
std::unique_ptr<NodeKernel> prepare_conv2d_add(const Node& n, const Node& add, int conv_operand, const Graph& g) {
  if (n.op != "conv2d" || add.op != "add" || (conv_operand != 0 && conv_operand != 1) || add.inputs.size() != 2 ||
      add.inputs[size_t(conv_operand)] != n.outputs[0] || add.inputs[0] == add.inputs[1] || n.inputs.size() < 2)
    return nullptr;
  if (number(add, attr::alpha, 1.0) != 1.0 || ops::read_activation(n.attrs, node_where(n)) != "none") return nullptr;
  if (f32_depthwise(n, g) || native_fp16(n, g) || !packed_fp32(n, g)) return nullptr;
  const Value& c = g.values[size_t(n.outputs[0])];
  const Value& r = g.values[size_t(add.inputs[size_t(1 - conv_operand)])];
  const Value& y = g.values[size_t(add.outputs[0])];
  if (c.dtype != DType::f32 || r.dtype != DType::f32 || y.dtype != DType::f32 || r.shape != c.shape || y.shape != c.shape)
    return nullptr;  // broadcasting or another dtype: the add's own path
  const Shape& xs = g.values[size_t(n.inputs[0])].shape;
  const Shape& ws = g.values[size_t(n.inputs[1])].shape;
  const ops::Conv2dParams p = conv_params(n);
  if (xs.size() != 4 || ws.size() != 4 || (p.groups > 1 && ops::is_depthwise(xs[1], ws[0], p.groups))) return nullptr;
  // The conv node's one kernel (its weights packed once): given the conv's inputs it is the plain
  // conv (run_all), given the add's other operand after them (executor.cc appends it), the pair.
  class Fused final : public NodeKernel {
   public:
    Fused(quant::kernels::F32Conv2d k, quant::kernels::FusedAct act, size_t conv_inputs)
        : k_(std::move(k)), act_(act), conv_inputs_(conv_inputs) {}
    std::vector<Tensor> run(const std::vector<Tensor>& in) const override {
      if (in.size() <= conv_inputs_) return {k_.run(in[0])};
      return {k_.run(in[0], in.back().contiguous(), act_)};
    }

   private:
    quant::kernels::F32Conv2d k_;
    quant::kernels::FusedAct act_;
    size_t conv_inputs_;
  };
  quant::kernels::F32Conv2d k(g.values[size_t(n.inputs[1])].data, bias_constant(n, g), p, fused_act(n), xs[2], xs[3]);
  return std::make_unique<Fused>(std::move(k), fused_act(add), n.inputs.size());
}

const std::vector<std::pair<std::string, OpImpl>>& float_ops() {
  static const std::vector<std::pair<std::string, OpImpl>> t = {
      {"conv2d", {conv2d, prepare_conv2d}},
      {"linear", {linear, prepare_linear}},
      {"batch_norm", {batch_norm}},
      {"add", {add, prepare_add}},
      {"sub", {sub}},
      {"mul", {mul}},
      {"div", {div}},
      {"add_scalar", {add_scalar}},
      {"mul_scalar", {mul_scalar}},
      {"relu", {unary<ops::relu>}},
      {"relu6", {unary<ops::relu6>}},
      {"sigmoid", {unary<ops::sigmoid>}},
      {"tanh", {unary<ops::tanh>}},
      {"silu", {unary<ops::silu>}},
      {"hardswish", {unary<ops::hardswish>}},
      {"hardsigmoid", {unary<ops::hardsigmoid>}},
      {"gelu", {gelu}},
      {"gelu_tanh", {gelu_tanh}},
      {"leaky_relu", {leaky_relu}},
      {"max_pool2d", {max_pool2d}},
      {"avg_pool2d", {avg_pool2d}},
      {"adaptive_avg_pool2d", {adaptive_avg_pool2d, prepare_adaptive_avg_pool2d}},
      {"mean", {mean}},
      {"softmax", {softmax}},
      {"cat", {cat}},
      {"flatten", {flatten_op}},
      {"reshape", {reshape_op}},
      {"pad", {pad_op}},
  };
  return t;
}

std::string node_where(const Node& n) { return "node '" + n.name + "' (" + n.op + ")"; }

void apply_activation(const Node& n, Tensor& y) {
  const std::string act = ops::read_activation(n.attrs, node_where(n));
  if (act == "relu") y = ops::relu(y);
  else if (act == "relu6") y = ops::relu6(y);
}

const OpImpl* find_op(const std::string& op) {
  static const std::map<std::string, OpImpl> all = [] {
    std::map<std::string, OpImpl> m;
    for (const auto& [k, v] : float_ops()) m[k] = v;
    for (const auto& [k, v] : quant_ops()) m[k] = v;
    for (const auto& [k, v] : rnn_ops()) m[k] = v;
    return m;
  }();
  const auto it = all.find(op);
  return it == all.end() ? nullptr : &it->second;
}

}  // namespace finch::runtime
