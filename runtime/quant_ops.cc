// The runtime's integer ops: quantize/dequantize at the float boundaries and the int8 ops of
// ops.md. Each op's plain fn runs the exact reference kernel (kernels/reference.h); where an
// optimized kernel exists (kernels/qs8_*.h: packed-weight GEMM convolution and linear,
// direct depthwise convolution, element-wise ops), `prepare` builds it once at load and the
// program runs on it. Both give identical codes (tests/quant/test_lower.cc checks whole programs).
#include "framework/error.h"
#include "kernels/qs8_conv.h"
#include "kernels/qs8_dq_linear.h"
#include "kernels/qs8_dwconv.h"
#include "kernels/qs8_eltwise.h"
#include "kernels/quantize.h"
#include "kernels/reference.h"
#include "kernels/sparse_conv.h"
#include "ops/op_attrs.h"
#include "runtime/op_table.h"

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

// The per-tensor (scale, zero point) of an activation value.
struct Act {
  float s;
  int32_t z;
  DType dtype;
};
Act act_of(const Node& n, const Graph& g, int32_t v) {
  const quant::QParams p = qparams_of(n, g, v);
  if (p.per_channel()) fail("node '", n.name, "' (", n.op, "): activation '", g.values[size_t(v)].name, "' must be quantized per tensor");
  return {p.scale[0], p.zero_point[0], g.values[size_t(v)].dtype};
}

// The (multiplier, shift) table of a qconv2d/qlinear: its rq input when the program carries one,
// else derived from the scales the program stores (s_x·s_w[c]/s_y through the spec's
// quantize_multiplier, exactly what lowering would have stored: scales read back bit for bit).
// Deriving it keeps 8 bytes per output channel out of the file.
Tensor requant_of(const Node& n, const std::vector<Tensor>& in, const Graph& g, const Act& x, const Act& y) {
  if (in.size() > 3 && in[3].defined()) return in[3];
  const quant::QParams pw = qparams_of(n, g, n.inputs[1]);
  const int64_t oc = in[1].dim() > 0 ? in[1].size(0) : 0;
  if (pw.per_channel() && int64_t(pw.scale.size()) != oc)
    fail("node '", n.name, "' (", n.op, "): the weight has ", pw.scale.size(), " scales for ", oc, " output channels");
  const std::vector<float> sw = pw.per_channel() ? pw.scale : std::vector<float>(size_t(oc), pw.scale[0]);
  return quant::reference::rq_tensor(quant::quantize_multipliers(quant::requant_multipliers(x.s, sw, y.s)));
}

ops::Conv2dParams conv_params(const Node& n) { return ops::conv2d_from_json(n.attrs, node_where(n)); }
ops::Pool2dParams pool_params(const Node& n) { return ops::pool2d_from_json(n.attrs, node_where(n)); }
ops::CodeRange code_range(const Node& n) { return ops::code_range_from_json(n.attrs, node_where(n)); }
int64_t dim_of(const Node& n) { return ops::read_int(n.attrs, ops::attr::dim, node_where(n)); }

Outs qconv2d(const Node& n, const std::vector<Tensor>& in, const Graph& g) {
  const Act x = act_of(n, g, n.inputs[0]), y = act_of(n, g, n.outputs[0]);
  const ops::CodeRange r = code_range(n);
  return {quant::reference::qconv2d(in[0], x.z, in[1], in[2], requant_of(n, in, g, x, y), conv_params(n), y.z, r.qmin,
                                    r.qmax, y.dtype)};
}

Outs qlinear(const Node& n, const std::vector<Tensor>& in, const Graph& g) {
  const Act x = act_of(n, g, n.inputs[0]), y = act_of(n, g, n.outputs[0]);
  const ops::CodeRange r = code_range(n);
  return {quant::reference::qlinear(in[0], x.z, in[1], in[2], requant_of(n, in, g, x, y), y.z, r.qmin, r.qmax,
                                    y.dtype)};
}

// The add of two quantized tensors as the simulated model computes it (docs/quantization.md §7):
// the f32 rule of reference::qadd; a fused ReLU/ReLU6 narrowed [qmin, qmax].
// The operands of a qadd node (either kernel): one shape, the declared dtypes, i8/u8 codes.
void check_qadd_operands(const std::string& node, const std::vector<Tensor>& in, const Act& a, const Act& b,
                         const Act& y) {
  if (in[0].shape() != in[1].shape() || in[0].dtype() != a.dtype || in[1].dtype() != b.dtype || a.dtype != y.dtype)
    fail("node '", node, "' (qadd): expected two operands of one shape and the declared dtypes, got ",
         shape_str(in[0].shape()), " and ", shape_str(in[1].shape()));
  if (y.dtype != DType::i8 && y.dtype != DType::u8)
    fail("node '", node, "' (qadd): expected i8 or u8 codes, got ", dtype_name(y.dtype));
}

Outs qadd(const Node& n, const std::vector<Tensor>& in, const Graph& g) {
  const Act a = act_of(n, g, n.inputs[0]), b = act_of(n, g, n.inputs[1]), y = act_of(n, g, n.outputs[0]);
  check_qadd_operands(n.name, in, a, b, y);
  const ops::CodeRange r = code_range(n);
  return {quant::reference::qadd(in[0], a.s, a.z, in[1], b.s, b.z, y.s, y.z, r.qmin, r.qmax, y.dtype)};
}

Outs qmax_pool2d(const Node& n, const std::vector<Tensor>& in, const Graph&) {
  return {quant::reference::qmax_pool2d(in[0], pool_params(n))};
}
Outs qavg_pool2d(const Node& n, const std::vector<Tensor>& in, const Graph& g) {
  const Act x = act_of(n, g, n.inputs[0]), y = act_of(n, g, n.outputs[0]);
  const quant::QParams py = qparams_of(n, g, n.outputs[0]);
  return {quant::reference::qavg_pool2d(in[0], pool_params(n), x.s, x.z, y.s, y.z, int32_t(py.qmin), int32_t(py.qmax),
                                        y.dtype)};
}
Outs qadaptive_avg_pool2d(const Node& n, const std::vector<Tensor>& in, const Graph& g) {
  const Act x = act_of(n, g, n.inputs[0]), y = act_of(n, g, n.outputs[0]);
  const quant::QParams py = qparams_of(n, g, n.outputs[0]);
  const ops::AdaptivePool2dAttrs o = ops::adaptive_pool2d_from_json(n.attrs, node_where(n));
  return {quant::reference::qadaptive_avg_pool2d(in[0], o.oh, o.ow, x.s, x.z, y.s, y.z, int32_t(py.qmin),
                                                 int32_t(py.qmax), y.dtype)};
}
Outs qrelu(const Node& n, const std::vector<Tensor>& in, const Graph& g) {
  const quant::QParams p = qparams_of(n, g, n.inputs[0]);
  return {quant::reference::qrelu(in[0], p.zero_point[0], int32_t(p.qmin), int32_t(p.qmax))};
}
Outs qrelu6(const Node& n, const std::vector<Tensor>& in, const Graph& g) {
  const quant::QParams p = qparams_of(n, g, n.inputs[0]);
  return {quant::reference::qrelu6(in[0], p.scale[0], p.zero_point[0], int32_t(p.qmin), int32_t(p.qmax))};
}
Outs qcat(const Node& n, const std::vector<Tensor>& in, const Graph& g) {
  std::vector<float> s;
  std::vector<int32_t> z;
  for (int32_t v : n.inputs) {
    const Act a = act_of(n, g, v);
    s.push_back(a.s);
    z.push_back(a.z);
  }
  const Act y = act_of(n, g, n.outputs[0]);
  const quant::QParams py = qparams_of(n, g, n.outputs[0]);
  return {quant::reference::qcat(in, s, z, dim_of(n), y.s, y.z, int32_t(py.qmin), int32_t(py.qmax), y.dtype)};
}
Outs dq_linear(const Node& n, const std::vector<Tensor>& in, const Graph& g) {
  const quant::QParams w = qparams_of(n, g, n.inputs[1]);
  const std::vector<float> sw = w.per_channel() ? w.scale : std::vector<float>(size_t(in[1].size(0)), w.scale[0]);
  const Tensor b = in.size() > 2 ? in[2] : Tensor();  // a node may list only x and w
  const std::string act = ops::read_activation(n.attrs, node_where(n));
  if (ops::read_bool(n.attrs, ops::attr::per_row, node_where(n), false))
    return {quant::reference::dq_linear_rows(in[0], in[1], sw, b, act)};
  return {quant::reference::dq_linear(in[0], in[1], sw, b, act)};
}

// ---- optimized kernels, prepared at load ----

// A NodeKernel around a callable holding everything the node needs.
template <class F>
class FnKernel final : public NodeKernel {
 public:
  explicit FnKernel(F f) : f_(std::move(f)) {}
  std::vector<Tensor> run(const std::vector<Tensor>& in) const override { return f_(in); }

 private:
  F f_;
};
template <class F>
std::unique_ptr<NodeKernel> kernel(F f) {
  return std::make_unique<FnKernel<F>>(std::move(f));
}

bool constant_or_absent(const Node& n, const Graph& g, size_t i) {
  return i >= n.inputs.size() || n.inputs[i] < 0 || g.values[size_t(n.inputs[i])].is_constant();
}
Tensor constant_input(const Node& n, const Graph& g, size_t i) {
  return i < n.inputs.size() && n.inputs[i] >= 0 ? g.values[size_t(n.inputs[i])].data : Tensor();
}

// The (multiplier, shift) pairs of a qconv2d/qlinear from its constants, as requant_of derives them.
std::vector<quant::FixedPointMultiplier> multipliers_of(const Node& n, const Graph& g, const Act& x, const Act& y) {
  std::vector<Tensor> in;
  for (size_t i = 0; i < n.inputs.size(); ++i) in.push_back(constant_input(n, g, i));
  return quant::reference::rq_multipliers(requant_of(n, in, g, x, y), in[1].size(0), n.op.c_str());
}

std::unique_ptr<NodeKernel> prepare_qconv2d(const Node& n, const Graph& g) {
  if (!constant_or_absent(n, g, 1) || !constant_or_absent(n, g, 2) || !constant_or_absent(n, g, 3)) return nullptr;
  const Act x = act_of(n, g, n.inputs[0]), y = act_of(n, g, n.outputs[0]);
  const Tensor w = constant_input(n, g, 1), b = constant_input(n, g, 2);
  auto m = multipliers_of(n, g, x, y);
  const ops::Conv2dParams p = conv_params(n);
  const ops::CodeRange r = code_range(n);
  const int32_t qmin = r.qmin, qmax = r.qmax;
  const int64_t C = g.values[size_t(n.inputs[0])].shape.size() == 4 ? g.values[size_t(n.inputs[0])].shape[1] : -1;
  if (p.groups > 1 && p.groups == C && w.dim() == 4 && w.size(0) == C && w.size(1) == 1) {
    auto k = std::make_shared<const quant::kernels::QDepthwiseConv2d>(w, b, std::move(m), p, x.dtype, x.z, y.z, qmin,
                                                                       qmax, y.dtype);
    return kernel([k](const std::vector<Tensor>& in) { return std::vector<Tensor>{k->run(in[0])}; });
  }
  auto k = std::make_shared<const quant::kernels::QConv2d>(w, b, std::move(m), p, x.dtype, x.z, y.z, qmin, qmax,
                                                           y.dtype);
  return kernel([k](const std::vector<Tensor>& in) { return std::vector<Tensor>{k->run(in[0])}; });
}

}  // namespace

std::unique_ptr<NodeKernel> prepare_qconv2d_add(const Node& n, const Node& add, int conv_operand, const Graph& g) {
  if (n.op != "qconv2d" || add.op != "qadd" || (conv_operand != 0 && conv_operand != 1) || add.inputs.size() != 2 ||
      add.inputs[size_t(conv_operand)] != n.outputs[0] || add.inputs[0] == add.inputs[1])
    return nullptr;
  if (!constant_or_absent(n, g, 1) || !constant_or_absent(n, g, 2) || !constant_or_absent(n, g, 3)) return nullptr;
  const Act x = act_of(n, g, n.inputs[0]), y = act_of(n, g, n.outputs[0]);
  const Act r = act_of(add, g, add.inputs[size_t(1 - conv_operand)]), out = act_of(add, g, add.outputs[0]);
  // Only what the unfused qadd accepts (check_qadd_operands): its operand a at the output's dtype.
  const Act& a = conv_operand == 0 ? y : r;
  if (a.dtype != out.dtype || (out.dtype != DType::i8 && out.dtype != DType::u8)) return nullptr;
  const Tensor w = constant_input(n, g, 1), b = constant_input(n, g, 2);
  const ops::Conv2dParams p = conv_params(n);
  const int64_t C = g.values[size_t(n.inputs[0])].shape.size() == 4 ? g.values[size_t(n.inputs[0])].shape[1] : -1;
  if (p.groups > 1 && p.groups == C) return nullptr;  // depthwise: its own kernel, no fused add (yet)
  const ops::CodeRange cr = code_range(n), ar = code_range(add);
  auto k = std::make_shared<const quant::kernels::QConv2d>(w, b, multipliers_of(n, g, x, y), p, x.dtype, x.z, y.z,
                                                           cr.qmin, cr.qmax, y.dtype);
  const size_t conv_inputs = n.inputs.size();
  quant::kernels::QAddEpilogue e;
  e.s_conv = y.s, e.z_conv = y.z, e.s_r = r.s, e.z_r = r.z, e.r_dtype = r.dtype;
  e.s_out = out.s, e.z_out = out.z, e.qmin = ar.qmin, e.qmax = ar.qmax, e.out_dtype = out.dtype;
  e.conv_first = conv_operand == 0;
  // The conv node's one kernel (its weights packed once): given the conv's inputs it is the plain
  // conv (run_all), given the add's other operand after them (executor.cc appends it), the pair.
  return kernel([k, e, conv_inputs](const std::vector<Tensor>& in) {
    return std::vector<Tensor>{in.size() > conv_inputs ? k->run_add(in[0], in.back(), e) : k->run(in[0])};
  });
}

namespace {

std::unique_ptr<NodeKernel> prepare_qlinear(const Node& n, const Graph& g) {
  if (!constant_or_absent(n, g, 1) || !constant_or_absent(n, g, 2) || !constant_or_absent(n, g, 3)) return nullptr;
  const Act x = act_of(n, g, n.inputs[0]), y = act_of(n, g, n.outputs[0]);
  auto k = std::make_shared<const quant::kernels::QLinear>(constant_input(n, g, 1), constant_input(n, g, 2),
                                                           multipliers_of(n, g, x, y), x.dtype, x.z, y.z,
                                                           code_range(n).qmin, code_range(n).qmax, y.dtype);
  return kernel([k](const std::vector<Tensor>& in) { return std::vector<Tensor>{k->run(in[0])}; });
}

std::unique_ptr<NodeKernel> prepare_qadd(const Node& n, const Graph& g) {
  const Act a = act_of(n, g, n.inputs[0]), b = act_of(n, g, n.inputs[1]), y = act_of(n, g, n.outputs[0]);
  const ops::CodeRange r = code_range(n);
  const int32_t qmin = r.qmin, qmax = r.qmax;
  return kernel([name = n.name, a, b, y, qmin, qmax](const std::vector<Tensor>& in) {
    check_qadd_operands(name, in, a, b, y);
    return std::vector<Tensor>{quant::kernels::qs8_add(in[0], a.s, a.z, in[1], b.s, b.z, y.s, y.z, qmin, qmax, y.dtype)};
  });
}

std::unique_ptr<NodeKernel> prepare_qmax_pool2d(const Node& n, const Graph&) {
  const ops::Pool2dParams p = pool_params(n);
  return kernel([p](const std::vector<Tensor>& in) { return std::vector<Tensor>{quant::kernels::qs8_max_pool2d(in[0], p)}; });
}

std::unique_ptr<NodeKernel> prepare_qrelu(const Node& n, const Graph& g) {
  const quant::QParams q = qparams_of(n, g, n.inputs[0]);
  const int32_t z = q.zero_point[0], lo = int32_t(q.qmin), hi = int32_t(q.qmax);
  return kernel([z, lo, hi](const std::vector<Tensor>& in) { return std::vector<Tensor>{quant::kernels::qs8_relu(in[0], z, lo, hi)}; });
}

std::unique_ptr<NodeKernel> prepare_qrelu6(const Node& n, const Graph& g) {
  const quant::QParams q = qparams_of(n, g, n.inputs[0]);
  const float s = q.scale[0];
  const int32_t z = q.zero_point[0], lo = int32_t(q.qmin), hi = int32_t(q.qmax);
  return kernel([s, z, lo, hi](const std::vector<Tensor>& in) {
    return std::vector<Tensor>{quant::kernels::qs8_relu6(in[0], s, z, lo, hi)};
  });
}

std::unique_ptr<NodeKernel> prepare_dq_linear(const Node& n, const Graph& g) {
  if (!constant_or_absent(n, g, 1) || !constant_or_absent(n, g, 2)) return nullptr;
  const Tensor w = constant_input(n, g, 1);
  const quant::QParams q = qparams_of(n, g, n.inputs[1]);
  std::vector<float> sw = q.per_channel() ? q.scale : std::vector<float>(size_t(w.dim() > 0 ? w.size(0) : 0), q.scale[0]);
  auto k = std::make_shared<const quant::kernels::QDynamicLinear>(w, std::move(sw), constant_input(n, g, 2),
                                                                  ops::read_activation(n.attrs, node_where(n)));
  if (ops::read_bool(n.attrs, ops::attr::per_row, node_where(n), false))
    return kernel([k](const std::vector<Tensor>& in) { return std::vector<Tensor>{k->run_rows(in[0])}; });
  return kernel([k](const std::vector<Tensor>& in) { return std::vector<Tensor>{k->run(in[0])}; });
}

}  // namespace

std::unique_ptr<NodeKernel> prepare_sparse_int8(const Node& n, const Graph& g, SparseKernels mode, double* sparsity) {
  if ((n.op != "qconv2d" && n.op != "qlinear") || n.inputs.size() < 2) return nullptr;
  if (!constant_or_absent(n, g, 1) || !constant_or_absent(n, g, 2) || !constant_or_absent(n, g, 3)) return nullptr;
  const Tensor w = constant_input(n, g, 1), b = constant_input(n, g, 2);
  if (!w.defined() || w.dtype() != DType::i8 || w.dim() != (n.op == "qconv2d" ? 4 : 2) || w.numel() == 0) return nullptr;
  const Shape& xs = g.values[size_t(n.inputs[0])].shape;
  ops::Conv2dParams p;
  if (n.op == "qconv2d") {
    p = conv_params(n);
    if (p.groups != 1) return nullptr;  // grouped and depthwise convs keep their own kernels
  }
  const SparseShape shape = sparse_shape_of(n.op == "qconv2d", p, w.shape(), xs);
  const Tensor wc = w.contiguous();
  const double s = quant::kernels::zero_fraction(wc.data<int8_t>(), wc.numel());
  if (!choose_sparse(mode, true, shape, s)) return nullptr;
  const Act x = act_of(n, g, n.inputs[0]), y = act_of(n, g, n.outputs[0]);
  const ops::CodeRange r = code_range(n);
  *sparsity = s;
  if (n.op == "qconv2d") {
    auto k = std::make_shared<const quant::kernels::QSparseConv2d>(w, b, multipliers_of(n, g, x, y), p, x.dtype, x.z,
                                                                   y.z, r.qmin, r.qmax, y.dtype);
    return kernel([k](const std::vector<Tensor>& in) { return std::vector<Tensor>{k->run(in[0])}; });
  }
  auto k = std::make_shared<const quant::kernels::QSparseLinear>(w, b, multipliers_of(n, g, x, y), x.dtype, x.z, y.z,
                                                                 r.qmin, r.qmax, y.dtype);
  return kernel([k](const std::vector<Tensor>& in) { return std::vector<Tensor>{k->run(in[0])}; });
}

const std::vector<std::pair<std::string, OpImpl>>& quant_ops() {
  static const std::vector<std::pair<std::string, OpImpl>> t = {
      {"quantize", {quantize_op}},
      {"dequantize", {dequantize_op}},
      {"qconv2d", {qconv2d, prepare_qconv2d}},
      {"qlinear", {qlinear, prepare_qlinear}},
      {"qadd", {qadd, prepare_qadd}},
      {"qmax_pool2d", {qmax_pool2d, prepare_qmax_pool2d}},
      {"qavg_pool2d", {qavg_pool2d}},
      {"qadaptive_avg_pool2d", {qadaptive_avg_pool2d}},
      {"qrelu", {qrelu, prepare_qrelu}},
      {"qrelu6", {qrelu6, prepare_qrelu6}},
      {"qcat", {qcat}},
      {"dq_linear", {dq_linear, prepare_dq_linear}},
  };
  return t;
}

}  // namespace finch::runtime
