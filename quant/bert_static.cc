// quantize_bert_static (bert_static.h): calibrate the fp32 BERT program's activations on sample
// inputs, then rewrite it node by node into the static int8 encoder.
//
// Which values carry int8 codes: every encoder Linear's input (quantized from the float LayerNorm
// output, affine) and output (Q/K/V symmetric, since the attention's integer matmuls take zero
// points of 0; the rest affine), the attention's output, the GELU's output. A float node that
// reads a value only held as codes gets a dequantize in front of it, written into the value's
// original (f32) index, so the float part of the graph is untouched.
#include "quant/bert_static.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <set>

#include "compile/dynamic_rnn.h"
#include "compile/passes.h"
#include "framework/error.h"
#include "kernels/quantize.h"
#include "kernels/requant.h"
#include "ops/op_attrs.h"
#include "quant/observer.h"
#include "runtime/executor.h"

namespace finch::quant {

namespace {

using runtime::Graph;
using runtime::Node;
using runtime::QuantInfo;
using runtime::Value;

bool is_encoder_linear(const Node& n) { return n.op == "linear" && n.name.find(".encoder.layer.") != std::string::npos; }

QuantInfo info_of(const QParams& p) { return {p.scale, p.zero_point, p.axis, p.qmin, p.qmax}; }

}  // namespace

QSpec bert_activation_spec(bool symmetric) {
  QSpec s;
  s.bits = 8, s.is_signed = true, s.symmetric = symmetric, s.narrow = false, s.axis = -1;
  return s;
}

// int8 symmetric narrow weights, one scale per output row (as the dynamic program's).
QParams bert_weight_params(const Tensor& w) {
  const int64_t oc = w.size(0), k = w.size(1);
  const std::vector<float> v = w.contiguous().to_vector<float>();
  std::vector<float> lo(static_cast<size_t>(oc)), hi(static_cast<size_t>(oc));
  for (int64_t r = 0; r < oc; ++r) {
    float a = v[size_t(r * k)], b = a;
    for (int64_t c = 1; c < k; ++c) a = std::min(a, v[size_t(r * k + c)]), b = std::max(b, v[size_t(r * k + c)]);
    lo[size_t(r)] = a, hi[size_t(r)] = b;
  }
  QSpec s;
  s.bits = 8, s.is_signed = true, s.symmetric = true, s.narrow = true, s.axis = 0;
  return qparams(s, lo, hi);
}

namespace {

class Rewriter {
 public:
  Rewriter(const Graph& src, const std::map<int32_t, QParams>& q, const BertStaticOptions& o, BertStaticReport& r)
      : src_(src), q_(q), o_(o), r_(r), code_(src.values.size(), -1), f32_(src.values.size(), false) {
    out_.values = src.values;
    out_.inputs = src.inputs;
    out_.outputs = src.outputs;
    out_.meta = src.meta;
    for (int32_t v : src.inputs) f32_[size_t(v)] = true;
    for (size_t v = 0; v < src.values.size(); ++v)
      if (src.values[v].is_constant()) f32_[v] = true;
  }

  Graph run() {
    for (const Node& n : src_.nodes) {
      if (is_encoder_linear(n)) linear(n);
      else if (n.op == "attention") attention(n);
      else if (n.op == "gelu" && code_[size_t(n.inputs[0])] >= 0) gelu(n);
      else float_node(n);
    }
    for (int32_t v : out_.outputs) need_f32(v);
    return std::move(out_);
  }

 private:
  const Graph& src_;
  const std::map<int32_t, QParams>& q_;
  const BertStaticOptions& o_;
  BertStaticReport& r_;
  Graph out_;
  std::vector<int32_t> code_;  // per source value: its int8 codes' value, or -1
  std::vector<bool> f32_;      // per source value: its f32 form exists in out_

  const QParams& params(int32_t v) const {
    const auto it = q_.find(v);
    if (it == q_.end()) fail("static int8 BERT: no activation range for value '", src_.values[size_t(v)].name, "'");
    return it->second;
  }

  int32_t coded(int32_t v, const std::string& suffix) {
    const QParams& p = params(v);
    Value c;
    c.name = src_.values[size_t(v)].name + suffix;
    c.shape = src_.values[size_t(v)].shape;
    c.dtype = DType::i8;
    c.quant = info_of(p);
    return code_[size_t(v)] = out_.add_value(std::move(c));
  }

  int32_t constant(const std::string& name, Tensor t, std::optional<QuantInfo> q = std::nullopt) {
    Value c;
    c.name = name;
    c.shape = t.shape();
    c.dtype = t.dtype();
    c.quant = std::move(q);
    c.data = std::move(t);
    return out_.add_value(std::move(c));
  }

  void emit(const std::string& op, const std::string& name, std::vector<int32_t> in, std::vector<int32_t> outs,
            nlohmann::json attrs = nlohmann::json::object()) {
    Node n;
    n.op = op, n.name = name, n.inputs = std::move(in), n.outputs = std::move(outs), n.attrs = std::move(attrs);
    out_.nodes.push_back(std::move(n));
  }

  // The codes of f32 value v, quantized where first needed.
  int32_t need_codes(int32_t v, const std::string& node) {
    if (code_[size_t(v)] >= 0) return code_[size_t(v)];
    if (!f32_[size_t(v)]) fail("static int8 BERT: value '", src_.values[size_t(v)].name, "' read by '", node, "' has no form");
    const int32_t c = coded(v, ".q");
    emit("quantize", node + ".quantize", {v}, {c});
    return c;
  }

  void need_f32(int32_t v) {
    if (v < 0 || f32_[size_t(v)]) return;
    FINCH_CHECK(code_[size_t(v)] >= 0, "value ", src_.values[size_t(v)].name, " has no form");
    emit("dequantize", src_.values[size_t(v)].name + ".dequantize", {code_[size_t(v)]}, {v});
    f32_[size_t(v)] = true;
  }

  void linear(const Node& n) {
    const Value& wv = src_.values[size_t(n.inputs[1])];
    if (!wv.is_constant() || wv.shape.size() != 2 || n.attrs.value("act", std::string("none")) != "none")
      fail("static int8 BERT: expected Linear '", n.name, "' with a constant 2-d weight and no fused activation");
    const int32_t x = need_codes(n.inputs[0], n.name);
    const QParams wq = bert_weight_params(wv.data);
    const int64_t oc = wv.shape[0];
    std::vector<float> b(size_t(oc), 0.f);
    if (n.inputs.size() > 2 && n.inputs[2] >= 0) b = src_.values[size_t(n.inputs[2])].data.contiguous().to_vector<float>();
    const float s_x = out_.values[size_t(x)].quant->scale[0];
    const std::vector<int32_t> bq = quantize_bias(b, s_x, wq.scale);
    Tensor bias = empty({oc}, DType::i32);
    for (int64_t c = 0; c < oc; ++c) bias.data<int32_t>()[c] = bq[size_t(c)];
    const int32_t w = constant(wv.name, quantize(wv.data, wq), info_of(wq));
    const int32_t bc = constant(wv.name.substr(0, wv.name.rfind('.')) + ".bias_i32", bias);
    const QParams& po = params(n.outputs[0]);
    const int32_t y = coded(n.outputs[0], ".q");
    emit("qlinear", n.name, {x, w, bc, -1}, {y}, ops::to_json(ops::CodeRange{int32_t(po.qmin), int32_t(po.qmax)}));
    ++r_.linear;
  }

  void attention(const Node& n) {
    std::vector<int32_t> in;
    for (size_t i = 0; i < 3; ++i) {
      const int32_t c = code_[size_t(n.inputs[i])];
      if (c < 0 || out_.values[size_t(c)].quant->zero_point[0] != 0)
        fail("static int8 BERT: expected attention '", n.name, "' to read the symmetric int8 outputs of Linears");
      in.push_back(c);
    }
    in.push_back(n.inputs.size() > 3 ? n.inputs[3] : -1);
    if (in[3] >= 0) need_f32(in[3]);
    emit("qattention", n.name, in, {coded(n.outputs[0], ".q")}, {{ops::attr::heads.name, n.attrs.at("heads")}});
    ++r_.attention;
  }

  void gelu(const Node& n) {
    emit("qgelu", n.name, {code_[size_t(n.inputs[0])]}, {coded(n.outputs[0], ".q")},
         {{ops::attr::integer.name, o_.integer_gelu}});
    ++r_.gelu;
  }

  void float_node(const Node& n) {
    for (int32_t v : n.inputs) need_f32(v);
    emit(n.op, n.name, n.inputs, n.outputs, n.attrs);
    for (int32_t v : n.outputs) f32_[size_t(v)] = true;
  }
};

}  // namespace

namespace {

void check_fp32(const Graph& fp32) {
  if (fp32.meta.value("model", std::string()) != "bert_qa" || fp32.meta.value("precision", std::string()) != "fp32")
    fail("static int8 BERT: expected an fp32 BERT QA program (meta.model \"bert_qa\", precision \"fp32\"), found ",
         fp32.meta.dump());
}

// The values to quantize, and how: outputs read by the attention symmetric, the rest affine.
std::map<int32_t, bool> observed_values(const Graph& fp32) {
  std::map<int32_t, bool> observed;  // value -> symmetric
  std::set<int32_t> read_by_attention;
  for (const Node& n : fp32.nodes)
    if (n.op == "attention")
      for (size_t i = 0; i < 3 && i < n.inputs.size(); ++i) read_by_attention.insert(n.inputs[i]);
  for (const Node& n : fp32.nodes) {
    if (is_encoder_linear(n)) {
      observed.emplace(n.inputs[0], false);
      observed[n.outputs[0]] = read_by_attention.count(n.outputs[0]) > 0;
    } else if (n.op == "attention" || n.op == "gelu") {
      observed.emplace(n.outputs[0], false);
    }
  }
  return observed;
}

}  // namespace

std::vector<std::string> bert_static_value_names(int64_t layers) {
  std::vector<std::string> names;
  for (int64_t l = 0; l < layers; ++l) {
    const std::string p = "bert.encoder.layer." + std::to_string(l);
    names.push_back(l == 0 ? "bert.embeddings.LayerNorm.out" : "bert.encoder.layer." + std::to_string(l - 1) +
                                                                   ".output.LayerNorm.out");
    for (const char* s : {".attention.self.query.out", ".attention.self.key.out", ".attention.self.value.out",
                          ".attention.self.out", ".attention.output.dense.out", ".attention.output.LayerNorm.out",
                          ".intermediate.dense.out", ".intermediate.out", ".output.dense.out"})
      names.push_back(p + s);
  }
  return names;
}

bool bert_static_symmetric(const std::string& n) {
  auto ends = [&](const std::string& s) { return n.size() >= s.size() && n.compare(n.size() - s.size(), s.size(), s) == 0; };
  return ends(".attention.self.query.out") || ends(".attention.self.key.out") || ends(".attention.self.value.out");
}

BertStaticParams calibrate_bert_static(const runtime::Graph& fp32, const std::vector<std::vector<Tensor>>& samples,
                                       const BertStaticOptions& options, BertStaticReport* report) {
  check_fp32(fp32);
  if (samples.empty()) fail("static int8 BERT: expected at least one calibration sample, found none");
  std::map<int32_t, std::unique_ptr<Observer>> obs;
  for (auto [v, sym] : observed_values(fp32)) obs[v] = make_observer(options.observer, bert_activation_spec(sym));
  int64_t n = 0;
  {
    runtime::Program calib(fp32, "static int8 BERT calibration");
    for (const auto& s : samples) {
      const std::vector<Tensor> all = calib.run_all(s);
      for (auto& [v, o] : obs) o->observe(all.at(size_t(v)));
      ++n;
    }
  }
  BertStaticParams q;
  for (auto& [v, o] : obs) q[fp32.values[size_t(v)].name] = o->qparams();
  if (report) report->samples = n;
  return q;
}

runtime::Graph lower_bert_static(const runtime::Graph& fp32, const BertStaticParams& params,
                                 const BertStaticOptions& options, BertStaticReport* report) {
  check_fp32(fp32);
  std::map<int32_t, QParams> q;
  for (auto [v, sym] : observed_values(fp32)) {
    const std::string& name = fp32.values[size_t(v)].name;
    const auto it = params.find(name);
    if (it == params.end()) fail("static int8 BERT: no activation range for value '", name, "'");
    const QParams& p = it->second;
    if (p.per_channel() || p.scale.size() != 1 || !(p.scale[0] > 0) || !std::isfinite(p.scale[0]) || p.qmin < -128 ||
        p.qmax > 127 || p.qmin >= p.qmax || p.zero_point[0] < p.qmin || p.zero_point[0] > p.qmax || (sym && p.zero_point[0] != 0))
      fail("static int8 BERT: expected value '", name, "' quantized int8 per tensor with a positive finite scale",
           sym ? " and zero point 0" : "", ", found scale ", p.scale.empty() ? 0.f : p.scale[0], ", zero point ",
           p.zero_point.empty() ? 0 : p.zero_point[0], ", codes [", p.qmin, ", ", p.qmax, "]");
    q[v] = p;
  }
  BertStaticReport r = report ? *report : BertStaticReport{};
  r.linear = r.attention = r.gelu = 0;
  Graph g = Rewriter(fp32, q, options, r).run();
  if (r.linear == 0 || r.attention == 0)
    fail("static int8 BERT: found no encoder Linear or attention to quantize (", r.linear, " Linears, ", r.attention,
         " attentions)");
  compile::remove_dead(g);
  // The QA head and the embedding tables as in the dynamic program (per-row int8).
  compile::DynamicQuantOptions d;
  d.per_row_activations = true;
  compile::quantize_dynamic_graph(g, d);
  g.meta["precision"] = "int8-static";
  g.meta["calibration"] = {{"observer", options.observer}, {"samples", r.samples},
                           {"gelu", options.integer_gelu ? "integer" : "float table"}, {"softmax", "integer"},
                           {"layer_norm", "float"}};
  if (report) *report = r;
  return g;
}

runtime::Graph quantize_bert_static(const runtime::Graph& fp32, const std::vector<std::vector<Tensor>>& samples,
                                    const BertStaticOptions& options, BertStaticReport* report) {
  BertStaticReport r;
  const BertStaticParams q = calibrate_bert_static(fp32, samples, options, &r);
  Graph g = lower_bert_static(fp32, q, options, &r);
  if (report) *report = r;
  return g;
}

BertStaticParams bert_static_params(const runtime::Graph& program, BertStaticOptions* options) {
  if (program.meta.value("precision", std::string()) != "int8-static")
    fail("static int8 BERT: expected an int8-static BERT program, found precision '",
         program.meta.value("precision", std::string()), "'");
  BertStaticParams q;
  for (const Value& v : program.values) {
    if (v.is_constant() || !v.quant || v.dtype != DType::i8 || v.name.size() < 3 ||
        v.name.compare(v.name.size() - 2, 2, ".q") != 0)
      continue;
    q[v.name.substr(0, v.name.size() - 2)] = {v.quant->scale, v.quant->zero_point, v.quant->axis, v.quant->qmin,
                                               v.quant->qmax};
  }
  if (options) {
    const nlohmann::json c = program.meta.value("calibration", nlohmann::json::object());
    options->integer_gelu = c.is_object() && c.value("gelu", std::string()) == "integer";
    if (c.is_object() && c.contains("observer") && c["observer"].is_string()) options->observer = c["observer"];
  }
  return q;
}

}  // namespace finch::quant
