// prepare/convert: the interceptors that carry out the placement plan (quant/plan.h), and the
// quantized model's switches, deployed weights and counters.
#include "quant/prepare.h"

#include <map>
#include <tuple>

#include "autograd/capture.h"
#include "autograd/functional.h"
#include "autograd/nn/nn.h"
#include "framework/error.h"
#include "framework/grad_mode.h"
#include "compile/bn_fold.h"
#include "compile/capture.h"
#include "quant/integer_sim.h"
#include "kernels/quantize.h"
#include "kernels/reference.h"
#include "ops/op_attrs.h"
#include "quant/observer.h"

namespace finch::quant {

namespace {

// A Conv2d or Conv1d (the 1-D conv is the conv2d of its [N, C, 1, L] view everywhere below).
struct ConvOf {
  nn::Conv2d* c2 = nullptr;
  nn::Conv1d* c1 = nullptr;
  explicit ConvOf(nn::Module& m) : c2(dynamic_cast<nn::Conv2d*>(&m)), c1(dynamic_cast<nn::Conv1d*>(&m)) {}
  explicit operator bool() const { return c2 || c1; }
  const Tensor& weight() const { return c2 ? c2->weight : c1->weight; }
  const Tensor& bias() const { return c2 ? c2->bias : c1->bias; }
  int64_t out_channels() const { return c2 ? c2->out_channels : c1->out_channels; }
  bool training() const { return c2 ? c2->is_training() : c1->is_training(); }
  // [n, 1, 1(, 1)]: a per-output-channel factor shaped for the weight (lead = oc) or output.
  Shape channel_shape(int64_t oc, bool output) const {
    Shape s(c2 ? 4 : 3, 1);
    s[output ? 1 : 0] = oc;
    return s;
  }
  Conv2dParams params2d() const {
    if (c2) return c2->options;
    Conv2dParams p;
    p.sw = c1->stride, p.pw = c1->padding, p.dw = c1->dilation, p.groups = c1->groups;
    return p;
  }
  Tensor run(const Tensor& x, const Tensor& w, const Tensor& b) const {
    if (c2) return conv2d(x, w, b, c2->options);
    return conv1d(x, w, b, c1->stride, c1->padding, c1->dilation, c1->groups);
  }
};

// What one module computes while prepared, for all of its calls.
class QuantCall : public nn::ForwardInterceptor {
 public:
  std::map<int64_t, std::shared_ptr<FakeQuantize>> input_fq, output_fq;
  std::shared_ptr<FakeQuantize> weight_fq;
  bool fp16_weights = false;
  nn::BatchNorm* folded_bn = nullptr;  // for a Conv2d/Conv1d: the BN folded into it
  bool folded_away = false;            // for a BatchNorm2d/1d folded into its conv
  std::shared_ptr<bool> bn_frozen;
  std::string path;        // the module's path in the model (names its constants in a capture)
  bool dynamic = false;    // dynamic quantization: the input is quantized per batch at run time
  bool root = false;       // the model itself: clears the quantized-tensor table per forward
  bool propagate = false;  // MaxPool/Flatten/ReLU-as-clamp: the output keeps the input's parameters
  // For a Conv2d/Linear: the FakeQuantize at the end of its unit (after a folded BN or a fused
  // ReLU), per call; in eval mode the unit then runs the exact integer arithmetic.
  std::map<int64_t, std::shared_ptr<FakeQuantize>> unit_out_fq;
  // Per call: the input is a zero pad of this FakeQuantize's codes (plan: padded_input).
  std::map<int64_t, std::shared_ptr<FakeQuantize>> padded_input_fq;
  int64_t exact_calls = 0, float_calls = 0;

  // γ/σ of the folded BN, per output channel.
  Tensor bn_scale(int64_t oc) const {
    nn::BatchNorm& bn = *folded_bn;
    const Tensor gamma = bn.weight.defined() ? bn.weight : ones({oc});
    return div(gamma, sqrt(add(bn.running_var, bn.eps)));
  }

  // The folded weight and bias (no fake-quant): the one fold (compile/bn_fold.h), which the fp32
  // compiler pass computes too, so the simulation, the int8 program and an fp32 program of the
  // same model store the same f32 numbers. Training with BN frozen still needs gradients for w, γ
  // and β: the value is the one fold's, the gradient the f32 expression's (its value cancels).
  std::pair<Tensor, Tensor> folded(const ConvOf& conv) const {
    nn::BatchNorm& bn = *folded_bn;
    const Tensor& cw = conv.weight();
    const Tensor& cb = conv.bias();
    compile::FoldedConv f = compile::fold_conv_bn(cw, cb, bn.weight, bn.bias, bn.running_mean, bn.running_var, bn.eps);
    const bool grads = GradMode::enabled() && (cw.requires_grad() || (bn.weight.defined() && bn.weight.requires_grad()) ||
                                               (bn.bias.defined() && bn.bias.requires_grad()) ||
                                               (cb.defined() && cb.requires_grad()));
    if (!grads) return {f.weight, f.bias};
    const int64_t oc = conv.out_channels();
    const Tensor sf = bn_scale(oc);
    const Tensor beta = bn.bias.defined() ? bn.bias : zeros({oc});
    const Tensor b = cb.defined() ? cb : zeros({oc});
    const Tensor w32 = mul(cw, view(sf, conv.channel_shape(oc, false)));
    const Tensor b32 = add(beta, mul(sub(b, bn.running_mean), sf));
    return {add(f.weight, sub(w32, w32.detach())), add(f.bias, sub(b32, b32.detach()))};
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
    // A zero pad of codes is on their grid (0 is the zero point's code): the unit's input is
    // quantized with those parameters, as the program's integer pad keeps them.
    if (const auto it = padded_input_fq.find(call);
        it != padded_input_fq.end() && it->second->fake_quant_enabled() && !quantized_params(h))
      register_quantized(h, it->second->qparams());
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
  Tensor conv_bn(const ConvOf& conv, const Tensor& x) {
    if (conv.training() && !*bn_frozen) {
      const int64_t oc = conv.out_channels();
      const Tensor sf = bn_scale(oc);
      Tensor y = conv.run(x, quant_weight(mul(conv.weight(), view(sf, conv.channel_shape(oc, false)))), Tensor());
      y = div(y, view(sf, conv.channel_shape(oc, true)));
      if (conv.bias().defined()) y = add(y, view(conv.bias(), conv.channel_shape(oc, true)));
      return folded_bn->forward_impl(y);  // batch statistics, running-statistic update, as BN itself
    }
    const auto [wf, bf] = folded(conv);
    return conv.run(x, quant_weight(wf), bf);
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
    if (const ConvOf conv(m); conv) {
      const auto [w, b] = folded_bn ? folded(conv) : std::pair<Tensor, Tensor>{conv.weight(), conv.bias()};
      weight_fq->forward(w);  // the weight observer sees the deployed weight, as in the float path
      if (conv.c2) return integer_conv2d(x, *in, w, weight_fq->qparams(), b, u->second->qparams(), conv.params2d());
      // Conv1d: the same unit on the [N, C, 1, L] view, as the program's qconv2d runs it.
      NoGradGuard ng;
      return integer_conv2d(x.detach().unsqueeze(2), *in, w.detach().unsqueeze(2), weight_fq->qparams(), b,
                            u->second->qparams(), conv.params2d())
          .squeeze(2);
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
    if (const ConvOf conv(m); conv) {
      std::tie(w, b) = folded_bn ? folded(conv) : std::pair<Tensor, Tensor>{conv.weight(), conv.bias()};
      if (conv.c2) {
        kind = "conv2d";
        a = ops::to_json(conv.c2->options);
      } else {  // capture expands it to conv2d on the [N, C, 1, L] view (compile/capture.cc)
        kind = "conv1d";
        a = {{"stride", conv.c1->stride}, {"padding", conv.c1->padding}, {"dilation", conv.c1->dilation},
             {"groups", conv.c1->groups}};
      }
    } else if (auto* lin = dynamic_cast<nn::Linear*>(&m)) {
      w = lin->weight, b = lin->bias;
    } else {
      fail("capture: module '", path, "' (", m.type_name(), ") has quantized weights but is not a Conv2d, Conv1d or Linear");
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
    if (const ConvOf conv(m); conv) {
      if (folded_bn) return conv_bn(conv, x);
      return conv.run(x, quant_weight(conv.weight()), conv.bias());
    }
    if (auto* lin = dynamic_cast<nn::Linear*>(&m)) return linear(x, quant_weight(lin->weight), lin->bias);
    return m.forward_impl(x);
  }
};

// The module under `path` in `root`, creating empty modules for missing parts: the FakeQuantize
// modules live in QuantizedModel::state under the intercepted module's path.
nn::Module& slot(nn::Module& root, const std::string& path) {
  nn::Module* cur = &root;
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
}

// Carries out `plan`: one interceptor per planned module, the FakeQuantize modules in plan order
// (their names in q.state follow it), each in its module's slot.
void attach(QuantizedModel& q, const compile::CallTrace& t, const QuantPlan& plan, bool qat) {
  const PrepareOptions& o = q.options;
  std::map<nn::Module*, std::shared_ptr<QuantCall>> calls;
  for (const auto& [m, mp] : plan.modules) {
    auto c = std::make_shared<QuantCall>();
    c->bn_frozen = q.bn_frozen_;
    c->folded_bn = mp.folded_bn;
    c->folded_away = mp.folded_away;
    c->fp16_weights = mp.fp16_weights;
    c->propagate = mp.propagate;
    c->root = mp.root;
    c->dynamic = o.dynamic;
    calls[m] = std::move(c);
  }
  std::vector<std::shared_ptr<FakeQuantize>> made;  // plan.quantizers order
  for (const PlannedQuantizer& pq : plan.quantizers) {
    const compile::CallSite& s = t.sites[size_t(pq.site)];
    auto obs = pq.current_range ? make_moving_average_observer(pq.spec, 1.0f) : make_observer(pq.observer, pq.spec);
    auto fq = std::make_shared<FakeQuantize>(std::move(obs), pq.channels, o.qconfig.lsq && qat);
    slot(*q.state, s.path).register_module(pq.name, fq);
    fq->enable_fake_quant(qat);
    made.push_back(fq);
    QuantCall& c = *calls.at(s.module);
    switch (pq.role) {
      case PlannedQuantizer::Role::weight: c.weight_fq = fq; break;
      case PlannedQuantizer::Role::input: c.input_fq[s.call] = fq; break;
      case PlannedQuantizer::Role::output: c.output_fq[s.call] = fq; break;
    }
    if (pq.unit >= 0) {
      const compile::CallSite& u = t.sites[size_t(pq.unit)];
      calls.at(u.module)->unit_out_fq[u.call] = fq;
    }
  }
  for (const auto& [m, mp] : plan.modules)
    for (const auto& [call, k] : mp.padded_input) calls.at(m)->padded_input_fq[call] = made.at(k);
  for (auto& [path, m] : q.model.named_modules())
    if (const auto it = calls.find(m); it != calls.end()) it->second->path = path;
  for (auto& [m, c] : calls) {
    m->set_interceptor(c);
    q.intercepted.push_back(m);
  }
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
    if (const ConvOf conv(*m); conv && c->folded_bn) {
      std::tie(d.weight, d.bias) = c->folded(conv);
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
  QuantPlan plan = plan_quantization(t, o);
  attach(*q, t, plan, qat);
  q->plan = std::move(plan.entries);
  return q;
}

void convert(QuantizedModel& q) {
  q.freeze_observers();
  q.enable_fake_quant(true);
}

}  // namespace finch::quant
