// BertConfig: the fields of a Hugging Face BERT config.json that shape the network, read and
// validated (every number a file carries is hostile) by parse_bert_config / load_bert_config.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace finch::models {

// The six Linears of an encoder layer, by their path under bert.encoder.layer.N.
inline constexpr std::array<const char*, 6> kBertLayerLinears = {
    "attention.self.query", "attention.self.key", "attention.self.value",
    "attention.output.dense", "intermediate.dense", "output.dense"};

// Defaults are transformers' BertConfig defaults (BERT-base, uncased vocabulary).
struct BertConfig {
  int64_t vocab_size = 30522;
  int64_t hidden_size = 768;
  int64_t num_hidden_layers = 12;
  int64_t num_attention_heads = 12;
  int64_t intermediate_size = 3072;
  std::string hidden_act = "gelu";  // gelu (erf), gelu_new (tanh approximation) or relu
  double hidden_dropout_prob = 0.1;
  double attention_probs_dropout_prob = 0.1;
  int64_t max_position_embeddings = 512;
  int64_t type_vocab_size = 2;
  double initializer_range = 0.02;
  double layer_norm_eps = 1e-12;
  int64_t pad_token_id = 0;  // -1: none (null in the file)

  // Per-layer sizes after structured pruning (compress/): layer l's attention heads (each still
  // head_dim() wide) and FFN width. Empty: every layer has num_attention_heads and
  // intermediate_size. config.json keys "finch_layer_heads" and "finch_layer_intermediate_sizes"
  // (transformers ignores them, so it cannot load a pruned model; finch can).
  std::vector<int64_t> layer_heads, layer_intermediate_sizes;
  // Low-rank factorized encoder Linears (compress/lowrank.h): layer_ranks[name][l] is the rank r
  // of layer l's Linear `name` (one of kBertLayerLinears), which is then built as
  // Sequential(Linear(in, r, no bias), Linear(r, out)) with parameters "<name>.0.weight",
  // "<name>.1.weight", "<name>.1.bias"; 0: dense. config.json key "finch_layer_ranks":
  // {"intermediate.dense": [64, null, ...], ...}, one entry per layer, null for a dense layer.
  std::map<std::string, std::vector<int64_t>> layer_ranks;

  int64_t head_dim() const { return hidden_size / num_attention_heads; }
  int64_t heads_of(int64_t layer) const { return layer_heads.empty() ? num_attention_heads : layer_heads[size_t(layer)]; }
  int64_t intermediate_of(int64_t layer) const {
    return layer_intermediate_sizes.empty() ? intermediate_size : layer_intermediate_sizes[size_t(layer)];
  }
  // The rank of layer `layer`'s Linear `linear` (0: dense).
  int64_t rank_of(const std::string& linear, int64_t layer) const {
    const auto it = layer_ranks.find(linear);
    return it == layer_ranks.end() ? 0 : it->second[size_t(layer)];
  }
  // {in_features, out_features} of layer `layer`'s Linear `linear` (one of kBertLayerLinears).
  std::pair<int64_t, int64_t> linear_shape(const std::string& linear, int64_t layer) const;
  // Throws finch::Error with one sentence naming `source`, the field, what was expected and what
  // was found, for the first field out of its bounds (see bert_config.cc for the bounds).
  void validate(const std::string& source) const;
};

// The configuration in JSON `text`; `source` names it in error messages. Keys absent from the
// text keep their defaults; unknown keys are ignored (HF configs carry many for other uses).
// Keys that would change the network into something this implementation is not
// (position_embedding_type other than "absolute", is_decoder, add_cross_attention, a model_type
// other than "bert") are rejected rather than silently computed wrong.
BertConfig parse_bert_config(const std::string& text, const std::string& source);
// Reads and parses the file at `path` (e.g. DIR/config.json).
BertConfig load_bert_config(const std::string& path);
// The config.json text transformers would accept for `c` (model_type "bert").
std::string bert_config_json(const BertConfig& c);

}  // namespace finch::models
