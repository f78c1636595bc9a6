// bert_qa_program (bert_program.h): the graph BertForQuestionAnswering::forward executes in eval
// mode, written node by node from its parameters.
//
// Shape vocabulary: B batch, S sequence length, H hidden size, I intermediate size, P positions.
#include "compile/bert_program.h"

#include <map>
#include <set>

#include "framework/error.h"
#include "framework/grad_mode.h"

namespace finch::compile {

namespace {

using runtime::Graph;
using runtime::Node;
using runtime::Value;

class Builder {
 public:
  Builder(const nn::Module& m, const BertProgramSpec& s) : spec_(s) {
    for (auto& [name, t] : m.named_parameters()) params_[name] = t;
  }
  Graph g;

  // The parameter `name` as a constant of shape `want` (a dim of -1 takes any size >= 1).
  int32_t param(const std::string& name, const Shape& want) {
    if (const auto it = ids_.find(name); it != ids_.end()) return it->second;
    const auto it = params_.find(name);
    if (it == params_.end()) fail("BERT program: the model has no parameter '", name, "'");
    const Tensor& t = it->second;
    bool ok = t.dtype() == DType::f32 && t.dim() == int64_t(want.size());
    for (size_t i = 0; ok && i < want.size(); ++i) ok = want[i] < 0 ? t.size(int64_t(i)) >= 1 : t.size(int64_t(i)) == want[i];
    if (!ok)
      fail("BERT program: expected parameter '", name, "' as f32 ", shape_str(want), " (-1: any size), found ",
           dtype_name(t.dtype()), " ", shape_str(t.shape()));
    Value v;
    v.name = name;
    v.shape = t.shape();
    v.dtype = DType::f32;
    {
      NoGradGuard ng;
      v.data = t.detach().contiguous().clone();
    }
    return ids_[name] = g.add_value(std::move(v));
  }

  int32_t input(const std::string& name, int64_t S) {
    Value v;
    v.name = name;
    v.shape = {1, S};
    v.dtype = DType::i64;
    const int32_t id = g.add_value(std::move(v));
    g.inputs.push_back(id);
    return id;
  }

  // A node with one output of `shape` (f32) named after the node.
  int32_t node(const std::string& op, const std::string& name, std::vector<int32_t> in, const Shape& shape,
               nlohmann::json attrs = nlohmann::json::object()) {
    Value v;
    v.name = name + ".out";
    for (int k = 1; names_.count(v.name); ++k) v.name = name + ".out_" + std::to_string(k);
    names_.insert(v.name);
    v.shape = shape;
    v.dtype = DType::f32;
    Node n;
    n.op = op;
    n.name = name;
    n.inputs = std::move(in);
    n.attrs = std::move(attrs);
    n.outputs.push_back(g.add_value(std::move(v)));
    g.nodes.push_back(std::move(n));
    return g.nodes.back().outputs[0];
  }

  // A Linear, or its low-rank factorization (compress/lowrank.h: `prefix`.0 [r, in] without a
  // bias, then `prefix`.1 [out, r] with it) as two linear nodes through the rank-r activation.
  int32_t linear(const std::string& prefix, int32_t x, int64_t in, int64_t out, const Shape& y) {
    if (!params_.count(prefix + ".weight") && params_.count(prefix + ".0.weight") && params_.count(prefix + ".1.weight")) {
      const int32_t w0 = param(prefix + ".0.weight", {-1, in});
      const int64_t r = g.values[size_t(w0)].shape[0];
      Shape mid = y;
      mid.back() = r;
      const int32_t t = node("linear", prefix + ".0", {x, w0, -1}, mid, {{"act", "none"}});
      return node("linear", prefix + ".1", {t, param(prefix + ".1.weight", {out, r}), param(prefix + ".1.bias", {out})}, y,
                  {{"act", "none"}});
    }
    return node("linear", prefix, {x, param(prefix + ".weight", {out, in}), param(prefix + ".bias", {out})}, y,
                {{"act", "none"}});
  }

  // The output width of the Linear (or factorized Linear) at `prefix` taking `in` features.
  int64_t out_features(const std::string& prefix, int64_t in) {
    const bool factorized = !params_.count(prefix + ".weight") && params_.count(prefix + ".1.weight");
    const int32_t w = param(prefix + (factorized ? ".1.weight" : ".weight"), {-1, factorized ? -1 : in});
    return g.values[size_t(w)].shape[0];
  }

  int32_t layer_norm(const std::string& prefix, int32_t x, int64_t H, const Shape& y) {
    return node("layer_norm", prefix, {x, param(prefix + ".weight", {H}), param(prefix + ".bias", {H})}, y,
                {{"eps", spec_.layer_norm_eps}});
  }

  const BertProgramSpec& spec_;

 private:
  std::map<std::string, Tensor> params_;
  std::map<std::string, int32_t> ids_;
  std::set<std::string> names_;
};

}  // namespace

Graph bert_qa_program(const nn::Module& qa_model, const BertProgramSpec& spec) {
  if (spec.layers < 1 || spec.layers > 4096) fail("BERT program: expected 1..4096 layers, found ", spec.layers);
  if (spec.heads < 1 || spec.heads > 65536) fail("BERT program: expected 1..65536 heads, found ", spec.heads);
  if (!(spec.layer_norm_eps > 0) || !(spec.layer_norm_eps < 1))
    fail("BERT program: expected a layer_norm_eps in (0, 1), found ", spec.layer_norm_eps);
  if (spec.hidden_act != "gelu" && spec.hidden_act != "gelu_new" && spec.hidden_act != "relu")
    fail("BERT program: expected hidden_act gelu, gelu_new or relu, found '", spec.hidden_act, "'");
  Builder b(qa_model, spec);
  const std::string e = "bert.embeddings";
  // The position table fixes H and the longest sequence.
  const int32_t pos_w = b.param(e + ".position_embeddings.weight", {-1, -1});
  const int64_t P = b.g.values[size_t(pos_w)].shape[0], H = b.g.values[size_t(pos_w)].shape[1];
  const int64_t S = spec.max_seq_length;
  if (S < 1 || S > P)
    fail("BERT program: expected max_seq_length in 1..", P, " (the model's positions), found ", S);
  if (H % spec.heads != 0) fail("BERT program: expected ", spec.heads, " heads to divide the hidden size ", H);
  const Shape bsh{1, S, H};
  const int32_t ids = b.input("input_ids", S), types = b.input("token_type_ids", S), mask = b.input("attention_mask", S);
  // Embeddings, in BertEmbeddings' order of additions: (word + type) + position.
  const int32_t word = b.node("embedding", e + ".word_embeddings", {ids, b.param(e + ".word_embeddings.weight", {-1, H})}, bsh);
  const int32_t type =
      b.node("embedding", e + ".token_type_embeddings", {types, b.param(e + ".token_type_embeddings.weight", {-1, H})}, bsh);
  int32_t h = b.node("add", e, {word, type}, bsh, {{"alpha", 1.0}, {"act", "none"}});
  const int32_t pos = b.node("narrow_like", e + ".position_embeddings", {pos_w, ids}, {S, H}, {{"dim", 0}, {"like_dim", 1}});
  h = b.node("add", e, {h, pos}, bsh, {{"alpha", 1.0}, {"act", "none"}});
  h = b.layer_norm(e + ".LayerNorm", h, H, bsh);
  const std::string act = spec.hidden_act == "gelu" ? "gelu" : spec.hidden_act == "gelu_new" ? "gelu_tanh" : "relu";
  for (int64_t l = 0; l < spec.layers; ++l) {
    const std::string p = "bert.encoder.layer." + std::to_string(l);
    const std::string sa = p + ".attention.self";
    // The attention width A comes from the query weight: H, or fewer heads of the same width
    // H / heads after structured pruning (compress/channel_groups.h).
    const int64_t HD = H / spec.heads;
    const int64_t A = b.out_features(sa + ".query", H);  // the dense or the factorized query's rows
    if (A < HD || A % HD != 0)
      fail("BERT program: ", sa, ".query should have a whole number of heads of width ", HD, ", found ", A, " rows");
    const Shape ash{1, S, A};
    const int32_t q = b.linear(sa + ".query", h, H, A, ash);
    const int32_t k = b.linear(sa + ".key", h, H, A, ash);
    const int32_t v = b.linear(sa + ".value", h, H, A, ash);
    const int32_t ctx = b.node("attention", sa, {q, k, v, mask}, ash, {{"heads", A / HD}});
    const std::string ao = p + ".attention.output";
    int32_t a = b.linear(ao + ".dense", ctx, A, H, bsh);
    a = b.node("add", ao, {a, h}, bsh, {{"alpha", 1.0}, {"act", "none"}});
    a = b.layer_norm(ao + ".LayerNorm", a, H, bsh);
    // The intermediate width comes from its weight.
    const int64_t I = b.out_features(p + ".intermediate.dense", H);
    const Shape ish{1, S, I};
    int32_t f = b.linear(p + ".intermediate.dense", a, H, I, ish);
    f = b.node(act, p + ".intermediate", {f}, ish);
    f = b.linear(p + ".output.dense", f, I, H, bsh);
    f = b.node("add", p + ".output", {f, a}, bsh, {{"alpha", 1.0}, {"act", "none"}});
    h = b.layer_norm(p + ".output.LayerNorm", f, H, bsh);
  }
  const int32_t logits = b.linear("qa_outputs", h, H, 2, {1, S, 2});
  const int32_t start = b.node("select", "start_logits", {logits}, {1, S}, {{"dim", 2}, {"index", 0}});
  const int32_t end = b.node("select", "end_logits", {logits}, {1, S}, {{"dim", 2}, {"index", 1}});
  b.g.values[size_t(start)].name = "start_logits";
  b.g.values[size_t(end)].name = "end_logits";
  b.g.outputs = {start, end};
  b.g.meta["model"] = "bert_qa";
  b.g.meta["precision"] = "fp32";
  b.g.meta["variable_sequence"] = true;
  b.g.meta["max_seq_length"] = S;
  b.g.meta["layers"] = spec.layers;
  b.g.meta["heads"] = spec.heads;
  return std::move(b.g);
}

}  // namespace finch::compile
