// BertConfig: the fields of a Hugging Face BERT config.json that shape the network, read and
// validated (every number a file carries is hostile) by parse_bert_config / load_bert_config.
#pragma once

#include <cstdint>
#include <string>

namespace finch::models {

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

  int64_t head_dim() const { return hidden_size / num_attention_heads; }
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
