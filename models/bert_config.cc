// Reading and validating a Hugging Face BERT config.json (models/bert_config.h).
#include "models/bert_config.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "framework/error.h"

namespace finch::models {

namespace {

using nlohmann::json;

// Integers arrive as JSON numbers; 64.0 is accepted as 64 (some writers emit floats), 64.5,
// strings, booleans and values beyond int64 are not.
int64_t get_int(const json& j, const char* key, int64_t def, const std::string& source) {
  auto it = j.find(key);
  if (it == j.end()) return def;
  if (it->is_number_integer()) {
    if (it->is_number_unsigned() && it->get<uint64_t>() > uint64_t(INT64_MAX))
      fail("BERT config '", source, "': expected '", key, "' to be an integer, found ", it->dump());
    return it->get<int64_t>();
  }
  if (it->is_number_float()) {
    const double v = it->get<double>();
    if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 9e15) return int64_t(v);
  }
  fail("BERT config '", source, "': expected '", key, "' to be an integer, found ", it->dump());
}

double get_double(const json& j, const char* key, double def, const std::string& source) {
  auto it = j.find(key);
  if (it == j.end()) return def;
  if (!it->is_number())
    fail("BERT config '", source, "': expected '", key, "' to be a number, found ", it->dump());
  return it->get<double>();
}

std::string get_string(const json& j, const char* key, const std::string& def, const std::string& source) {
  auto it = j.find(key);
  if (it == j.end()) return def;
  if (!it->is_string())
    fail("BERT config '", source, "': expected '", key, "' to be a string, found ", it->dump());
  return it->get<std::string>();
}

void check_range(const std::string& source, const char* key, int64_t v, int64_t lo, int64_t hi) {
  if (v < lo || v > hi)
    fail("BERT config '", source, "': expected '", key, "' in [", lo, ", ", hi, "], found ", v);
}

// An optional per-layer list: absent = empty; otherwise one integer per layer, each in [lo, hi].
std::vector<int64_t> get_layer_list(const json& j, const char* key, int64_t layers, int64_t lo, int64_t hi,
                                    const std::string& source) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return {};
  if (!it->is_array() || int64_t(it->size()) != layers)
    fail("BERT config '", source, "': expected '", key, "' to list one integer per layer (", layers, "), found ",
         it->dump().substr(0, 80));
  std::vector<int64_t> v;
  for (const auto& e : *it) {
    if (!e.is_number_integer() || e.get<int64_t>() < lo || e.get<int64_t>() > hi)
      fail("BERT config '", source, "': expected every entry of '", key, "' to be an integer in [", lo, ", ", hi,
           "], found ", e.dump());
    v.push_back(e.get<int64_t>());
  }
  return v;
}

// "finch_layer_ranks": an object whose keys are kBertLayerLinears names and whose values list one
// entry per layer, each null (dense) or an integer rank >= 1 (its upper bound, the Linear's
// smaller dimension, is checked by validate() once the per-layer sizes are known).
std::map<std::string, std::vector<int64_t>> get_layer_ranks(const json& j, int64_t layers, const std::string& source) {
  const char* key = "finch_layer_ranks";
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return {};
  if (!it->is_object())
    fail("BERT config '", source, "': expected '", key, "' to be an object of per-layer rank lists, found ",
         it->dump().substr(0, 80));
  std::map<std::string, std::vector<int64_t>> ranks;
  for (const auto& item : it->items()) {
    const std::string name = item.key();
    const json& list = item.value();
    bool known = false;
    for (const char* l : kBertLayerLinears) known = known || name == l;
    if (!known)
      fail("BERT config '", source, "': expected the keys of '", key, "' to name encoder Linears (attention.self.query, "
           "attention.self.key, attention.self.value, attention.output.dense, intermediate.dense, output.dense), found '",
           name, "'");
    if (!list.is_array() || int64_t(list.size()) != layers)
      fail("BERT config '", source, "': expected '", key, "' \"", name, "\" to list one entry per layer (", layers,
           "), found ", list.dump().substr(0, 80));
    std::vector<int64_t> v;
    for (const auto& e : list) {
      if (e.is_null()) {
        v.push_back(0);
        continue;
      }
      if (!e.is_number_integer() || e.get<int64_t>() < 1)
        fail("BERT config '", source, "': expected every entry of '", key, "' \"", name,
             "\" to be a rank >= 1 (an integer) or null (dense), found ", e.dump());
      v.push_back(e.get<int64_t>());
    }
    ranks[name] = std::move(v);
  }
  return ranks;
}

void check_prob(const std::string& source, const char* key, double p) {
  if (!(p >= 0.0 && p < 1.0)) fail("BERT config '", source, "': expected '", key, "' in [0, 1), found ", p);
}

}  // namespace

// The bounds are far beyond any published BERT (BERT-large: 24 × 1024, 16 heads, vocab 30522,
// 512 positions; multilingual vocab 119547) but small enough that the products sizing the
// tensors (vocab × hidden, intermediate × hidden) cannot overflow and a typo cannot ask for
// terabytes before the weights file is even opened.
void BertConfig::validate(const std::string& source) const {
  check_range(source, "vocab_size", vocab_size, 1, 1 << 22);
  check_range(source, "hidden_size", hidden_size, 1, 1 << 14);
  check_range(source, "num_hidden_layers", num_hidden_layers, 1, 256);
  check_range(source, "num_attention_heads", num_attention_heads, 1, hidden_size);
  if (hidden_size % num_attention_heads != 0)
    fail("BERT config '", source, "': expected 'hidden_size' (", hidden_size,
         ") to be divisible by 'num_attention_heads', found ", num_attention_heads);
  check_range(source, "intermediate_size", intermediate_size, 1, 1 << 16);
  check_range(source, "max_position_embeddings", max_position_embeddings, 1, 1 << 16);
  check_range(source, "type_vocab_size", type_vocab_size, 1, 1 << 10);
  if (hidden_act != "gelu" && hidden_act != "gelu_new" && hidden_act != "relu")
    fail("BERT config '", source, "': expected 'hidden_act' to be one of gelu, gelu_new, relu, found '",
         hidden_act, "'");
  auto check_layers = [&](const char* key, const std::vector<int64_t>& v, int64_t hi) {
    if (v.empty()) return;
    if (int64_t(v.size()) != num_hidden_layers)
      fail("BERT config '", source, "': expected '", key, "' to list one integer per layer (", num_hidden_layers,
           "), found ", v.size());
    for (int64_t x : v) check_range(source, key, x, 1, hi);
  };
  check_layers("finch_layer_heads", layer_heads, num_attention_heads);
  check_layers("finch_layer_intermediate_sizes", layer_intermediate_sizes, intermediate_size);
  for (const auto& [name, v] : layer_ranks) {
    bool known = false;
    for (const char* l : kBertLayerLinears) known = known || name == l;
    if (!known) fail("BERT config '", source, "': expected 'finch_layer_ranks' to name encoder Linears, found '", name, "'");
    if (int64_t(v.size()) != num_hidden_layers)
      fail("BERT config '", source, "': expected 'finch_layer_ranks' \"", name, "\" to list one entry per layer (",
           num_hidden_layers, "), found ", v.size());
    for (int64_t l = 0; l < num_hidden_layers; ++l) {
      const auto [in, out] = linear_shape(name, l);
      const int64_t r = v[size_t(l)], full = std::min(in, out);
      if (r < 0 || r > full)
        fail("BERT config '", source, "': expected 'finch_layer_ranks' \"", name, "\" of layer ", l, " (a ", out, " x ",
             in, " weight) in 1..", full, " (or null: dense), found ", r);
    }
  }
  check_prob(source, "hidden_dropout_prob", hidden_dropout_prob);
  check_prob(source, "attention_probs_dropout_prob", attention_probs_dropout_prob);
  if (!(initializer_range >= 0.0 && initializer_range <= 10.0))
    fail("BERT config '", source, "': expected 'initializer_range' in [0, 10], found ", initializer_range);
  if (!(layer_norm_eps > 0.0 && layer_norm_eps <= 1.0))
    fail("BERT config '", source, "': expected 'layer_norm_eps' in (0, 1], found ", layer_norm_eps);
  if (pad_token_id < -1 || pad_token_id >= vocab_size)
    fail("BERT config '", source, "': expected 'pad_token_id' in [0, vocab_size = ", vocab_size,
         ") or null, found ", pad_token_id);
}

std::pair<int64_t, int64_t> BertConfig::linear_shape(const std::string& linear, int64_t layer) const {
  const int64_t H = hidden_size, A = heads_of(layer) * head_dim(), I = intermediate_of(layer);
  if (linear == "attention.self.query" || linear == "attention.self.key" || linear == "attention.self.value") return {H, A};
  if (linear == "attention.output.dense") return {A, H};
  if (linear == "intermediate.dense") return {H, I};
  if (linear == "output.dense") return {I, H};
  fail("BERT: '", linear, "' is not one of an encoder layer's Linears");
}

BertConfig parse_bert_config(const std::string& text, const std::string& source) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& ex) {
    fail("BERT config '", source, "': expected valid JSON, found a parse error: ", ex.what());
  }
  if (!j.is_object()) fail("BERT config '", source, "': expected a JSON object, found ", j.type_name());
  const std::string model_type = get_string(j, "model_type", "bert", source);
  if (model_type != "bert")
    fail("BERT config '", source, "': expected 'model_type' \"bert\", found \"", model_type, "\"");
  const std::string pos = get_string(j, "position_embedding_type", "absolute", source);
  if (pos != "absolute")
    fail("BERT config '", source, "': expected 'position_embedding_type' \"absolute\" (the only one "
         "implemented), found \"", pos, "\"");
  for (const char* key : {"is_decoder", "add_cross_attention"}) {
    auto it = j.find(key);
    if (it != j.end() && !(it->is_boolean() && !it->get<bool>()))
      fail("BERT config '", source, "': expected '", key, "' false (an encoder), found ", it->dump());
  }
  BertConfig c;
  c.vocab_size = get_int(j, "vocab_size", c.vocab_size, source);
  c.hidden_size = get_int(j, "hidden_size", c.hidden_size, source);
  c.num_hidden_layers = get_int(j, "num_hidden_layers", c.num_hidden_layers, source);
  c.num_attention_heads = get_int(j, "num_attention_heads", c.num_attention_heads, source);
  c.intermediate_size = get_int(j, "intermediate_size", c.intermediate_size, source);
  c.hidden_act = get_string(j, "hidden_act", c.hidden_act, source);
  c.hidden_dropout_prob = get_double(j, "hidden_dropout_prob", c.hidden_dropout_prob, source);
  c.attention_probs_dropout_prob =
      get_double(j, "attention_probs_dropout_prob", c.attention_probs_dropout_prob, source);
  c.max_position_embeddings = get_int(j, "max_position_embeddings", c.max_position_embeddings, source);
  c.type_vocab_size = get_int(j, "type_vocab_size", c.type_vocab_size, source);
  c.initializer_range = get_double(j, "initializer_range", c.initializer_range, source);
  c.layer_norm_eps = get_double(j, "layer_norm_eps", c.layer_norm_eps, source);
  auto pad = j.find("pad_token_id");
  c.pad_token_id = pad != j.end() && pad->is_null() ? -1 : get_int(j, "pad_token_id", c.pad_token_id, source);
  if (c.num_hidden_layers >= 1 && c.num_hidden_layers <= 256 && c.num_attention_heads >= 1 && c.intermediate_size >= 1) {
    c.layer_heads = get_layer_list(j, "finch_layer_heads", c.num_hidden_layers, 1, c.num_attention_heads, source);
    c.layer_intermediate_sizes =
        get_layer_list(j, "finch_layer_intermediate_sizes", c.num_hidden_layers, 1, c.intermediate_size, source);
    c.layer_ranks = get_layer_ranks(j, c.num_hidden_layers, source);
  }
  c.validate(source);
  return c;
}

BertConfig load_bert_config(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("BERT config '", path, "': expected a readable config.json, found no such file");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_bert_config(ss.str(), path);
}

std::string bert_config_json(const BertConfig& c) {
  json j = {{"model_type", "bert"},
            {"vocab_size", c.vocab_size},
            {"hidden_size", c.hidden_size},
            {"num_hidden_layers", c.num_hidden_layers},
            {"num_attention_heads", c.num_attention_heads},
            {"intermediate_size", c.intermediate_size},
            {"hidden_act", c.hidden_act},
            {"hidden_dropout_prob", c.hidden_dropout_prob},
            {"attention_probs_dropout_prob", c.attention_probs_dropout_prob},
            {"max_position_embeddings", c.max_position_embeddings},
            {"type_vocab_size", c.type_vocab_size},
            {"initializer_range", c.initializer_range},
            {"layer_norm_eps", c.layer_norm_eps},
            {"position_embedding_type", "absolute"}};
  j["pad_token_id"] = c.pad_token_id < 0 ? json(nullptr) : json(c.pad_token_id);
  if (!c.layer_heads.empty()) j["finch_layer_heads"] = c.layer_heads;
  if (!c.layer_intermediate_sizes.empty()) j["finch_layer_intermediate_sizes"] = c.layer_intermediate_sizes;
  if (!c.layer_ranks.empty()) {
    json ranks = json::object();
    for (const auto& [name, v] : c.layer_ranks) {
      json list = json::array();
      for (int64_t r : v) list.push_back(r > 0 ? json(r) : json(nullptr));
      ranks[name] = list;
    }
    j["finch_layer_ranks"] = ranks;
  }
  return j.dump(2) + "\n";
}

}  // namespace finch::models
