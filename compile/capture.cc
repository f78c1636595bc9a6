// Graph capture: an op listener plus a module-path tracer that turn one forward into a Graph.
#include "compile/capture.h"

#include <map>
#include <set>
#include <unordered_map>

#include "autograd/capture.h"
#include "autograd/nn/sequence.h"
#include "framework/error.h"
#include "framework/grad_mode.h"

namespace finch::compile {

namespace {

using runtime::Graph;
using runtime::Value;

// Builds the graph while the forward runs. Tensors are identified by their TensorImpl; every
// tensor seen is kept alive in `keep` so that no address is reused during the capture.
class Recorder final : public autograd::OpListener, public nn::CallTracer {
 public:
  Graph g;

  explicit Recorder(nn::Module& model) {
    for (auto& [path, m] : model.named_modules()) path_of_[m] = path;
    for (auto& [name, t] : model.named_parameters()) named_[t.impl()] = name;
    for (auto& [name, t] : model.named_buffers()) named_[t.impl()] = name;
  }

  int32_t add_input(const Tensor& x, const std::string& name = "input") {
    Value v;
    v.name = name;
    v.shape = x.shape();
    v.dtype = x.dtype();
    const int32_t id = g.add_value(std::move(v));
    ids_[x.impl()] = id;
    keep_.push_back(x);
    g.inputs.push_back(id);
    return id;
  }

  // The tensors behind each value, in value order.
  std::vector<Tensor> value_tensors() const {
    std::vector<Tensor> out(g.values.size());
    for (const Tensor& t : keep_)
      if (const auto it = ids_.find(t.impl()); it != ids_.end()) out[size_t(it->second)] = t.detach();
    return out;
  }

  int32_t id_of_output(const Tensor& y) const {
    const auto it = ids_.find(y.impl());
    if (it == ids_.end() || g.values[size_t(it->second)].is_constant())
      fail("capture: the model's output is not computed from its input by recorded ops");
    return it->second;
  }

  // --- nn::CallTracer: the module path names the nodes ---
  void enter(nn::Module& m, const Tensor&, int64_t call) override {
    // Modules outside the model (a prepared model's FakeQuantize) take the name of the module
    // they act for.
    const auto it = path_of_.find(&m);
    if (it == path_of_.end()) {
      stack_.push_back(stack_.empty() ? m.type_name() : stack_.back());
      return;
    }
    std::string p = it->second.empty() ? "model" : it->second;
    if (call > 0) p += "#" + std::to_string(call);
    stack_.push_back(p);
  }
  void exit(nn::Module&, const Tensor&, int64_t) override {
    if (!stack_.empty()) stack_.pop_back();
  }

  // --- autograd::OpListener ---
  void op(const std::string& kind, const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs,
          const nlohmann::json& attrs) override {
    // An op that hands back its own input (identity) adds nothing to the graph.
    if (outputs.size() == 1 && inputs.size() >= 1 && outputs[0].impl() == inputs[0].impl()) return;
    if (kind == "conv1d") return conv1d(inputs, outputs, attrs);
    runtime::Node n;
    n.op = kind;
    n.name = stack_.empty() ? kind : stack_.back();
    n.attrs = attrs;
    std::vector<std::string> const_names;
    if (attrs.contains("input_names")) {
      const_names = attrs["input_names"].get<std::vector<std::string>>();
      n.attrs.erase("input_names");
    }
    for (size_t i = 0; i < inputs.size(); ++i)
      n.inputs.push_back(input_id(inputs[i], n, kind, i < const_names.size() ? const_names[i] : ""));
    for (const Tensor& y : outputs) {
      Value v;
      v.name = unique(n.name.empty() ? kind : n.name + (kind == "fake_quant" ? ".fq" : ".out"));
      v.shape = y.shape();
      v.dtype = y.dtype();
      const int32_t id = g.add_value(std::move(v));
      ids_[y.impl()] = id;
      keep_.push_back(y);
      n.outputs.push_back(id);
    }
    g.nodes.push_back(std::move(n));
  }

 private:
  std::unordered_map<const nn::Module*, std::string> path_of_;
  std::unordered_map<const void*, std::string> named_;
  std::unordered_map<const void*, int32_t> ids_;
  std::set<std::string> names_;
  std::vector<std::string> stack_;
  std::vector<Tensor> keep_;

  std::string unique(const std::string& base) {
    std::string s = base;
    for (int k = 1; names_.count(s); ++k) s = base + "_" + std::to_string(k);
    names_.insert(s);
    return s;
  }

  // Adds a node with one output holding `y` (its value named after the node).
  int32_t add_node(const std::string& op, const std::string& name, std::vector<int32_t> in, const Tensor& y,
                   nlohmann::json attrs) {
    runtime::Node n;
    n.op = op;
    n.name = name;
    n.inputs = std::move(in);
    n.attrs = std::move(attrs);
    Value v;
    v.name = unique(name + ".out");
    v.shape = y.shape();
    v.dtype = y.dtype();
    const int32_t id = g.add_value(std::move(v));
    ids_[y.impl()] = id;
    keep_.push_back(y);
    n.outputs.push_back(id);
    g.nodes.push_back(std::move(n));
    return id;
  }

  // conv1d (a plain Conv1d, or a prepared Conv1d unit with its deployed weight) is recorded as
  // the conv2d of its [N, C, 1, L] view: reshape → conv2d → reshape, so the BN fold, activation
  // fusion and the int8 lowering treat it as the conv2d it runs as, on the conv2d/qconv2d kernels.
  void conv1d(const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs, const nlohmann::json& attrs) {
    const std::string name = stack_.empty() ? "conv1d" : stack_.back();
    const Tensor& x = inputs.at(0);
    const Tensor& w = inputs.at(1);
    const Tensor& y = outputs.at(0);
    if (x.dim() != 3 || w.dim() != 3 || y.dim() != 3)
      fail("capture: module '", name, "' calls conv1d with a ", x.dim(), "-d input and a ", w.dim(),
           "-d weight; expected [N, C, L] and [OC, C/groups, K]");
    nlohmann::json a = attrs;
    std::vector<std::string> names;
    if (a.contains("input_names")) {
      names = a["input_names"].get<std::vector<std::string>>();
      a.erase("input_names");
    }
    runtime::Node probe;
    probe.name = name;
    auto view4 = [](const Tensor& t) { return t.unsqueeze(2); };
    auto shape4 = [](const Tensor& t) { return nlohmann::json(std::vector<int64_t>{t.size(0), t.size(1), 1, t.size(2)}); };
    // The input's view: a reshape node (x is computed from the input).
    int32_t xi = input_id(x, probe, "conv1d", names.size() > 0 ? names[0] : "");
    Tensor xs = x;
    int64_t extra = 0;
    // A symmetric zero pad of the time axis right before the conv is the conv's own padding (no
    // copy; remove_dead drops the pad when nothing else reads it). An asymmetric one (the "same"
    // padding of an even kernel) stays a pad node: conv2d pads both sides alike.
    for (auto it = g.nodes.rbegin(); it != g.nodes.rend(); ++it) {
      if (it->outputs.size() != 1 || it->outputs[0] != xi) continue;
      if (it->op != "pad" || it->inputs.size() != 1 || it->attrs.value("value", 1.0) != 0.0) break;
      const auto pads = it->attrs.at("pads").get<std::vector<int64_t>>();
      if (pads.size() != 2 || pads[0] != pads[1]) break;
      for (const Tensor& t : keep_)
        if (const auto f = ids_.find(t.impl()); f != ids_.end() && f->second == it->inputs[0] && t.dim() == 3) {
          xs = t, xi = it->inputs[0], extra = pads[0];
          break;
        }
      break;
    }
    const Tensor x4 = view4(xs);
    const int32_t x4i = add_node("reshape", name, {xi}, x4, {{"shape", shape4(xs)}});
    // The weight's view: a constant when the weight is one (a parameter or a deployed weight).
    const std::string wname = names.size() > 1 && !names[1].empty() ? names[1] : "";
    int32_t w4i;
    const Tensor w4 = view4(w);
    if (const auto it = ids_.find(w.impl()); it != ids_.end() && !g.values[size_t(it->second)].is_constant()) {
      w4i = add_node("reshape", name, {it->second}, w4, {{"shape", shape4(w)}});
    } else {
      const auto named = named_.find(w.impl());
      const std::string hint = !wname.empty() ? wname : named != named_.end() ? named->second : name + ".weight";
      Value v;
      v.name = unique(hint);
      v.shape = w4.shape();
      v.dtype = w4.dtype();
      {
        NoGradGuard ng;
        v.data = w4.detach().contiguous().clone();
      }
      w4i = g.add_value(std::move(v));
      keep_.push_back(w4);
      ids_[w4.impl()] = w4i;
    }
    const int32_t bi = inputs.size() > 2 ? input_id(inputs[2], probe, "conv1d", names.size() > 2 ? names[2] : "") : -1;
    nlohmann::json c = a;
    for (const char* k : {"stride", "padding", "dilation"}) c[k] = {k[0] == 'p' ? 0 : 1, a.at(k).get<int64_t>()};
    c["padding"][1] = a.at("padding").get<int64_t>() + extra;
    c["groups"] = a.at("groups").get<int64_t>();
    if (!c.contains("act")) c["act"] = "none";
    const Tensor y4 = view4(y);
    const int32_t y4i = add_node("conv2d", name, {x4i, w4i, bi}, y4, c);
    add_node("reshape", name, {y4i}, y, {{"shape", nlohmann::json(y.shape())}});
  }

  int32_t input_id(const Tensor& t, const runtime::Node& n, const std::string& kind, const std::string& hint) {
    if (!t.defined()) return -1;
    if (const auto it = ids_.find(t.impl()); it != ids_.end()) return it->second;
    const auto named = named_.find(t.impl());
    // A tensor no recorded op made: a parameter/buffer, a constant the forward built, or the
    // output of an op capture does not know (it then depends on the input or a parameter and
    // carries a gradient history).
    if (named == named_.end() && hint.empty() && t.requires_grad())
      fail("capture: module '", n.name, "' feeds ", kind, " a tensor made by an op that graph capture does not "
           "record (see runtime/ops.md for the ops a program can hold)");
    Value v;
    v.name = unique(!hint.empty() ? hint : named != named_.end() ? named->second : n.name + ".const");
    v.shape = t.shape();
    v.dtype = t.dtype();
    {
      NoGradGuard ng;
      v.data = t.detach().contiguous().clone();
    }
    const int32_t id = g.add_value(std::move(v));
    ids_[t.impl()] = id;
    keep_.push_back(t);
    return id;
  }
};

}  // namespace

nlohmann::json qparams_json(const quant::QParams& p) {
  return {{"scale", p.scale}, {"zero_point", p.zero_point}, {"axis", p.axis}, {"qmin", p.qmin}, {"qmax", p.qmax}};
}

quant::QParams qparams_from_json(const nlohmann::json& j) {
  quant::QParams p;
  p.scale = j.at("scale").get<std::vector<float>>();
  p.zero_point = j.at("zero_point").get<std::vector<int32_t>>();
  p.axis = j.at("axis").get<int64_t>();
  p.qmin = j.at("qmin").get<int64_t>();
  p.qmax = j.at("qmax").get<int64_t>();
  if (p.scale.empty() || p.scale.size() != p.zero_point.size())
    fail("quantization parameters: expected as many zero points as scales (at least one), got ", p.scale.size(),
         " scales and ", p.zero_point.size(), " zero points");
  return p;
}

namespace {

runtime::Graph capture(nn::Module& model, const Tensor& example, const Tensor& lengths, std::vector<Tensor>* values) {
  // f32 features, or token ids (i64/i32) for a model that starts with an embedding.
  if (!example.defined() ||
      (example.dtype() != DType::f32 && example.dtype() != DType::i64 && example.dtype() != DType::i32))
    fail("capture: expected an f32 example input (or i64/i32 token ids)");
  nn::LengthAware* with_lengths = nullptr;
  if (lengths.defined()) {
    with_lengths = dynamic_cast<nn::LengthAware*>(&model);
    if (!with_lengths) fail("capture: lengths were given, but the model (", model.type_name(), ") does not take them");
    if (lengths.dtype() != DType::i64 || lengths.dim() != 1 || example.dim() < 1 || lengths.size(0) != example.size(0))
      fail("capture: expected lengths I64 [", example.dim() < 1 ? 0 : example.size(0), "], found ",
           dtype_name(lengths.dtype()), " ", shape_str(lengths.shape()));
  }
  const bool was_training = model.is_training();
  model.eval();
  Recorder rec(model);
  Tensor x = example.detach().contiguous().clone();
  // So ops capture cannot see still leave a trace (see input_id); token ids carry no gradient.
  if (x.dtype() == DType::f32) x.set_requires_grad(true);
  rec.add_input(x);
  Tensor len;
  if (with_lengths) {
    len = lengths.detach().contiguous().clone();
    rec.add_input(len, "lengths");
  }
  Tensor y;
  try {
    EnableGradGuard eg;
    autograd::CaptureOps cap(&rec);
    nn::TraceCalls tc(&rec);
    nn::ForwardPass pass;
    y = with_lengths ? with_lengths->forward_with_lengths(x, len) : model.forward(x);
  } catch (...) {
    model.train(was_training);
    throw;
  }
  model.train(was_training);
  const int32_t out = rec.id_of_output(y);
  if (values) *values = rec.value_tensors();
  Graph g = std::move(rec.g);
  g.outputs.push_back(out);
  g.values[size_t(out)].name = "output";
  return g;
}

}  // namespace

runtime::Graph capture_graph(nn::Module& model, const Tensor& example, std::vector<Tensor>* values) {
  return capture(model, example, Tensor(), values);
}

runtime::Graph capture_graph_with_lengths(nn::Module& model, const Tensor& example, const Tensor& lengths,
                                          std::vector<Tensor>* values) {
  if (!lengths.defined()) fail("capture: expected lengths I64 [B], found an undefined tensor");
  return capture(model, example, lengths, values);
}

}  // namespace finch::compile
