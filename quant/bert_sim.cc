// BertStaticSim (bert_sim.h): the static int8 BERT program's arithmetic as an autograd forward.
//
// Each quantized piece returns a Coded value: its int8 codes, its parameters and its value
// (codes − z)·s as f32, which carries the surrogate's gradient. The program's ops read codes, so
// the next piece reads `codes` (or requantizes `value`, which lies on the grid and gives the same
// codes back), never a float that went through other arithmetic.
//
// Shapes: B batch, S sequence, H hidden, NH heads, HD = H / NH, I intermediate, V vocabulary.
#include "quant/bert_sim.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "autograd/functional.h"
#include "autograd/nn/nn.h"
#include "autograd/node.h"
#include "framework/error.h"
#include "framework/grad_mode.h"
#include "kernels/qs8_rnn.h"
#include "kernels/qs8_transformer.h"
#include "kernels/quantize.h"
#include "kernels/reference.h"
#include "ops/attention.h"
#include "ops/activation.h"
#include "ops/elementwise.h"
#include "quant/fake_quant.h"
#include "quant/matrix_qparams.h"
#include "quant/integer_sim.h"

namespace finch::quant {

struct BertStaticSim::Coded {
  Tensor value;  // f32, (codes − z)·s, differentiable through the surrogate
  Tensor codes;  // i8
  QParams p;
};

namespace {

namespace qk = kernels;
constexpr const char* kWhat = "simulated static int8 BERT";

Tensor det(const Tensor& t) { return t.defined() ? t.detach() : Tensor(); }

std::vector<float> values(const Tensor& t) { return t.detach().contiguous().to_vector<float>(); }

}  // namespace

Tensor bert_straight_through(const Tensor& surrogate, Tensor exact, const QParams* p) {
  if (!surrogate.defined() || !autograd::should_record({surrogate})) return exact;
  Tensor mask;
  if (p) {
    NoGradGuard ng;
    mask = fake_quantize_mask(surrogate.detach(), *p);
  }
  autograd::record("qat_bert_straight_through", {surrogate}, {exact},
                   [mask](const autograd::Grads& g, const autograd::Needs&) {
                     if (!mask.defined() || !g[0].defined()) return autograd::Grads{g[0]};
                     return autograd::Grads{ops::where(mask, g[0], zeros_like(g[0]))};
                   });
  return exact;
}

namespace {

// transformers' additive mask (models::bert_additive_mask): 0 where attended, the lowest float
// where padded, f32 [B, 1, 1, S]; and the same mask as u8 [B, S] for the integer kernel.
void masks(const Tensor& attention_mask, Tensor& additive, std::vector<uint8_t>& u8) {
  const std::vector<double> m = attention_mask.contiguous().to_vector<double>();
  std::vector<float> add(m.size());
  u8.resize(m.size());
  for (size_t i = 0; i < m.size(); ++i) {
    if (m[i] != 0.0 && m[i] != 1.0) fail(kWhat, ": expected attention_mask values 0 or 1, found ", m[i]);
    add[i] = m[i] != 0.0 ? 0.0f : std::numeric_limits<float>::lowest();
    u8[i] = uint8_t(m[i] != 0.0);
  }
  additive = from_vector(add, {attention_mask.size(0), 1, 1, attention_mask.size(1)});
}

Tensor i8_tensor(const std::vector<int8_t>& v, const Shape& shape) {
  Tensor t = empty(shape, DType::i8);
  std::memcpy(t.data<int8_t>(), v.data(), v.size());
  return t;
}

// The qembedding op: per-row int8 rows of the word and type tables, float(q)·s; the position rows
// stay f32; (word + type) + position, as the program adds them. Checks the ids and the length.
Tensor embedding_sum(nn::Embedding& word, nn::Embedding& type, nn::Embedding& pos, const Tensor& input_ids,
                     const Tensor& token_type_ids) {
  const int64_t S = input_ids.size(1);
  for (auto [t, n] : {std::pair{&input_ids, &word}, std::pair{&token_type_ids, &type}})
    for (int64_t id : t->to_vector<int64_t>())
      if (id < 0 || id >= n->num_embeddings)
        fail(kWhat, ": expected token ids in [0, ", n->num_embeddings, "), found ", id);
  if (S > pos.num_embeddings) fail(kWhat, ": expected at most ", pos.num_embeddings, " tokens, found ", S);
  auto qembed = [&](nn::Embedding& m, const Tensor& ids, const char* what) {
    const qk::QMatrix qm = qk::quantize_matrix(kWhat, what, values(m.weight), m.num_embeddings, m.embedding_dim);
    return finch::embedding(ids, fake_quant(m.weight, row_params(qm)), m.padding_idx.value_or(-1));
  };
  const Tensor h = finch::add(qembed(word, input_ids, "word_embeddings"), qembed(type, token_type_ids, "token_type_embeddings"));
  return finch::add(h, finch::embedding(arange(0.0, double(S), 1.0, DType::i64), pos.weight));
}

template <typename M>
M& as(nn::Module& m, const std::string& path, const char* type) {
  auto* p = dynamic_cast<M*>(&m);
  if (!p) fail(kWhat, ": expected module '", path, "' to be an ", type, ", found ", m.type_name());
  return *p;
}

}  // namespace

BertStaticSim::BertStaticSim(nn::Module& qa_model, const compile::BertProgramSpec& spec,
                             const BertStaticOptions& options)
    : model_(&qa_model), spec_(spec), options_(options) {
  if (spec.layers < 1) fail(kWhat, ": expected at least one encoder layer, found ", spec.layers);
  if (spec.heads < 1) fail(kWhat, ": expected at least one attention head, found ", spec.heads);
  if (spec.hidden_act != "gelu")
    fail(kWhat, ": the static int8 program tabulates the erf GELU; expected hidden_act gelu, found '", spec.hidden_act,
         "'");
  for (auto& [path, m] : qa_model.named_modules()) modules_[path] = m;
  // Every module the forward reads, checked once here.
  const std::string e = "bert.embeddings.";
  for (const char* n : {"word_embeddings", "position_embeddings", "token_type_embeddings"})
    as<nn::Embedding>(module(e + n), e + n, "Embedding");
  as<nn::LayerNorm>(module(e + "LayerNorm"), e + "LayerNorm", "LayerNorm");
  const int64_t hidden = as<nn::Embedding>(module(e + "word_embeddings"), e + "word_embeddings", "Embedding")
                             .weight.size(1);
  if (hidden % spec.heads != 0)
    fail(kWhat, ": expected ", spec.heads, " heads to divide the hidden size ", hidden);
  head_dim_ = hidden / spec.heads;
  // Each encoder Linear: dense, or factorized as compress/lowrank.h writes it (Sequential of
  // Linear(in, r, no bias) "0" and Linear(r, out) "1"). The value names follow, in forward order.
  auto linear = [&](const std::string& path, bool read_by_attention) {
    nn::Module& m = module(path);
    if (dynamic_cast<nn::Linear*>(&m)) {
      names_.push_back(path + ".out");
    } else {
      const auto a = modules_.find(path + ".0"), b = modules_.find(path + ".1");
      auto* first = a == modules_.end() ? nullptr : dynamic_cast<nn::Linear*>(a->second);
      auto* second = b == modules_.end() ? nullptr : dynamic_cast<nn::Linear*>(b->second);
      if (!dynamic_cast<nn::Sequential*>(&m) || m.named_children().size() != 2 || !first || !second || first->bias.defined() ||
          first->out_features != second->in_features)
        fail(kWhat, ": expected module '", path, "' to be a Linear or a factorized Linear (a Sequential of Linear(in, r) "
             "without bias and Linear(r, out)), found ", m.type_name());
      factorized_.insert(path);
      names_.push_back(path + ".0.out");
      names_.push_back(path + ".1.out");
    }
    if (read_by_attention) symmetric_.insert(names_.back());
  };
  for (int64_t l = 0; l < spec.layers; ++l) {
    const std::string p = "bert.encoder.layer." + std::to_string(l) + ".";
    names_.push_back(l == 0 ? "bert.embeddings.LayerNorm.out" : "bert.encoder.layer." + std::to_string(l - 1) +
                                                                    ".output.LayerNorm.out");
    for (const char* n : {"attention.self.query", "attention.self.key", "attention.self.value"}) linear(p + n, true);
    names_.push_back(p + "attention.self.out");
    linear(p + "attention.output.dense", false);
    names_.push_back(p + "attention.output.LayerNorm.out");
    linear(p + "intermediate.dense", false);
    names_.push_back(p + "intermediate.out");
    linear(p + "output.dense", false);
    for (const char* n : {"attention.output.LayerNorm", "output.LayerNorm"})
      as<nn::LayerNorm>(module(p + n), p + n, "LayerNorm");
  }
  as<nn::Linear>(module("qa_outputs"), "qa_outputs", "Linear");
}

nn::Module& BertStaticSim::module(const std::string& path) const {
  const auto it = modules_.find(path);
  if (it == modules_.end()) fail(kWhat, ": the model has no module '", path, "'");
  return *it->second;
}

void BertStaticSim::set_params(const BertStaticParams& p) {
  BertStaticParams mine;
  for (const std::string& n : names_) {
    const auto it = p.find(n);
    if (it == p.end()) fail(kWhat, ": no activation range for value '", n, "'");
    mine[n] = it->second;
  }
  params_ = std::move(mine);
  ranges_.clear();
}

void BertStaticSim::enable_observers(bool on, double averaging) {
  if (!(averaging > 0 && averaging <= 1)) fail(kWhat, ": expected an averaging constant in (0, 1], found ", averaging);
  observe_ = on, averaging_ = averaging;
}

const QParams& BertStaticSim::observe(const std::string& name, const Tensor& surrogate) {
  if (observe_) {
    float lo = std::numeric_limits<float>::max(), hi = std::numeric_limits<float>::lowest();
    {
      NoGradGuard ng;
      const Tensor t = surrogate.detach().contiguous();
      const float* p = t.data<float>();
      for (int64_t i = 0; i < t.numel(); ++i) {
        if (!std::isfinite(p[i])) fail(kWhat, ": expected finite values at '", name, "', found ", p[i]);
        lo = std::min(lo, p[i]), hi = std::max(hi, p[i]);
      }
    }
    auto [it, first] = ranges_.try_emplace(name, lo, hi);
    if (!first) {
      it->second.first = float(double(it->second.first) + averaging_ * (double(lo) - it->second.first));
      it->second.second = float(double(it->second.second) + averaging_ * (double(hi) - it->second.second));
    }
    params_[name] = qparams(bert_activation_spec(symmetric_.count(name) > 0), {it->second.first}, {it->second.second});
  }
  const auto it = params_.find(name);
  if (it == params_.end())
    fail(kWhat, ": no activation range for value '", name, "' (set_params, or run with the observers on first)");
  return it->second;
}

BertStaticSim::Coded BertStaticSim::quantize_input(const Tensor& h, const std::string& name,
                                                   std::map<std::string, Tensor>* codes) {
  Coded c;
  c.p = observe(name, h);
  c.value = fake_quant(h, c.p);  // (codes − z)·s, the straight-through gradient of fake_quant
  {
    NoGradGuard ng;
    c.codes = quantize(h.detach().contiguous(), c.p);
  }
  if (codes) (*codes)[name] = c.codes;
  return c;
}

BertStaticSim::Coded BertStaticSim::linear_unit(const Coded& x, const std::string& path, const std::string& out,
                                                std::map<std::string, Tensor>* codes) {
  auto& lin = static_cast<nn::Linear&>(module(path));
  const QParams wq = bert_weight_params(lin.weight.detach());
  Tensor sur;
  if (observe_ || autograd::should_record({x.value, lin.weight, lin.bias}))
    sur = finch::linear(x.value, fake_quant(lin.weight, wq), lin.bias);
  Coded y;
  y.p = observe(out, sur);
  Tensor exact;
  {
    NoGradGuard ng;
    // The qlinear op's arithmetic: x's codes, the weight's codes, the int32 bias at s_x·s_w, the
    // exact accumulation and one fixed-point requantization per output channel.
    exact = integer_linear(x.value.detach(), x.p, lin.weight.detach(), wq, det(lin.bias), y.p);
    y.codes = quantize(exact, y.p);
  }
  y.value = bert_straight_through(sur, exact, &y.p);
  if (codes) (*codes)[out] = y.codes;
  return y;
}

BertStaticSim::Coded BertStaticSim::linear_block(const Coded& x, const std::string& path,
                                                 std::map<std::string, Tensor>* codes) {
  if (!factorized(path)) return linear_unit(x, path, path + ".out", codes);
  // The program's two qlinear nodes: x -> the rank-r codes "<path>.0.out" (no bias: an int32 bias
  // of zeros) -> "<path>.1.out", each with its own range and one requantization.
  return linear_unit(linear_unit(x, path + ".0", path + ".0.out", codes), path + ".1", path + ".1.out", codes);
}

BertStaticSim::Coded BertStaticSim::attention_unit(const Coded& q, const Coded& k, const Coded& v,
                                                   const Tensor& attention_mask, const std::string& out,
                                                   std::map<std::string, Tensor>* codes) {
  // H is the attention width: the hidden size, or fewer heads of the same width after structured
  // pruning (compress/channel_groups.h). The head width is the config's, as bert_qa_program takes it.
  const int64_t B = q.codes.size(0), S = q.codes.size(1), H = q.codes.size(2), HD = head_dim_;
  if (H % HD != 0) fail(kWhat, ": expected a whole number of heads of width ", HD, ", found an attention width of ", H);
  const int64_t NH = H / HD;
  Tensor additive;
  std::vector<uint8_t> mask;
  masks(attention_mask, additive, mask);
  Tensor sur;
  if (observe_ || autograd::should_record({q.value, k.value, v.value})) {
    auto heads = [&](const Tensor& t) { return finch::permute(finch::view(t, {B, S, NH, H / NH}), {0, 2, 1, 3}); };
    const Tensor ctx = finch::scaled_dot_product_attention(heads(q.value), heads(k.value), heads(v.value), additive);
    sur = finch::reshape(finch::permute(ctx, {0, 2, 1, 3}), {B, S, H});
  }
  Coded y;
  y.p = observe(out, sur);
  for (const Coded* c : {&q, &k, &v})
    if (c->p.zero_point[0] != 0) fail(kWhat, ": expected the attention's inputs quantized symmetrically (zero point 0)");
  Tensor exact;
  {
    NoGradGuard ng;
    const QAttentionShape sh{B, S, H, NH};
    const QAttentionQuant qu{q.p.scale[0], k.p.scale[0], v.p.scale[0], y.p.scale[0],
                             y.p.zero_point[0], int32_t(y.p.qmin), int32_t(y.p.qmax)};
    const Tensor qc = q.codes.contiguous(), kc = k.codes.contiguous(), vc = v.codes.contiguous();
    y.codes = empty(qc.shape(), DType::i8);
    // The qattention op's kernel: int8 Q·Kᵀ, integer softmax, P·V, one requantization.
    kernels::qs8_attention(qc.data<int8_t>(), kc.data<int8_t>(), vc.data<int8_t>(), mask.data(), sh, qu,
                           y.codes.data<int8_t>());
    exact = dequantize(y.codes, y.p);
  }
  y.value = bert_straight_through(sur, exact, &y.p);
  if (codes) (*codes)[out] = y.codes;
  return y;
}

BertStaticSim::Coded BertStaticSim::gelu_unit(const Coded& x, const std::string& out,
                                              std::map<std::string, Tensor>* codes) {
  Tensor sur;
  if (observe_ || autograd::should_record({x.value})) sur = finch::gelu(x.value, "none");
  Coded y;
  y.p = observe(out, sur);
  Tensor exact;
  {
    NoGradGuard ng;
    const float s_x = x.p.scale[0], s_y = y.p.scale[0];
    const int32_t z_x = x.p.zero_point[0], z_y = y.p.zero_point[0], lo = int32_t(y.p.qmin), hi = int32_t(y.p.qmax);
    // The qgelu op's table over the 256 input codes.
    const std::vector<int8_t> table = options_.integer_gelu
                                          ? igelu_table_i8(igelu_params(s_x, z_x, s_y, z_y, lo, hi), false)
                                          : gelu_table_i8(s_x, z_x, false, s_y, z_y, lo, hi);
    const Tensor xc = x.codes.contiguous();
    y.codes = empty(xc.shape(), DType::i8);
    const int8_t* px = xc.data<int8_t>();
    int8_t* py = y.codes.data<int8_t>();
    for (int64_t i = 0; i < xc.numel(); ++i) py[i] = table[size_t(int(px[i]) + 128)];
    exact = dequantize(y.codes, y.p);
  }
  y.value = bert_straight_through(sur, exact, &y.p);
  if (codes) (*codes)[out] = y.codes;
  return y;
}

BertSimOutputs BertStaticSim::forward(const Tensor& input_ids, const Tensor& token_type_ids,
                                      const Tensor& attention_mask, std::map<std::string, Tensor>* codes) {
  if (input_ids.dim() != 2 || token_type_ids.shape() != input_ids.shape() || attention_mask.shape() != input_ids.shape())
    fail(kWhat, ": expected input_ids, token_type_ids and attention_mask of one shape [B, S], found ",
         shape_str(input_ids.shape()), ", ", shape_str(token_type_ids.shape()), " and ", shape_str(attention_mask.shape()));
  const std::string e = "bert.embeddings.";
  auto& word = static_cast<nn::Embedding&>(module(e + "word_embeddings"));
  auto& type = static_cast<nn::Embedding&>(module(e + "token_type_embeddings"));
  auto& pos = static_cast<nn::Embedding&>(module(e + "position_embeddings"));
  Tensor h = module(e + "LayerNorm")(embedding_sum(word, type, pos, input_ids, token_type_ids));
  h = module(e + "dropout")(h);
  for (int64_t l = 0; l < spec_.layers; ++l) {
    const std::string p = "bert.encoder.layer." + std::to_string(l);
    const std::string in = l == 0 ? "bert.embeddings.LayerNorm.out" : "bert.encoder.layer." + std::to_string(l - 1) +
                                                                          ".output.LayerNorm.out";
    const Coded x = quantize_input(h, in, codes);
    const std::string sa = p + ".attention.self";
    const Coded q = linear_block(x, sa + ".query", codes);
    const Coded k = linear_block(x, sa + ".key", codes);
    const Coded v = linear_block(x, sa + ".value", codes);
    const Coded ctx = attention_unit(q, k, v, attention_mask, sa + ".out", codes);
    const std::string ao = p + ".attention.output";
    const Coded d = linear_block(ctx, ao + ".dense", codes);
    // dequantize -> float residual add -> LayerNorm (the hidden dropout: training only).
    const Tensor a = module(ao + ".LayerNorm")(finch::add(module(ao + ".dropout")(d.value), h));
    const Coded xa = quantize_input(a, ao + ".LayerNorm.out", codes);
    const Coded f = linear_block(xa, p + ".intermediate.dense", codes);
    const Coded g = gelu_unit(f, p + ".intermediate.out", codes);
    const Coded o = linear_block(g, p + ".output.dense", codes);
    h = module(p + ".output.LayerNorm")(finch::add(module(p + ".output.dropout")(o.value), a));
  }
  // The QA head: dq_linear with per-row activations and per-row int8 weights.
  auto& qa = static_cast<nn::Linear&>(module("qa_outputs"));
  const int64_t OC = qa.weight.size(0), K = qa.weight.size(1);
  const qk::QMatrix qm = qk::quantize_matrix(kWhat, "qa_outputs.weight", values(qa.weight), OC, K);
  Tensor exact;
  {
    NoGradGuard ng;
    exact = reference::dq_linear_rows(h.detach(), i8_tensor(qm.w, {OC, K}), qm.s_w, det(qa.bias), "none");
  }
  Tensor sur;
  if (autograd::should_record({h, qa.weight, qa.bias})) sur = finch::linear(h, fake_quant(qa.weight, row_params(qm)), qa.bias);
  const Tensor logits = bert_straight_through(sur, exact, nullptr);
  if (logits.size(-1) != 2) fail(kWhat, ": expected qa_outputs with 2 outputs (start, end), found ", logits.size(-1));
  return {finch::select(logits, 2, 0), finch::select(logits, 2, 1)};
}

Tensor bert_dq_linear_rows(const Tensor& x, const Tensor& w, const std::vector<float>& s_w, const Tensor& bias) {
  NoGradGuard ng;
  const char* what = "dq_linear (simulated)";
  if (!x.defined() || x.dtype() != DType::f32 || x.dim() < 1 || !w.defined() || w.dtype() != DType::i8 || w.dim() != 2 ||
      w.size(1) != x.size(-1) || int64_t(s_w.size()) != w.size(0) ||
      (bias.defined() && (bias.dtype() != DType::f32 || bias.numel() != w.size(0))))
    fail(what, ": expected x f32 [.., K], w i8 [OC, K], one scale per row and an f32 bias [OC] or none, found x ",
         shape_str(x.shape()), ", w ", shape_str(w.shape()), ", ", s_w.size(), " scales");
  const int64_t K = x.size(-1), OC = w.size(0), R = K > 0 ? x.numel() / K : 0;
  const Tensor xc = x.contiguous().view({R, K});
  const float* xp = xc.data<float>();
  // Each row's codes from its own [min, max] (int8 affine, full range), as the reference
  // quantizes the row it is given; centred (q − z) in f64.
  const QSpec spec{.bits = 8, .is_signed = true, .symmetric = false, .narrow = false, .axis = -1};
  std::vector<float> s_x(static_cast<size_t>(R));
  Tensor centred = empty({R, K}, DType::f64);
  double* cp = centred.data<double>();
  for (int64_t r = 0; r < R; ++r) {
    float lo = xp[r * K], hi = lo;
    for (int64_t k = 0; k < K; ++k) {
      const float v = xp[r * K + k];
      if (!std::isfinite(v)) fail(what, ": expected finite input values, found ", v);
      lo = std::min(lo, v), hi = std::max(hi, v);
    }
    const QParams qp = qparams(spec, {lo}, {hi});
    s_x[size_t(r)] = qp.scale[0];
    const std::vector<int64_t> q = reference::quantize(xc.narrow(0, r, 1), qp).to_vector<int64_t>();
    for (int64_t k = 0; k < K; ++k) cp[r * K + k] = double(q[size_t(k)] - qp.zero_point[0]);
  }
  // Σ (q − z)·w: every partial sum an integer below 2^53 in magnitude, so the f64 product is exact.
  const std::vector<double> acc = finch::linear(centred, w.to(DType::f64), Tensor()).contiguous().to_vector<double>();
  const std::vector<float> b = bias.defined() ? bias.contiguous().to_vector<float>() : std::vector<float>(size_t(OC), 0.f);
  std::vector<float> y(size_t(R * OC));
  for (int64_t r = 0; r < R; ++r)
    for (int64_t oc = 0; oc < OC; ++oc) {
      // The reference's int32 accumulator (wrapping), then one fma with the f32 product of the scales.
      const auto acc32 = int32_t(uint32_t(uint64_t(int64_t(acc[size_t(r * OC + oc)]))));
      y[size_t(r * OC + oc)] = std::fma(float(acc32), s_x[size_t(r)] * s_w[size_t(oc)], b[size_t(oc)]);
    }
  Shape out = x.shape();
  out.back() = OC;
  return from_vector(y, out);
}

BertSimOutputs bert_dynamic_sim_forward(nn::Module& qa_model, const compile::BertProgramSpec& spec,
                                        const Tensor& input_ids, const Tensor& token_type_ids,
                                        const Tensor& attention_mask, std::map<std::string, Tensor>* values_out) {
  NoGradGuard ng;
  const char* what = "simulated dynamic int8 BERT";
  if (spec.hidden_act != "gelu" && spec.hidden_act != "gelu_new" && spec.hidden_act != "relu")
    fail(what, ": expected hidden_act gelu, gelu_new or relu, found '", spec.hidden_act, "'");
  if (input_ids.dim() != 2 || token_type_ids.shape() != input_ids.shape() || attention_mask.shape() != input_ids.shape())
    fail(what, ": expected input_ids, token_type_ids and attention_mask of one shape [B, S], found ",
         shape_str(input_ids.shape()), ", ", shape_str(token_type_ids.shape()), " and ", shape_str(attention_mask.shape()));
  std::map<std::string, nn::Module*> mods;
  for (auto& [path, m] : qa_model.named_modules()) mods[path] = m;
  auto get = [&](const std::string& path) -> nn::Module& {
    const auto it = mods.find(path);
    if (it == mods.end()) fail(what, ": the model has no module '", path, "'");
    return *it->second;
  };
  auto keep = [&](const std::string& name, const Tensor& t) {
    if (values_out) (*values_out)[name] = t;
    return t;
  };
  const std::string e = "bert.embeddings.";
  auto& word = as<nn::Embedding>(get(e + "word_embeddings"), e + "word_embeddings", "Embedding");
  const int64_t B = input_ids.size(0), S = input_ids.size(1), HD = word.embedding_dim / spec.heads;
  if (spec.heads < 1 || HD < 1 || word.embedding_dim % spec.heads != 0)
    fail(what, ": expected ", spec.heads, " heads to divide the hidden size ", word.embedding_dim);
  // A dq_linear with per-row activations: quantize_matrix's codes of the weight, the op's reference.
  auto dq = [&](const Tensor& x, const std::string& path) {
    auto& lin = as<nn::Linear>(get(path), path, "Linear");
    const int64_t OC = lin.weight.size(0), K = lin.weight.size(1);
    const qk::QMatrix qm = qk::quantize_matrix(what, (path + ".weight").c_str(), values(lin.weight), OC, K);
    return keep(path + ".out", bert_dq_linear_rows(x, i8_tensor(qm.w, {OC, K}), qm.s_w, det(lin.bias)));
  };
  // A dense Linear, or a factorized one (compress/lowrank.h) as its two dq_linear nodes.
  auto linear = [&](const Tensor& x, const std::string& path) {
    return mods.count(path + ".0") && mods.count(path + ".1") && !dynamic_cast<nn::Linear*>(&get(path))
               ? dq(dq(x, path + ".0"), path + ".1")
               : dq(x, path);
  };
  auto layer_norm = [&](const Tensor& x, const std::string& path) { return keep(path + ".out", get(path)(x)); };
  Tensor additive;
  std::vector<uint8_t> unused;
  masks(attention_mask, additive, unused);
  Tensor h = layer_norm(embedding_sum(word, as<nn::Embedding>(get(e + "token_type_embeddings"), e + "token_type_embeddings", "Embedding"),
                                      as<nn::Embedding>(get(e + "position_embeddings"), e + "position_embeddings", "Embedding"),
                                      input_ids, token_type_ids),
                        e + "LayerNorm");
  for (int64_t l = 0; l < spec.layers; ++l) {
    const std::string p = "bert.encoder.layer." + std::to_string(l), sa = p + ".attention.self";
    const Tensor q = linear(h, sa + ".query"), k = linear(h, sa + ".key"), v = linear(h, sa + ".value");
    // The attention op: [B, S, A] -> [B, NH, S, HD] views, the fused kernel, back to [B, S, A].
    const int64_t A = q.size(2), NH = A / HD;
    if (A % HD != 0) fail(what, ": expected a whole number of heads of width ", HD, ", found an attention width of ", A);
    auto heads = [&](const Tensor& t) { return t.contiguous().view({B, S, NH, HD}).permute({0, 2, 1, 3}); };
    const Tensor ctx = keep(sa + ".out", ops::scaled_dot_product_attention(heads(q), heads(k), heads(v), additive)
                                             .out.permute({0, 2, 1, 3})
                                             .contiguous()
                                             .view({B, S, A}));
    const std::string ao = p + ".attention.output";
    const Tensor a = layer_norm(ops::add(linear(ctx, ao + ".dense"), h), ao + ".LayerNorm");
    Tensor f = linear(a, p + ".intermediate.dense");
    f = keep(p + ".intermediate.out", spec.hidden_act == "relu" ? ops::relu(f)
                                                                : ops::gelu(f, spec.hidden_act == "gelu" ? "none" : "tanh"));
    h = layer_norm(ops::add(linear(f, p + ".output.dense"), a), p + ".output.LayerNorm");
  }
  const Tensor logits = dq(h, "qa_outputs");
  if (logits.size(-1) != 2) fail(what, ": expected qa_outputs with 2 outputs (start, end), found ", logits.size(-1));
  return {logits.select(2, 0).contiguous(), logits.select(2, 1).contiguous()};
}

std::vector<std::pair<std::string, Tensor>> BertStaticSim::state() const {
  std::vector<std::pair<std::string, Tensor>> out;
  for (const auto& [name, r] : ranges_) out.emplace_back("qat_range." + name, from_vector<float>({r.first, r.second}, {2}));
  return out;
}

void BertStaticSim::load_state(const std::vector<std::pair<std::string, Tensor>>& entries, const std::string& file) {
  std::map<std::string, std::pair<float, float>> r;
  for (const auto& [key, t] : entries) {
    if (key.rfind("qat_range.", 0) != 0) continue;
    const std::string name = key.substr(10);
    if (std::find(names_.begin(), names_.end(), name) == names_.end())
      fail(file, ": expected QAT ranges of this model's values, found '", key, "'");
    if (t.dtype() != DType::f32 || t.numel() != 2)
      fail(file, ": expected '", key, "' as f32 [2] (lo, hi), found ", dtype_name(t.dtype()), " ", shape_str(t.shape()));
    const std::vector<float> v = t.contiguous().to_vector<float>();
    if (!std::isfinite(v[0]) || !std::isfinite(v[1]) || v[0] > v[1])
      fail(file, ": expected '", key, "' to hold a finite range lo <= hi, found [", v[0], ", ", v[1], "]");
    r[name] = {v[0], v[1]};
  }
  if (r.size() != names_.size())
    fail(file, ": expected QAT ranges for all ", names_.size(), " quantized values, found ", r.size());
  ranges_ = std::move(r);
  params_.clear();
  for (const auto& [name, lr] : ranges_)
    params_[name] = qparams(bert_activation_spec(symmetric_.count(name) > 0), {lr.first}, {lr.second});
}

}  // namespace finch::quant
