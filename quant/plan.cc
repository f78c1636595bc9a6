// plan_quantization: the placement plan read from a call trace (quant/plan.h).
#include "quant/plan.h"

#include <optional>
#include <set>

#include "framework/error.h"

namespace finch::quant {

namespace {

bool is_weighted(const std::string& t) { return t == "Conv2d" || t == "Conv1d" || t == "Linear"; }
bool is_relu(const std::string& t) { return t == "ReLU" || t == "ReLU6"; }
// Ops whose int8 form keeps the input's scale and zero point (they only move or select codes).
bool is_pass_through(const std::string& t) {
  return t == "MaxPool2d" || t == "MaxPool1d" || t == "Flatten" || t == "Dropout" || t == "Identity";
}

}  // namespace

Tensor weight_of(nn::Module& m) {
  if (auto* c = dynamic_cast<nn::Conv2d*>(&m)) return c->weight;
  if (auto* c = dynamic_cast<nn::Conv1d*>(&m)) return c->weight;
  if (auto* l = dynamic_cast<nn::Linear*>(&m)) return l->weight;
  fail("prepare: ", m.type_name(), " has no weight");
}

QuantPlan plan_quantization(const compile::CallTrace& t, const PrepareOptions& o) {
  const QConfig& qc = o.qconfig;
  if (t.sites.empty()) fail("prepare: the model's forward called no module");
  // A skip path that names no module would be silently ignored and the layer quantized anyway.
  for (const auto& s : o.skip) {
    bool found = false;
    for (const auto& site : t.sites) found |= !s.empty() && (site.path == s || site.path.rfind(s + ".", 0) == 0);
    if (found) continue;
    std::set<std::string> top;
    for (const auto& site : t.sites)
      if (!site.path.empty()) top.insert(site.path.substr(0, site.path.find('.')));
    std::string valid;
    for (const auto& n : top) valid += (valid.empty() ? "" : ", ") + n;
    fail("--skip '", s, "' names no module of the model; its top-level modules are ", valid,
         " (a path such as layer1.0.conv1 names one inside them)");
  }
  const bool act = qc.quantize_activations && !o.dynamic;
  QuantPlan plan;
  auto module_of = [&](const compile::CallSite& s) -> ModulePlan& { return plan.modules[s.module]; };
  auto skipped = [&](const std::string& path) {
    for (const auto& s : o.skip)
      if (path == s || path.rfind(s + ".", 0) == 0) return true;
    return false;
  };
  // observer: a make_observer() name, or none for the tensor's current range.
  auto add_fq = [&](int64_t site, PlannedQuantizer::Role role, const std::string& base, const QSpec& spec,
                    const std::optional<std::string>& observer, int64_t channels, const std::string& what) {
    const compile::CallSite& s = t.sites[size_t(site)];
    module_of(s);
    PlannedQuantizer pq;
    pq.site = site, pq.role = role, pq.spec = spec, pq.channels = channels;
    pq.current_range = !observer.has_value();
    pq.observer = observer.value_or("");
    pq.name = s.call == 0 ? base : base + "_" + std::to_string(s.call);
    plan.quantizers.push_back(std::move(pq));
    plan.entries.push_back({s.key(), s.type, what + " " + spec.str()});
    return plan.quantizers.size() - 1;
  };
  const Tensor& root_in = t.sites[0].input;
  const Tensor& root_out = t.sites[0].output;
  auto act_fq = [&](int64_t site, PlannedQuantizer::Role role, const std::string& base, const Tensor& v,
                    const std::string& what) {
    const bool io = v.is_same(root_in) || v.is_same(root_out);
    const QSpec spec = io ? qc.io : qc.activation;
    if (o.dynamic) return add_fq(site, role, base, spec, std::nullopt, 1, what + " (dynamic)");
    // The model's input and output keep their whole observed range: clipped input pixels are lost
    // to every later layer, and clipped logits tie the classes the argmax must separate.
    // Range-searching observers (histogram) apply to the activations in between.
    return add_fq(site, role, base, spec, io ? std::string("minmax") : qc.activation_observer, 1, what);
  };

  // Folds: a BN whose input only a Conv2d made (a BatchNorm1d: a Conv1d), each called once.
  std::map<int64_t, int64_t> fold_of_conv;
  std::set<int64_t> folded_bn;
  if (o.fuse && !o.dynamic && (qc.quantize_weights || qc.fp16_weights || act)) {
    for (size_t i = 0; i < t.sites.size(); ++i) {
      const compile::CallSite& b = t.sites[i];
      if (!b.leaf() || (b.type != "BatchNorm2d" && b.type != "BatchNorm1d") || skipped(b.path)) continue;
      const int64_t p = t.producer(b.input);
      const std::string conv_type = b.type == "BatchNorm2d" ? "Conv2d" : "Conv1d";
      if (p < 0 || t.sites[size_t(p)].type != conv_type || skipped(t.sites[size_t(p)].path)) continue;
      const compile::CallSite& c = t.sites[size_t(p)];
      auto* bn = dynamic_cast<nn::BatchNorm*>(b.module);
      auto* conv2 = dynamic_cast<nn::Conv2d*>(c.module);
      auto* conv1 = dynamic_cast<nn::Conv1d*>(c.module);
      const int64_t oc = conv2 ? conv2->out_channels : conv1 ? conv1->out_channels : -1;
      if (!bn || oc < 0 || !bn->running_mean.defined() || bn->num_features != oc) continue;
      if (t.calls_of(b.module) != 1 || t.calls_of(c.module) != 1 || t.consumers(c.output).size() != 1) continue;
      fold_of_conv[p] = int64_t(i);
      folded_bn.insert(int64_t(i));
      module_of(c).folded_bn = bn;
      module_of(b).folded_away = true;
      plan.entries.push_back({c.key(), c.type, "fold " + b.path});
    }
  }

  std::unordered_set<const void*> quantized;  // tensors (by identity) that hold int8 codes
  std::set<int64_t> unit_end;                 // sites that carry their unit's requantization
  std::set<const nn::Module*> weights_done;
  auto isq = [&](const Tensor& v) { return quantized.count(v.impl()) > 0; };
  std::map<const void*, size_t> grid_of;  // quantized tensor -> the quantizer whose grid it is on
  auto pass_on = [&](const compile::CallSite& s) {
    quantized.insert(s.output.impl());
    if (const auto g = grid_of.find(s.input.impl()); g != grid_of.end()) grid_of[s.output.impl()] = g->second;
  };
  std::map<int64_t, int64_t> unit_owner;  // unit-end site -> the Conv/Linear site that starts the unit
  auto out_fq = [&](int64_t site, const std::string& what) {
    const compile::CallSite& s = t.sites[size_t(site)];
    const size_t k = act_fq(site, PlannedQuantizer::Role::output, "activation_post_process", s.output, what);
    quantized.insert(s.output.impl());
    grid_of[s.output.impl()] = k;
    if (const auto u = unit_owner.find(site); u != unit_owner.end()) plan.quantizers[k].unit = u->second;
  };
  module_of(t.sites[0]).root = true;

  for (const int64_t id : t.exit_order) {
    const compile::CallSite& s = t.sites[size_t(id)];
    if (!s.leaf()) {
      // A block whose result comes from a functional op (a residual add): requantize it here.
      if (act && !isq(s.output) && t.producer(s.output) < 0 && !skipped(s.path)) out_fq(id, "output");
      continue;
    }
    if (skipped(s.path)) {
      plan.entries.push_back({s.key(), s.type, "skip (float)"});
      continue;
    }
    if (is_weighted(s.type)) {
      if (o.dynamic && s.type != "Linear") continue;
      ModulePlan& c = module_of(s);
      if (!weights_done.count(s.module)) {
        weights_done.insert(s.module);
        if (qc.fp16_weights) {
          c.fp16_weights = true;
          plan.entries.push_back({s.key(), s.type, "weight fp16"});
        } else if (qc.quantize_weights) {
          const QSpec ws = qc.weight;
          const int64_t channels = ws.axis >= 0 ? weight_of(*s.module).size(ws.axis) : 1;
          // Weights: the current range every call ("minmax" of the tensor as it is now).
          add_fq(id, PlannedQuantizer::Role::weight, "weight_fake_quant", ws,
                 qc.weight_observer == "minmax" ? std::nullopt : std::optional<std::string>(qc.weight_observer), channels,
                 "weight");
        }
      }
      if (o.dynamic) {
        act_fq(id, PlannedQuantizer::Role::input, "input_fake_quant", s.input, "input");
        continue;
      }
      if (!act) continue;
      // A zero pad of codes (a Conv1d's "same" padding) keeps their grid: no requantization.
      const Tensor* padded = isq(s.input) ? nullptr : t.zero_pad_source(s.input);
      const auto grid = padded ? grid_of.find(padded->impl()) : grid_of.end();
      if (grid != grid_of.end()) {
        module_of(s).padded_input[s.call] = grid->second;
        quantized.insert(s.input.impl());
        grid_of[s.input.impl()] = grid->second;
        plan.entries.push_back({s.key(), s.type, "input: a zero pad of codes, on their grid"});
      } else if (!isq(s.input)) {
        act_fq(id, PlannedQuantizer::Role::input, "input_fake_quant", s.input, "input");
      }
      int64_t end = id;
      if (const auto f = fold_of_conv.find(id); f != fold_of_conv.end()) end = f->second;
      if (o.fuse) {
        const auto cons = t.consumers(t.sites[size_t(end)].output);
        if (cons.size() == 1 && is_relu(t.sites[size_t(cons[0])].type) && !skipped(t.sites[size_t(cons[0])].path) &&
            t.sites[size_t(cons[0])].leaf())
          end = cons[0];
      }
      unit_owner[end] = id;
      if (end == id) out_fq(id, "output");
      else unit_end.insert(end);
      continue;
    }
    if (folded_bn.count(id)) {
      if (unit_end.count(id)) out_fq(id, "output");
      continue;
    }
    if (!act) continue;
    if (unit_end.count(id)) {
      out_fq(id, "output (fused)");
      continue;
    }
    if (is_relu(s.type) && isq(s.input)) {  // a clamp of codes: no requantization
      pass_on(s);
      module_of(s).propagate = true;
      continue;
    }
    if (is_pass_through(s.type)) {
      if (isq(s.input)) {
        pass_on(s);
        module_of(s).propagate = true;
      }
      continue;
    }
    if ((s.type == "BatchNorm2d" || s.type == "BatchNorm1d") && o.fuse) {  // an unfolded BN: BN (+ ReLU) is one unit
      const auto cons = t.consumers(s.output);
      if (cons.size() == 1 && is_relu(t.sites[size_t(cons[0])].type) && !skipped(t.sites[size_t(cons[0])].path)) {
        unit_end.insert(cons[0]);
        continue;
      }
    }
    out_fq(id, "output");  // anything else computes new values: requantize
  }
  return plan;
}

}  // namespace finch::quant
