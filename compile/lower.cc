// lower_quantized: a captured QDQ graph → the integer program (see passes.h for the rules).
#include <set>

#include "framework/error.h"
#include "compile/capture.h"
#include "kernels/quantize.h"
#include "kernels/requant.h"
#include "ops/op_attrs.h"
#include "compile/passes.h"

namespace finch::compile {

using runtime::Graph;
using runtime::Node;
using runtime::QuantInfo;
using runtime::Value;

namespace {

QuantInfo info_of(const quant::QParams& p) { return {p.scale, p.zero_point, p.axis, p.qmin, p.qmax}; }

// The storage type of codes in [qmin, qmax]; programs carry 8-bit activations.
DType code_dtype(const quant::QParams& p) {
  if (p.qmin >= -128 && p.qmax <= 127) return DType::i8;
  if (p.qmin >= 0 && p.qmax <= 255) return DType::u8;
  fail("lower: the program's integer kernels take 8-bit codes, got the range [", p.qmin, ", ", p.qmax, "]");
}

bool same_params(const QuantInfo& a, const quant::QParams& b) {
  return a.scale == b.scale && a.zero_point == b.zero_point && a.axis == b.axis && a.qmin == b.qmin &&
         a.qmax == b.qmax;
}

class Lowering {
 public:
  explicit Lowering(const Graph& g) : g_(g), fl_(g.values.size(), -1), cd_(g.values.size(), -1) {
    readers_.assign(g.values.size(), {});
    for (size_t i = 0; i < g.nodes.size(); ++i)
      for (int32_t v : g.nodes[i].inputs)
        if (v >= 0) readers_[size_t(v)].push_back(int32_t(i));
    for (int32_t v : g.outputs) readers_[size_t(v)].push_back(-1);
  }

  Graph run() {
    out_.meta = g_.meta;
    for (int32_t v : g_.inputs) {
      Value c = g_.values[size_t(v)];
      fl_[size_t(v)] = out_.add_value(std::move(c));
      out_.inputs.push_back(fl_[size_t(v)]);
    }
    absorbed_.assign(g_.nodes.size(), false);
    for (size_t i = 0; i < g_.nodes.size(); ++i)
      if (!absorbed_[i]) lower(g_.nodes[i]);
    for (int32_t v : g_.outputs) {
      const int32_t f = float_of(v);
      out_.values[size_t(f)].name = unique("output");
      out_.outputs.push_back(f);
    }
    return std::move(out_);
  }
  int integer_nodes = 0;

 private:
  const Graph& g_;
  Graph out_;
  std::vector<int32_t> fl_, cd_;  // per original value: its float / its codes value in out_
  std::vector<std::vector<int32_t>> readers_;
  std::vector<bool> absorbed_;
  std::set<std::string> names_;

  std::string unique(const std::string& base) {
    std::string s = base;
    for (int k = 1; names_.count(s); ++k) s = base + "_" + std::to_string(k);
    names_.insert(s);
    return s;
  }

  int32_t constant(const std::string& name, Tensor data, std::optional<QuantInfo> q = std::nullopt) {
    Value v;
    v.name = unique(name);
    v.shape = data.shape();
    v.dtype = data.dtype();
    v.data = std::move(data);
    v.quant = std::move(q);
    return out_.add_value(std::move(v));
  }
  int32_t activation(const std::string& name, const Shape& shape, DType dt, std::optional<QuantInfo> q = std::nullopt) {
    Value v;
    v.name = unique(name);
    v.shape = shape;
    v.dtype = dt;
    v.quant = std::move(q);
    return out_.add_value(std::move(v));
  }
  void emit(const std::string& op, const std::string& name, std::vector<int32_t> in, std::vector<int32_t> out,
            nlohmann::json attrs = nlohmann::json::object()) {
    Node n;
    n.op = op;
    n.name = name;
    n.inputs = std::move(in);
    n.outputs = std::move(out);
    n.attrs = std::move(attrs);
    if (op.size() > 1 && op[0] == 'q' && op != "quantize") ++integer_nodes;
    if (op == "dq_linear") ++integer_nodes;
    out_.nodes.push_back(std::move(n));
  }

  const Value& val(int32_t v) const { return g_.values[size_t(v)]; }

  // The float form of original value v (a dequantize of its codes when only codes exist).
  int32_t float_of(int32_t v) {
    if (v < 0) return -1;
    if (fl_[size_t(v)] >= 0) return fl_[size_t(v)];
    if (val(v).is_constant()) return fl_[size_t(v)] = constant(val(v).name, val(v).data);
    if (cd_[size_t(v)] < 0) fail("lower: value '", val(v).name, "' is used before it is computed");
    const int32_t f = activation(val(v).name + ".dq", val(v).shape, DType::f32);
    emit("dequantize", val(v).name, {cd_[size_t(v)]}, {f});
    return fl_[size_t(v)] = f;
  }

  // The single fake_quant node reading v, when v has exactly one reader and it is one.
  int32_t only_fake_quant_reader(int32_t v) const {
    const auto& r = readers_[size_t(v)];
    if (r.size() != 1 || r[0] < 0 || g_.nodes[size_t(r[0])].op != "fake_quant") return -1;
    return r[0];
  }

  // The reshape node reading v alone when it only drops the H = 1 axis of a conv2d's
  // [N, C, 1, L] output (a conv1d, compile/capture.cc) and nothing else reads v; else -1.
  int32_t only_view_reader(int32_t v) const {
    const auto& r = readers_[size_t(v)];
    if (r.size() != 1 || r[0] < 0 || g_.nodes[size_t(r[0])].op != "reshape") return -1;
    const Shape& a = val(v).shape;
    const Shape& b = val(g_.nodes[size_t(r[0])].outputs[0]).shape;
    if (a.size() != 4 || a[2] != 1 || b != Shape{a[0], a[1], a[3]}) return -1;
    return r[0];
  }

  static std::string where_of(const Node& n) { return "lower: node '" + n.name + "' (" + n.op + ")"; }
  static std::string act_of(const Node& n) { return ops::read_activation(n.attrs, where_of(n)); }

  void lower(const Node& n) {
    if (n.op == "fake_quant") return lower_fake_quant(n);
    if ((n.op == "conv2d" || n.op == "linear") && n.attrs.contains("weight_quant")) return lower_weighted(n);
    if ((n.op == "conv2d" || n.op == "linear") && n.attrs.value("weight_fp16", false)) return lower_fp16(n);
    if (n.op == "add" && lower_add(n)) return;
    // Zeroing the steps past each length keeps codes on their grid (the zero point is 0's code).
    if (n.op == "mask_steps" && n.inputs.size() == 2 && cd_[size_t(n.inputs[0])] >= 0) {
      const Value& cx = out_.values[size_t(cd_[size_t(n.inputs[0])])];
      if (cx.quant && cx.quant->zero_point.size() == 1) {
        const int32_t y = n.outputs[0];
        cd_[size_t(y)] = activation(val(y).name, val(y).shape, cx.dtype, cx.quant);
        emit(n.op, n.name, {cd_[size_t(n.inputs[0])], float_of(n.inputs[1])}, {cd_[size_t(y)]}, n.attrs);
        return;
      }
    }
    if (n.inputs.size() == 1 && cd_[size_t(n.inputs[0])] >= 0 && lower_code_op(n)) return;
    float_node(n);
  }

  void float_node(const Node& n, std::vector<int32_t> in = {}) {
    if (in.empty())
      for (int32_t v : n.inputs) in.push_back(float_of(v));
    std::vector<int32_t> out;
    // The captured dtype: float ops give f32, integer ones (a model's lengths arithmetic) keep theirs.
    for (int32_t v : n.outputs) out.push_back(fl_[size_t(v)] = activation(val(v).name, val(v).shape, val(v).dtype));
    nlohmann::json a = n.attrs;
    a.erase("weight_quant"), a.erase("weight_fp16"), a.erase("dynamic");
    emit(n.op, n.name, std::move(in), std::move(out), std::move(a));
  }

  void lower_fake_quant(const Node& n) {
    const quant::QParams p = qparams_from_json(n.attrs);
    const int32_t u = n.inputs[0], v = n.outputs[0];
    if (p.per_channel()) fail("lower: activation '", val(v).name, "' is quantized per channel; programs take per-tensor activations");
    if (cd_[size_t(u)] >= 0 && same_params(*out_.values[size_t(cd_[size_t(u)])].quant, p)) {
      cd_[size_t(v)] = cd_[size_t(u)];  // already on this grid (the unit's own requantization)
      return;
    }
    const int32_t c = activation(val(v).name, val(v).shape, code_dtype(p), info_of(p));
    emit("quantize", n.name, {float_of(u)}, {c});
    cd_[size_t(v)] = c;
  }

  void lower_fp16(const Node& n) {
    std::vector<int32_t> in{float_of(n.inputs[0]), constant(val(n.inputs[1]).name, val(n.inputs[1]).data.to(DType::f16))};
    if (n.inputs.size() > 2) in.push_back(float_of(n.inputs[2]));
    float_node(n, in);
  }

  void lower_weighted(const Node& n) {
    const quant::QParams wq = qparams_from_json(n.attrs.at("weight_quant"));
    const Tensor w = val(n.inputs[1]).data;
    const bool has_bias = n.inputs.size() > 2 && n.inputs[2] >= 0;
    const int64_t oc = w.size(0);
    bool symmetric = true;
    for (int32_t z : wq.zero_point) symmetric = symmetric && z == 0;
    const bool weight_ok = symmetric && (!wq.per_channel() || wq.axis == 0) && wq.qmin >= -128 && wq.qmax <= 127;
    const std::string wname = val(n.inputs[1]).name;
    if (n.op == "linear" && n.attrs.value("dynamic", false) && weight_ok) {
      const int32_t wc = constant(wname, quantize(w, wq), info_of(wq));
      const int32_t y = n.outputs[0];
      fl_[size_t(y)] = activation(val(y).name, val(y).shape, DType::f32);
      emit("dq_linear", n.name, {float_of(n.inputs[0]), wc, has_bias ? float_of(n.inputs[2]) : -1}, {fl_[size_t(y)]},
           {{ops::attr::act.name, act_of(n)}});
      return;
    }
    const int32_t x = n.inputs[0];
    int32_t fq = only_fake_quant_reader(n.outputs[0]);
    // A conv1d (captured as reshape → conv2d → reshape): its unit's requantization reads the
    // [N, C, L] view of the conv2d's output.
    const int32_t view = n.op == "conv2d" && fq < 0 ? only_view_reader(n.outputs[0]) : -1;
    if (view >= 0) fq = only_fake_quant_reader(g_.nodes[size_t(view)].outputs[0]);
    if (!weight_ok || cd_[size_t(x)] < 0 || fq < 0) {
      // The simulated model ran this unit in float with fake-quantized weights: so does the program.
      std::vector<int32_t> in{float_of(x), constant(wname, dequantize(quantize(w, wq), wq))};
      if (n.inputs.size() > 2) in.push_back(float_of(n.inputs[2]));
      return float_node(n, in);
    }
    const Node& f = g_.nodes[size_t(fq)];
    const quant::QParams po = qparams_from_json(f.attrs);
    const QuantInfo& pi = *out_.values[size_t(cd_[size_t(x)])].quant;
    const std::vector<float> sw = wq.per_channel() ? wq.scale : std::vector<float>(size_t(oc), wq.scale[0]);
    std::vector<float> b(size_t(oc), 0.f);
    if (has_bias) b = val(n.inputs[2]).data.contiguous().to_vector<float>();
    const auto bq = quant::quantize_bias(b, pi.scale[0], sw);
    Tensor bias = empty({oc}, DType::i32);
    for (int64_t c = 0; c < oc; ++c) bias.data<int32_t>()[c] = bq[size_t(c)];
    const quant::QRange r = quant::fused_activation_range(act_of(n), po.scale[0], po.zero_point[0], {po.qmin, po.qmax});
    // The int8 node's attributes: the conv's own (qlinear has none) and the code range with the
    // fused activation folded in.
    nlohmann::json a = n.op == "conv2d" ? ops::to_json(ops::conv2d_from_json(n.attrs, where_of(n))) : nlohmann::json::object();
    a.update(ops::to_json(ops::CodeRange{int32_t(r.qmin), int32_t(r.qmax)}));
    const int32_t y = f.outputs[0];
    cd_[size_t(y)] = activation(val(y).name, val(y).shape, code_dtype(po), info_of(po));
    int32_t out = cd_[size_t(y)];
    if (view >= 0) out = activation(val(n.outputs[0]).name, val(n.outputs[0]).shape, code_dtype(po), info_of(po));
    const std::string base = wname.substr(0, wname.rfind('.'));
    emit(n.op == "conv2d" ? "qconv2d" : "qlinear", n.name,
         // rq (input 3) is left out: the runtime derives it from the stored scales (ops.md).
         {cd_[size_t(x)], constant(wname, quantize(w, wq), info_of(wq)), constant(base + ".bias_i32", bias), -1},
         {out}, a);
    if (view >= 0) {
      const Node& r = g_.nodes[size_t(view)];
      emit("reshape", r.name, {out}, {cd_[size_t(y)]}, r.attrs);
      absorbed_[size_t(view)] = true;
    }
    absorbed_[size_t(fq)] = true;
  }

  bool lower_add(const Node& n) {
    const int32_t a = n.inputs[0], b = n.inputs[1];
    const int32_t fq = only_fake_quant_reader(n.outputs[0]);
    if (cd_[size_t(a)] < 0 || cd_[size_t(b)] < 0 || fq < 0 || ops::read_number(n.attrs, ops::attr::alpha, where_of(n), 1.0) != 1.0)
      return false;
    if (val(a).shape != val(b).shape) return false;
    const Node& f = g_.nodes[size_t(fq)];
    const quant::QParams po = qparams_from_json(f.attrs);
    const quant::QRange r = quant::fused_activation_range(act_of(n), po.scale[0], po.zero_point[0], {po.qmin, po.qmax});
    const int32_t y = f.outputs[0];
    cd_[size_t(y)] = activation(val(y).name, val(y).shape, code_dtype(po), info_of(po));
    emit("qadd", n.name, {cd_[size_t(a)], cd_[size_t(b)]}, {cd_[size_t(y)]},
         ops::to_json(ops::CodeRange{int32_t(r.qmin), int32_t(r.qmax)}));
    absorbed_[size_t(fq)] = true;
    return true;
  }

  // Ops that only move, select or clamp codes: the output keeps the input's quantization.
  bool lower_code_op(const Node& n) {
    static const std::set<std::string> same = {"flatten", "reshape", "pad"};
    std::string op;
    // A zero pad of codes fills the zero point (0 is on every grid); any other value is not
    // exactly representable in general, so that pad runs in float.
    if (n.op == "pad" && n.attrs.value("value", 0.0) != 0.0) return false;
    if (same.count(n.op)) op = n.op;
    else if (n.op == "relu" || n.op == "relu6" || n.op == "max_pool2d") op = "q" + n.op;
    else return false;
    const int32_t x = n.inputs[0], y = n.outputs[0];
    const Value& cx = out_.values[size_t(cd_[size_t(x)])];
    cd_[size_t(y)] = activation(val(y).name, val(y).shape, cx.dtype, cx.quant);
    emit(op, n.name, {cd_[size_t(x)]}, {cd_[size_t(y)]}, n.attrs);
    return true;
  }
};

}  // namespace

int lower_quantized(Graph& g) {
  fuse_activations(g);
  Lowering l(g);
  Graph out = l.run();
  g = std::move(out);
  remove_dead(g);
  return l.integer_nodes;
}

}  // namespace finch::compile
