// prepare/convert: the placement plan read from a call trace, and the interceptors that carry it.
#include "quant/prepare.h"

#include <set>
#include <tuple>
#include <unordered_set>

#include "autograd/capture.h"
#include "autograd/functional.h"
#include "autograd/nn/nn.h"
#include "framework/error.h"
#include "framework/grad_mode.h"
#include "compile/capture.h"
#include "quant/integer_sim.h"
#include "kernels/quantize.h"
#include "kernels/reference.h"
#include "ops/op_attrs.h"
#include "quant/observer.h"

namespace finch::quant {

namespace {

bool is_weighted(const std::string& t) { return t == "Conv2d" || t == "Conv1d" || t == "Linear"; }
bool is_relu(const std::string& t) { return t == "ReLU" || t == "ReLU6"; }
// Ops whose int8 form keeps the input's scale and zero point (they only move or select codes).
bool is_pass_through(const std::string& t) {
  return t == "MaxPool2d" || t == "Flatten" || t == "Dropout" || t == "Identity";
}

// What one module computes while prepared, for all of its calls.
class QuantCall : public nn::ForwardInterceptor {
 public:
  std::map<int64_t, std::shared_ptr<FakeQuantize>> input_fq, output_fq;
  std::shared_ptr<FakeQuantize> weight_fq;
  bool fp16_weights = false;
  nn::BatchNorm* folded_bn = nullptr;  // for a Conv2d: the BN folded into it
  bool folded_away = false;            // for a BatchNorm2d folded into its conv
  std::shared_ptr<bool> bn_frozen;
  std::string path;        // the module's path in the model (names its constants in a capture)
  bool dynamic = false;    // dynamic quantization: the input is quantized per batch at run time
  bool root = false;       // the model itself: clears the quantized-tensor table per forward
  bool propagate = false;  // MaxPool/Flatten/ReLU-as-clamp: the output keeps the input's parameters
  // For a Conv2d/Linear: the FakeQuantize at the end of its unit (after a folded BN or a fused
  // ReLU), per call; in eval mode the unit then runs the exact integer arithmetic.
  std::map<int64_t, std::shared_ptr<FakeQuantize>> unit_out_fq;
  int64_t exact_calls = 0, float_calls = 0;

  // γ/σ of the folded BN, per output channel.
  Tensor bn_scale(int64_t oc) const {
    nn::BatchNorm& bn = *folded_bn;
    const Tensor gamma = bn.weight.defined() ? bn.weight : ones({oc});
    return div(gamma, sqrt(add(bn.running_var, bn.eps)));
  }

  // The folded weight and bias (no fake-quant), as the eval-mode forward uses them.
  std::pair<Tensor, Tensor> folded(nn::Conv2d& conv) const {
    nn::BatchNorm& bn = *folded_bn;
    const int64_t oc = conv.out_channels;
    const Tensor sf = bn_scale(oc);
    const Tensor beta = bn.bias.defined() ? bn.bias : zeros({oc});
    const Tensor b = conv.bias.defined() ? conv.bias : zeros({oc});
    return {mul(conv.weight, view(sf, {oc, 1, 1, 1})), add(beta, mul(sub(b, bn.running_mean), sf))};
  }

  Tensor run(nn::Module& m, const Tensor& x, int64_t call) override {
    struct Clear {  // the root's forward owns the table: empty before and after it
      bool on;
      explicit Clear(bool r) : on(r) {
        if (on) clear_quantized();
      }
      ~Clear() {
        if (on) clear_quantized();
      }
    } clear(root);
    Tensor h = x;
    // A dynamic unit in eval mode quantizes its input itself, as the program's dq_linear does.
    const bool self_quantizing = dynamic_exact(m);
    if (const auto it = input_fq.find(call); it != input_fq.end() && !self_quantizing) h = it->second->forward(h);
    Tensor y = compute(m, h, call);
    if (propagate)
      if (const QParams* p = quantized_params(h)) register_quantized(y, *p);
    if (const auto it = output_fq.find(call); it != output_fq.end()) y = it->second->forward(y);
    return y;
  }

 private:
  Tensor quant_weight(const Tensor& w) {
    if (weight_fq) return weight_fq->forward(w);
    if (fp16_weights) return to_dtype(to_dtype(w, DType::f16), DType::f32);
    return w;
  }

  // Conv + BN: training with batch statistics simulates the fold as Jacob et al. 2018 §3.2 (and
  // PyTorch's ConvBn2d): the weights are scaled by γ/σ_running before fake-quant, the conv output
  // is scaled back and batch-normalized, so BN still trains and its running statistics still
  // move. Otherwise (eval, or BN frozen) it is the exact fold the integer program runs.
  Tensor conv_bn(nn::Conv2d& conv, const Tensor& x) {
    if (conv.is_training() && !*bn_frozen) {
      const int64_t oc = conv.out_channels;
      const Tensor sf = bn_scale(oc);
      Tensor y = conv2d(x, quant_weight(mul(conv.weight, view(sf, {oc, 1, 1, 1}))), Tensor(), conv.options);
      y = div(y, view(sf, {1, oc, 1, 1}));
      if (conv.bias.defined()) y = add(y, view(conv.bias, {1, oc, 1, 1}));
      return folded_bn->forward_impl(y);  // batch statistics, running-statistic update, as BN itself
    }
    const auto [wf, bf] = folded(conv);
    return conv2d(x, quant_weight(wf), bf, conv.options);
  }

  // Dynamic quantization in eval mode: the Linear runs the program's dq_linear kernel itself
  // (input quantized per call, int32 accumulation), so simulation and program agree exactly.
  bool dynamic_exact(nn::Module& m) const {
    return dynamic && !m.is_training() && weight_fq && weight_fq->fake_quant_enabled() &&
           dynamic_cast<nn::Linear*>(&m) != nullptr;
  }

  // Eval mode with every parameter known: the exact integer unit (integer_sim.h). Returns an
  // undefined tensor when the float path must run instead.
  Tensor exact(nn::Module& m, const Tensor& x, int64_t call) {
    if (dynamic_exact(m)) {
      auto& lin = dynamic_cast<nn::Linear&>(m);
      NoGradGuard ng;
      weight_fq->forward(lin.weight);
      const QParams wq = weight_fq->qparams();
      const std::vector<float> sw = wq.per_channel() ? wq.scale : std::vector<float>(size_t(lin.weight.size(0)), wq.scale[0]);
      return reference::dq_linear(x.detach(), quantize(lin.weight.detach().contiguous(), wq), sw,
                                  lin.bias.defined() ? lin.bias.detach() : Tensor(), "none");
    }
    if (m.is_training() || !weight_fq || !weight_fq->fake_quant_enabled()) return Tensor();
    const auto u = unit_out_fq.find(call);
    if (u == unit_out_fq.end() || !u->second->fake_quant_enabled() || !u->second->ready()) return Tensor();
    const QParams* in = quantized_params(x);
    if (!in) return Tensor();
    if (auto* conv = dynamic_cast<nn::Conv2d*>(&m)) {
      const auto [w, b] = folded_bn ? folded(*conv) : std::pair<Tensor, Tensor>{conv->weight, conv->bias};
      weight_fq->forward(w);  // the weight observer sees the deployed weight, as in the float path
      return integer_conv2d(x, *in, w, weight_fq->qparams(), b, u->second->qparams(), conv->options);
    }
    if (auto* lin = dynamic_cast<nn::Linear*>(&m)) {
      weight_fq->forward(lin->weight);
      return integer_linear(x, *in, lin->weight, weight_fq->qparams(), lin->bias, u->second->qparams());
    }
    return Tensor();
  }

  Tensor compute(nn::Module& m, const Tensor& x, int64_t call) {
    if (folded_away) return x;
    if ((weight_fq || fp16_weights) && autograd::capturing()) {
      autograd::CaptureScope cap;  // the unit is one conv2d/linear node; its inner ops stay hidden
      Tensor y = compute_unit(m, x, call);
      record_unit(cap, m, x, y);
      return y;
    }
    return compute_unit(m, x, call);
  }

  // Graph capture: the unit as the integer program stores it — the deployed (folded) weight and
  // bias as constants, the weight's quantization (or fp16) as attributes.
  void record_unit(const autograd::CaptureScope& cap, nn::Module& m, const Tensor& x, const Tensor& y) {
    NoGradGuard ng;
    nlohmann::json a = nlohmann::json::object();
    Tensor w, b;
    const char* kind = "linear";
    if (auto* conv = dynamic_cast<nn::Conv2d*>(&m)) {
      kind = "conv2d";
      std::tie(w, b) = folded_bn ? folded(*conv) : std::pair<Tensor, Tensor>{conv->weight, conv->bias};
      a = ops::to_json(conv->options);
    } else if (auto* lin = dynamic_cast<nn::Linear*>(&m)) {
      w = lin->weight, b = lin->bias;
    } else {
      fail("capture: module '", path, "' (", m.type_name(), ") has quantized weights but is not a Conv2d or Linear");
    }
    a[ops::attr::act.name] = "none";
    if (weight_fq && weight_fq->fake_quant_enabled()) a["weight_quant"] = compile::qparams_json(weight_fq->qparams());
    if (fp16_weights) a["weight_fp16"] = true;
    if (dynamic) a["dynamic"] = true;
    a["input_names"] = {"", path + ".weight", path + ".bias"};
    cap.record(kind, {x, w.detach(), b.defined() ? b.detach() : Tensor()}, {y}, a);
  }

  Tensor compute_unit(nn::Module& m, const Tensor& x, int64_t call) {
    if (weight_fq) {
      if (Tensor y = exact(m, x, call); y.defined()) {
        ++exact_calls;
        return y;
      }
      if (!m.is_training() && weight_fq->fake_quant_enabled()) ++float_calls;
    }
    if (auto* conv = dynamic_cast<nn::Conv2d*>(&m)) {
      if (folded_bn) return conv_bn(*conv, x);
      return conv2d(x, quant_weight(conv->weight), conv->bias, conv->options);
    }
    if (auto* conv = dynamic_cast<nn::Conv1d*>(&m))
      return conv1d(x, quant_weight(conv->weight), conv->bias, conv->stride, conv->padding, conv->dilation,
                    conv->groups);
    if (auto* lin = dynamic_cast<nn::Linear*>(&m)) return linear(x, quant_weight(lin->weight), lin->bias);
    return m.forward_impl(x);
  }
};

// The weight tensor of a Conv/Linear module.
Tensor weight_of(nn::Module& m) {
  if (auto* c = dynamic_cast<nn::Conv2d*>(&m)) return c->weight;
  if (auto* c = dynamic_cast<nn::Conv1d*>(&m)) return c->weight;
  if (auto* l = dynamic_cast<nn::Linear*>(&m)) return l->weight;
  fail("prepare: ", m.type_name(), " has no weight");
}

}  // namespace

QuantizedModel::~QuantizedModel() { remove(); }

std::vector<std::pair<std::string, FakeQuantize*>> QuantizedModel::fake_quants() {
  std::vector<std::pair<std::string, FakeQuantize*>> out;
  for (auto& [path, m] : state->named_modules())
    if (auto* fq = dynamic_cast<FakeQuantize*>(m)) out.emplace_back(path, fq);
  return out;
}

void QuantizedModel::enable_observers(bool on) {
  for (auto& [n, fq] : fake_quants()) fq->enable_observer(on);
}
void QuantizedModel::enable_fake_quant(bool on) {
  for (auto& [n, fq] : fake_quants()) fq->enable_fake_quant(on);
}
void QuantizedModel::freeze_observers() {
  // Dynamic quantization measures every batch at run time: its observers never freeze.
  for (auto& [n, fq] : fake_quants())
    if (!options.dynamic) fq->freeze();
}
void QuantizedModel::freeze_bn_stats() { *bn_frozen_ = true; }

std::vector<Tensor> QuantizedModel::parameters() {
  std::vector<Tensor> p = model.parameters();
  for (const Tensor& t : state->parameters()) p.push_back(t);
  return p;
}

std::vector<QuantizedModel::DeployedWeight> QuantizedModel::deployed_weights() {
  std::vector<DeployedWeight> out;
  std::map<const nn::Module*, std::string> path_of;
  for (auto& [path, m] : model.named_modules()) path_of[m] = path;
  NoGradGuard ng;
  for (auto& [path, m] : model.named_modules()) {
    auto c = std::dynamic_pointer_cast<QuantCall>(m->interceptor());
    if (!c || c->folded_away || (!c->weight_fq && !c->fp16_weights)) continue;
    DeployedWeight d;
    d.path = path;
    d.fake_quant = c->weight_fq.get();
    d.fp16 = c->fp16_weights;
    if (auto* conv = dynamic_cast<nn::Conv2d*>(m); conv && c->folded_bn) {
      std::tie(d.weight, d.bias) = c->folded(*conv);
      d.folded_bn = path_of[c->folded_bn];
    } else {
      d.weight = weight_of(*m);
      if (auto* cv = dynamic_cast<nn::Conv2d*>(m)) d.bias = cv->bias;
      if (auto* cv = dynamic_cast<nn::Conv1d*>(m)) d.bias = cv->bias;
      if (auto* l = dynamic_cast<nn::Linear*>(m)) d.bias = l->bias;
    }
    out.push_back(std::move(d));
  }
  return out;
}

QuantizedModel::UnitCounts QuantizedModel::unit_counts() {
  UnitCounts n;
  for (nn::Module* m : intercepted)
    if (auto c = std::dynamic_pointer_cast<QuantCall>(m->interceptor())) {
      n.exact += c->exact_calls;
      n.float_fallback += c->float_calls;
    }
  return n;
}

void QuantizedModel::remove() {
  for (nn::Module* m : intercepted) m->set_interceptor(nullptr);
  intercepted.clear();
}

std::unique_ptr<QuantizedModel> prepare(nn::Module& model, const Tensor& example, const PrepareOptions& o,
                                        bool qat) {
  const QConfig& qc = o.qconfig;
  if (qc.activation.axis >= 0) fail("prepare: activations are quantized per tensor; qconfig '", qc.name, "' asks for axis ", qc.activation.axis);
  for (auto& [path, m] : model.named_modules())
    if (m->interceptor()) fail("prepare: the model is already prepared (module '", path, "' is intercepted)");
  auto q = std::make_unique<QuantizedModel>(model);
  q->options = o;
  const compile::CallTrace t = compile::trace_calls(model, example);
  if (t.sites.empty()) fail("prepare: the model's forward called no module");
  const bool act = qc.quantize_activations && !o.dynamic;

  std::map<nn::Module*, std::shared_ptr<QuantCall>> calls;
  auto call_of = [&](nn::Module* m) -> QuantCall& {
    auto& c = calls[m];
    if (!c) {
      c = std::make_shared<QuantCall>();
      c->bn_frozen = q->bn_frozen_;
    }
    return *c;
  };
  auto skipped = [&](const std::string& path) {
    for (const auto& s : o.skip)
      if (path == s || path.rfind(s + ".", 0) == 0) return true;
    return false;
  };
  // The FakeQuantize modules live in q->state under the intercepted module's path.
  auto slot = [&](const std::string& path) -> nn::Module& {
    nn::Module* cur = q->state.get();
    size_t start = 0;
    while (!path.empty() && start <= path.size()) {
      const size_t dot = path.find('.', start);
      const std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
      nn::Module* next = nullptr;
      for (auto& [n, c] : cur->named_children())
        if (n == part) next = c.get();
      if (!next) next = cur->register_module(part, std::make_shared<nn::Module>()).get();
      cur = next;
      if (dot == std::string::npos) break;
      start = dot + 1;
    }
    return *cur;
  };
  auto add_fq = [&](const compile::CallSite& s, const std::string& base, const QSpec& spec, std::unique_ptr<Observer> obs,
                    int64_t channels, const std::string& what) {
    auto fq = std::make_shared<FakeQuantize>(std::move(obs), channels, qc.lsq && qat);
    slot(s.path).register_module(s.call == 0 ? base : base + "_" + std::to_string(s.call), fq);
    fq->enable_fake_quant(qat);
    q->plan.push_back({s.key(), s.type, what + " " + spec.str()});
    return fq;
  };
  const Tensor& root_in = t.sites[0].input;
  const Tensor& root_out = t.sites[0].output;
  auto act_fq = [&](const compile::CallSite& s, const std::string& base, const Tensor& v, const std::string& what) {
    const bool io = v.is_same(root_in) || v.is_same(root_out);
    const QSpec spec = io ? qc.io : qc.activation;
    if (o.dynamic) return add_fq(s, base, spec, make_moving_average_observer(spec, 1.0f), 1, what + " (dynamic)");
    // The model's input and output keep their whole observed range: clipped input pixels are lost
    // to every later layer, and clipped logits tie the classes the argmax must separate.
    // Range-searching observers (histogram) apply to the activations in between.
    return add_fq(s, base, spec, make_observer(io ? std::string("minmax") : qc.activation_observer, spec), 1, what);
  };

  // Folds: a BN whose input only a Conv2d made, each called once.
  std::map<int64_t, int64_t> fold_of_conv;
  std::set<int64_t> folded_bn;
  if (o.fuse && !o.dynamic && (qc.quantize_weights || qc.fp16_weights || act)) {
    for (size_t i = 0; i < t.sites.size(); ++i) {
      const compile::CallSite& b = t.sites[i];
      if (!b.leaf() || b.type != "BatchNorm2d" || skipped(b.path)) continue;
      const int64_t p = t.producer(b.input);
      if (p < 0 || t.sites[size_t(p)].type != "Conv2d" || skipped(t.sites[size_t(p)].path)) continue;
      const compile::CallSite& c = t.sites[size_t(p)];
      auto* bn = dynamic_cast<nn::BatchNorm*>(b.module);
      auto* conv = dynamic_cast<nn::Conv2d*>(c.module);
      if (!bn || !conv || !bn->running_mean.defined() || bn->num_features != conv->out_channels) continue;
      if (t.calls_of(b.module) != 1 || t.calls_of(c.module) != 1 || t.consumers(c.output).size() != 1) continue;
      fold_of_conv[p] = int64_t(i);
      folded_bn.insert(int64_t(i));
      call_of(c.module).folded_bn = bn;
      call_of(b.module).folded_away = true;
      q->plan.push_back({c.key(), c.type, "fold " + b.path});
    }
  }

  std::unordered_set<const void*> quantized;  // tensors (by identity) that hold int8 codes
  std::set<int64_t> unit_end;                 // sites that carry their unit's requantization
  std::set<const nn::Module*> weights_done;
  auto isq = [&](const Tensor& v) { return quantized.count(v.impl()) > 0; };
  std::map<int64_t, std::pair<QuantCall*, int64_t>> unit_owner;  // unit-end site -> (conv's interceptor, call)
  auto out_fq = [&](const compile::CallSite& s, const std::string& what) {
    auto fq = act_fq(s, "activation_post_process", s.output, what);
    call_of(s.module).output_fq[s.call] = fq;
    quantized.insert(s.output.impl());
    if (const auto o = unit_owner.find(&s - t.sites.data()); o != unit_owner.end())
      o->second.first->unit_out_fq[o->second.second] = fq;
    return fq;
  };
  call_of(t.sites[0].module).root = true;

  for (const int64_t id : t.exit_order) {
    const compile::CallSite& s = t.sites[size_t(id)];
    if (!s.leaf()) {
      // A block whose result comes from a functional op (a residual add): requantize it here.
      if (act && !isq(s.output) && t.producer(s.output) < 0 && !skipped(s.path)) out_fq(s, "output");
      continue;
    }
    if (skipped(s.path)) {
      q->plan.push_back({s.key(), s.type, "skip (float)"});
      continue;
    }
    if (is_weighted(s.type)) {
      if (o.dynamic && s.type != "Linear") continue;
      QuantCall& c = call_of(s.module);
      if (!weights_done.count(s.module)) {
        weights_done.insert(s.module);
        if (qc.fp16_weights) {
          c.fp16_weights = true;
          q->plan.push_back({s.key(), s.type, "weight fp16"});
        } else if (qc.quantize_weights) {
          QSpec ws = qc.weight;
          const Tensor w = weight_of(*s.module);
          const int64_t channels = ws.axis >= 0 ? w.size(ws.axis) : 1;
          // Weights: the current range every call ("minmax" of the tensor as it is now).
          auto obs = qc.weight_observer == "minmax" ? make_moving_average_observer(ws, 1.0f)
                                                    : make_observer(qc.weight_observer, ws);
          c.weight_fq = add_fq(s, "weight_fake_quant", ws, std::move(obs), channels, "weight");
        }
      }
      if (o.dynamic) {
        c.input_fq[s.call] = act_fq(s, "input_fake_quant", s.input, "input");
        continue;
      }
      if (!act) continue;
      if (!isq(s.input)) c.input_fq[s.call] = act_fq(s, "input_fake_quant", s.input, "input");
      int64_t end = id;
      if (const auto f = fold_of_conv.find(id); f != fold_of_conv.end()) end = f->second;
      if (o.fuse) {
        const auto cons = t.consumers(t.sites[size_t(end)].output);
        if (cons.size() == 1 && is_relu(t.sites[size_t(cons[0])].type) && !skipped(t.sites[size_t(cons[0])].path) &&
            t.sites[size_t(cons[0])].leaf())
          end = cons[0];
      }
      unit_owner[end] = {&c, s.call};
      if (end == id) out_fq(s, "output");
      else unit_end.insert(end);
      continue;
    }
    if (folded_bn.count(id)) {
      if (unit_end.count(id)) out_fq(s, "output");
      continue;
    }
    if (!act) continue;
    if (unit_end.count(id)) {
      out_fq(s, "output (fused)");
      continue;
    }
    if (is_relu(s.type) && isq(s.input)) {  // a clamp of codes: no requantization
      quantized.insert(s.output.impl());
      call_of(s.module).propagate = true;
      continue;
    }
    if (is_pass_through(s.type)) {
      if (isq(s.input)) {
        quantized.insert(s.output.impl());
        call_of(s.module).propagate = true;
      }
      continue;
    }
    if (s.type == "BatchNorm2d" && o.fuse) {  // an unfolded BN: BN (+ ReLU) is one unit
      const auto cons = t.consumers(s.output);
      if (cons.size() == 1 && is_relu(t.sites[size_t(cons[0])].type) && !skipped(t.sites[size_t(cons[0])].path)) {
        unit_end.insert(cons[0]);
        continue;
      }
    }
    out_fq(s, "output");  // anything else computes new values: requantize
  }

  for (auto& [path, m] : model.named_modules())
    if (const auto it = calls.find(m); it != calls.end()) {
      it->second->path = path;
      it->second->dynamic = o.dynamic;
    }
  for (auto& [m, c] : calls) {
    m->set_interceptor(c);
    q->intercepted.push_back(m);
  }
  return q;
}

void convert(QuantizedModel& q) {
  q.freeze_observers();
  q.enable_fake_quant(true);
}

}  // namespace finch::quant
