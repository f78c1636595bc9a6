// The BERT modules of models/bert.h.
#include "models/bert.h"

#include <cmath>
#include <limits>
#include <vector>

#include "autograd/functional.h"
#include "autograd/nn/init.h"
#include "framework/error.h"
#include "framework/grad_mode.h"

namespace finch::models {

namespace {

// Validates ids I64/I32 [B, S] with every value in [0, limit).
void check_ids(const Tensor& t, const char* what, int64_t B, int64_t S, int64_t limit) {
  if (t.dtype() != DType::i64 && t.dtype() != DType::i32)
    fail("BertModel: expected ", what, " of dtype i64 or i32, found ", dtype_name(t.dtype()));
  if (t.dim() != 2 || t.size(0) != B || t.size(1) != S)
    fail("BertModel: expected ", what, " of shape [", B, ", ", S, "], found ", shape_str(t.shape()));
  for (int64_t v : t.to_vector<int64_t>())
    if (v < 0 || v >= limit) fail("BertModel: expected every ", what, " in [0, ", limit, "), found ", v);
}

// Splits [B, S, H] into heads [B, NH, S, HD] as a view (no copy): the fused attention reads
// such views in place.
Tensor split_heads(const Tensor& x, int64_t heads, int64_t head_dim) {
  return finch::permute(finch::view(x, {x.size(0), x.size(1), heads, head_dim}), {0, 2, 1, 3});
}

// Puts the low-rank form of every Linear of encoder layer `index` that the config gives a rank
// (BertConfig::layer_ranks) where the dense one was: Sequential(Linear(in, r, no bias),
// Linear(r, out)), as compress/lowrank_edit.h builds it, so a factorized model's state dict loads.
// The dense Linear stays the typed member its parent calls and hands every forward to its
// replacement (nn::Module::replace_child); its weights leave the state dict.
void factorize_linears(nn::Module& layer, const BertConfig& c, int64_t index) {
  for (const char* linear : kBertLayerLinears) {
    const int64_t r = c.rank_of(linear, index);
    if (r == 0) continue;
    const std::string path = linear;
    const size_t dot = path.rfind('.');
    nn::Module* parent = nullptr;
    for (auto& [name, m] : layer.named_modules())
      if (name == path.substr(0, dot)) parent = m;
    FINCH_CHECK(parent != nullptr, "BertLayer has no module ", path.substr(0, dot));
    const auto [in, out] = c.linear_shape(linear, index);
    Generator throwaway(0);  // init_bert_weights draws the weights afterwards
    auto first = std::make_shared<nn::Linear>(in, r, /*bias=*/false, &throwaway);
    auto second = std::make_shared<nn::Linear>(r, out, /*bias=*/true, &throwaway);
    parent->replace_child(path.substr(dot + 1),
                          std::make_shared<nn::Sequential>(std::initializer_list<nn::ModulePtr>{first, second}));
  }
}

}  // namespace

Tensor bert_additive_mask(const Tensor& attention_mask) {
  if (attention_mask.dim() != 2)
    fail("BertModel: expected attention_mask of shape [B, S], found ", shape_str(attention_mask.shape()));
  for (double v : attention_mask.to_vector<double>())
    if (v != 0.0 && v != 1.0) fail("BertModel: expected attention_mask values 0 or 1, found ", v);
  const int64_t B = attention_mask.size(0), S = attention_mask.size(1);
  // (1 - mask) · lowest, as transformers' _prepare_4d_attention_mask: adding it to a finite
  // score stays finite (no −∞ − −∞ = NaN anywhere) and exp() of it is exactly 0.
  const std::vector<double> m = attention_mask.to_vector<double>();
  std::vector<float> add(m.size());
  for (size_t i = 0; i < m.size(); ++i) add[i] = m[i] != 0.0 ? 0.0f : std::numeric_limits<float>::lowest();
  return from_vector(add, {B, 1, 1, S});
}

Tensor bert_activation(const Tensor& x, const std::string& hidden_act) {
  if (hidden_act == "gelu") return finch::gelu(x, "none");
  if (hidden_act == "gelu_new") return finch::gelu(x, "tanh");
  if (hidden_act == "relu") return finch::relu(x);
  fail("BERT: expected hidden_act gelu, gelu_new or relu, found '", hidden_act, "'");
}

// ---- embeddings ----

BertEmbeddings::BertEmbeddings(const BertConfig& c, Generator* gen) {
  std::optional<int64_t> pad;
  if (c.pad_token_id >= 0) pad = c.pad_token_id;
  word_embeddings = register_module("word_embeddings", std::make_shared<nn::Embedding>(c.vocab_size, c.hidden_size, pad));
  position_embeddings = register_module(
      "position_embeddings", std::make_shared<nn::Embedding>(c.max_position_embeddings, c.hidden_size));
  token_type_embeddings =
      register_module("token_type_embeddings", std::make_shared<nn::Embedding>(c.type_vocab_size, c.hidden_size));
  LayerNorm = register_module("LayerNorm", std::make_shared<nn::LayerNorm>(Shape{c.hidden_size}, c.layer_norm_eps));
  dropout = register_module("dropout", std::make_shared<nn::Dropout>(c.hidden_dropout_prob, gen));
}

Tensor BertEmbeddings::forward(const Tensor& input_ids, const Tensor& token_type_ids) {
  const int64_t S = input_ids.size(1);
  const Tensor positions = arange(0.0, double(S), 1.0, DType::i64);
  Tensor types = token_type_ids.defined() ? token_type_ids : zeros(input_ids.shape(), DType::i64);
  // Same order of additions as transformers: (word + type) + position.
  Tensor e = finch::add((*word_embeddings)(input_ids), (*token_type_embeddings)(types));
  e = finch::add(e, (*position_embeddings)(positions));
  return (*dropout)((*LayerNorm)(e));
}

// ---- attention ----

BertSelfAttention::BertSelfAttention(const BertConfig& c, Generator* gen, int64_t heads)
    : num_heads(heads > 0 ? heads : c.num_attention_heads), head_dim(c.head_dim()),
      attention_dropout(c.attention_probs_dropout_prob), dropout_gen(gen) {
  const int64_t A = num_heads * head_dim;  // the attention width: H unless heads were pruned
  query = register_module("query", std::make_shared<nn::Linear>(c.hidden_size, A));
  key = register_module("key", std::make_shared<nn::Linear>(c.hidden_size, A));
  value = register_module("value", std::make_shared<nn::Linear>(c.hidden_size, A));
}

Tensor BertSelfAttention::forward(const Tensor& x, const Tensor& mask) {
  const int64_t B = x.size(0), S = x.size(1);
  // The heads this layer has: num_heads, or fewer after structured pruning removed some (their
  // rows of query/key/value and columns of the output dense; the head width stays). Read from the
  // projections' outputs, since a factorized query (compress/lowrank.h) is no longer the Linear
  // whose sizes the member holds.
  const Tensor qx = (*query)(x), kx = (*key)(x), vx = (*value)(x);
  const int64_t A = qx.size(-1), heads = A / head_dim;
  if (heads < 1 || heads * head_dim != A || kx.size(-1) != A || vx.size(-1) != A)
    fail("BertSelfAttention: query, key and value should have the same whole number of heads of width ", head_dim,
         ", found ", A, ", ", kx.size(-1), " and ", vx.size(-1), " outputs");
  const Tensor q = split_heads(qx, heads, head_dim);
  const Tensor k = split_heads(kx, heads, head_dim);
  const Tensor v = split_heads(vx, heads, head_dim);
  Tensor ctx;  // [B, NH, S, HD]
  if (is_training() && attention_dropout > 0) {
    Tensor scores = finch::mul(finch::matmul(q, finch::transpose(k, 2, 3)), 1.0 / std::sqrt(double(head_dim)));
    if (mask.defined()) scores = finch::add(scores, mask);
    const Tensor p = finch::dropout(finch::softmax(scores, -1), attention_dropout, true, dropout_gen);
    ctx = finch::matmul(p, v);
  } else {
    ctx = finch::scaled_dot_product_attention(q, k, v, mask);
  }
  return finch::reshape(finch::permute(ctx, {0, 2, 1, 3}), {B, S, heads * head_dim});
}

BertResidualOutput::BertResidualOutput(int64_t in, const BertConfig& c, Generator* gen, std::string name)
    : name_(std::move(name)) {
  dense = register_module("dense", std::make_shared<nn::Linear>(in, c.hidden_size));
  LayerNorm = register_module("LayerNorm", std::make_shared<nn::LayerNorm>(Shape{c.hidden_size}, c.layer_norm_eps));
  dropout = register_module("dropout", std::make_shared<nn::Dropout>(c.hidden_dropout_prob, gen));
}

Tensor BertResidualOutput::forward(const Tensor& x, const Tensor& residual) {
  return (*LayerNorm)(finch::add((*dropout)((*dense)(x)), residual));
}

BertAttention::BertAttention(const BertConfig& c, Generator* gen, int64_t heads) {
  self = register_module("self", std::make_shared<BertSelfAttention>(c, gen, heads));
  output = register_module("output", std::make_shared<BertResidualOutput>(self->num_heads * self->head_dim, c, gen,
                                                                           "BertSelfOutput"));
}

Tensor BertAttention::forward(const Tensor& x, const Tensor& mask) { return output->forward(self->forward(x, mask), x); }

BertLayer::BertLayer(const BertConfig& c, Generator* gen, int64_t index) : hidden_act(c.hidden_act) {
  const int64_t I = c.intermediate_of(index);
  attention = register_module("attention", std::make_shared<BertAttention>(c, gen, c.heads_of(index)));
  intermediate = register_module("intermediate", std::make_shared<nn::Module>());
  intermediate_dense = intermediate->register_module("dense", std::make_shared<nn::Linear>(c.hidden_size, I));
  output = register_module("output", std::make_shared<BertResidualOutput>(I, c, gen, "BertOutput"));
  factorize_linears(*this, c, index);
}

Tensor BertLayer::forward(const Tensor& x, const Tensor& mask) {
  const Tensor a = attention->forward(x, mask);
  return output->forward(bert_activation((*intermediate_dense)(a), hidden_act), a);
}

// ---- the encoder model ----

BertModel::BertModel(const BertConfig& c, bool add_pooling_layer, uint64_t seed)
    : config(c), dropout_gen(std::make_unique<Generator>(seed)) {
  c.validate("BertModel");
  embeddings = register_module("embeddings", std::make_shared<BertEmbeddings>(c, dropout_gen.get()));
  encoder = register_module("encoder", std::make_shared<nn::Module>());
  layer = encoder->register_module("layer", std::make_shared<nn::ModuleList>());
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) layer->push_back(std::make_shared<BertLayer>(c, dropout_gen.get(), i));
  if (add_pooling_layer) {
    pooler = register_module("pooler", std::make_shared<nn::Module>());
    pooler_dense = pooler->register_module("dense", std::make_shared<nn::Linear>(c.hidden_size, c.hidden_size));
  }
  init_bert_weights(*this, c, *dropout_gen);
}

BertOutputs BertModel::forward(const Tensor& input_ids, const Tensor& attention_mask, const Tensor& token_type_ids) {
  if (input_ids.dim() != 2 || input_ids.size(0) < 1 || input_ids.size(1) < 1)
    fail("BertModel: expected input_ids of shape [B, S] with B, S >= 1, found ", shape_str(input_ids.shape()));
  const int64_t B = input_ids.size(0), S = input_ids.size(1);
  if (S > config.max_position_embeddings)
    fail("BertModel: expected a sequence of at most max_position_embeddings = ", config.max_position_embeddings,
         " tokens, found ", S);
  check_ids(input_ids, "input_ids", B, S, config.vocab_size);
  if (token_type_ids.defined()) check_ids(token_type_ids, "token_type_ids", B, S, config.type_vocab_size);
  Tensor mask;
  if (attention_mask.defined()) {
    if (attention_mask.shape() != input_ids.shape())
      fail("BertModel: expected attention_mask of shape ", shape_str(input_ids.shape()), ", found ",
           shape_str(attention_mask.shape()));
    mask = bert_additive_mask(attention_mask);
  }
  Tensor h = embeddings->forward(input_ids, token_type_ids);
  for (const auto& l : *layer) h = static_cast<BertLayer&>(*l).forward(h, mask);
  BertOutputs out;
  out.sequence_output = h;
  if (pooler_dense) out.pooled = finch::tanh((*pooler_dense)(finch::select(h, 1, 0)));
  return out;
}

void init_bert_weights(nn::Module& root, const BertConfig& c, Generator& gen) {
  NoGradGuard ng;
  for (auto& [name, m] : root.named_modules()) {
    if (auto* lin = dynamic_cast<nn::Linear*>(m)) {
      nn::init::normal_(lin->weight, 0.0, c.initializer_range, &gen);
      if (lin->bias.defined()) nn::init::zeros_(lin->bias);
    } else if (auto* emb = dynamic_cast<nn::Embedding*>(m)) {
      nn::init::normal_(emb->weight, 0.0, c.initializer_range, &gen);
      if (emb->padding_idx) emb->weight.select(0, *emb->padding_idx).zero_();
    } else if (auto* ln = dynamic_cast<nn::LayerNorm*>(m)) {
      if (ln->weight.defined()) nn::init::ones_(ln->weight);
      if (ln->bias.defined()) nn::init::zeros_(ln->bias);
    }
  }
}

// ---- heads ----

BertForQuestionAnswering::BertForQuestionAnswering(const BertConfig& c, bool add_pooling_layer, uint64_t seed) {
  bert = register_module("bert", std::make_shared<BertModel>(c, add_pooling_layer, seed));
  qa_outputs = register_module("qa_outputs", std::make_shared<nn::Linear>(c.hidden_size, 2));
  init_bert_weights(*qa_outputs, c, *bert->dropout_gen);
}

BertQAOutputs BertForQuestionAnswering::forward(const Tensor& input_ids, const Tensor& attention_mask,
                                                const Tensor& token_type_ids) {
  BertOutputs b = bert->forward(input_ids, attention_mask, token_type_ids);
  const Tensor logits = (*qa_outputs)(b.sequence_output);  // [B, S, 2]
  BertQAOutputs out;
  out.start_logits = finch::select(logits, 2, 0);
  out.end_logits = finch::select(logits, 2, 1);
  out.sequence_output = std::move(b.sequence_output);
  out.pooled = std::move(b.pooled);
  return out;
}

Tensor BertForQuestionAnswering::forward_impl(const Tensor& input_ids) {
  return (*qa_outputs)(bert->forward(input_ids).sequence_output);
}

BertForMaskedLM::BertForMaskedLM(const BertConfig& c, uint64_t seed) {
  bert = register_module("bert", std::make_shared<BertModel>(c, false, seed));
  cls = register_module("cls", std::make_shared<nn::Module>());
  predictions = cls->register_module("predictions", std::make_shared<nn::Module>());
  transform = predictions->register_module("transform", std::make_shared<nn::Module>());
  transform_dense = transform->register_module("dense", std::make_shared<nn::Linear>(c.hidden_size, c.hidden_size));
  transform_LayerNorm =
      transform->register_module("LayerNorm", std::make_shared<nn::LayerNorm>(Shape{c.hidden_size}, c.layer_norm_eps));
  bias = predictions->register_parameter("bias", zeros({c.vocab_size}));
  init_bert_weights(*transform, c, *bert->dropout_gen);
}

Tensor BertForMaskedLM::forward(const Tensor& input_ids, const Tensor& attention_mask, const Tensor& token_type_ids,
                                BertOutputs* out) {
  BertOutputs b = bert->forward(input_ids, attention_mask, token_type_ids);
  Tensor t = bert_activation((*transform_dense)(b.sequence_output), bert->config.hidden_act);
  t = (*transform_LayerNorm)(t);
  // The decoder is the word-embedding matrix itself: logits = t · Eᵀ + bias.
  const Tensor logits = finch::linear(t, bert->embeddings->word_embeddings->weight, bias);
  if (out) *out = std::move(b);
  return logits;
}

Tensor BertForMaskedLM::loss(const Tensor& logits, const Tensor& labels) const {
  const int64_t V = logits.size(-1);
  return finch::cross_entropy(finch::reshape(logits, {-1, V}), finch::reshape(labels, {-1}));
}

}  // namespace finch::models
