// Hugging Face directory IO for BERT (models/bert_io.h).
#include "models/bert_io.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <string>
#include <vector>

#include "autograd/functional.h"
#include "framework/atomic_file.h"
#include "framework/error.h"

namespace finch::models {

namespace {

bool starts_with(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }

std::string join(const std::vector<std::string>& v, size_t max_items = 8) {
  std::string s;
  for (size_t i = 0; i < v.size() && i < max_items; ++i) s += (i ? ", " : "") + v[i];
  if (v.size() > max_items) s += ", … (" + std::to_string(v.size()) + " in all)";
  return s;
}

bool same_values(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.to_vector<float>() == b.to_vector<float>();
}

template <typename M>
std::shared_ptr<M> load_into(std::shared_ptr<M> model, const BertCheckpoint& ck) {
  std::vector<std::string> bad_shape;
  const nn::StateDict want = model->state_dict();
  for (const auto& [name, t] : ck.weights) {
    const Tensor* w = want.find(name);
    if (w && w->shape() != t.shape())
      bad_shape.push_back(name + " " + shape_str(t.shape()) + " (config.json gives " + shape_str(w->shape()) + ")");
    if (w && !is_floating(t.dtype()))
      fail("BERT weights '", ck.weights_path, "': expected a floating tensor for ", name, ", found ",
           dtype_name(t.dtype()));
  }
  if (!bad_shape.empty())
    fail("BERT weights '", ck.weights_path, "': expected the shapes config.json implies, found ", join(bad_shape));
  const nn::LoadResult r = model->load_state_dict(ck.weights, /*strict=*/false);
  if (!r.missing_keys.empty())
    fail("BERT weights '", ck.weights_path, "': expected every parameter of ", model->type_name(),
         ", found these missing: ", join(r.missing_keys));
  if (!r.unexpected_keys.empty())
    fail("BERT weights '", ck.weights_path, "': expected only ", model->type_name(),
         " parameters, found unknown tensors: ", join(r.unexpected_keys));
  return model;
}

}  // namespace

BertCheckpoint read_bert_checkpoint(const std::string& dir) {
  BertCheckpoint ck;
  ck.config = load_bert_config(dir + "/config.json");
  ck.weights_path = dir + "/model.safetensors";
  const SafetensorsFile f = load_safetensors(ck.weights_path);
  bool prefixed = false;
  for (const auto& [name, t] : f.tensors) prefixed = prefixed || starts_with(name, "bert.");
  Tensor decoder_weight, decoder_bias;
  for (const auto& [raw, t] : f.tensors) {
    const std::string name = prefixed || starts_with(raw, "cls.") || starts_with(raw, "qa_outputs.") ? raw : "bert." + raw;
    if (name == "bert.embeddings.position_ids" || name == "bert.embeddings.token_type_ids") continue;
    if (starts_with(name, "cls.seq_relationship.")) continue;
    if (name == "cls.predictions.decoder.weight") {
      decoder_weight = t;
      continue;
    }
    if (name == "cls.predictions.decoder.bias") {
      decoder_bias = t;
      continue;
    }
    ck.weights.insert(name, t);
  }
  // finch ties the decoder to the word embeddings as transformers does; a checkpoint whose
  // decoder differs was not tied, and loading it tied would silently compute something else.
  if (decoder_weight.defined()) {
    const Tensor* e = ck.weights.find("bert.embeddings.word_embeddings.weight");
    if (!e || !same_values(*e, decoder_weight))
      fail("BERT weights '", ck.weights_path, "': expected cls.predictions.decoder.weight tied to (equal to) "
           "bert.embeddings.word_embeddings.weight, found a different tensor");
  }
  if (decoder_bias.defined()) {
    const Tensor* b = ck.weights.find("cls.predictions.bias");
    if (!b) ck.weights.insert("cls.predictions.bias", decoder_bias);
    else if (!same_values(*b, decoder_bias))
      fail("BERT weights '", ck.weights_path, "': expected cls.predictions.decoder.bias equal to "
           "cls.predictions.bias, found a different tensor");
  }
  return ck;
}

std::shared_ptr<BertForQuestionAnswering> load_bert_for_question_answering(const std::string& dir) {
  BertCheckpoint ck = read_bert_checkpoint(dir);
  const bool pooler = ck.weights.contains("bert.pooler.dense.weight");
  return load_into(std::make_shared<BertForQuestionAnswering>(ck.config, pooler), ck);
}

std::shared_ptr<BertForMaskedLM> load_bert_for_masked_lm(const std::string& dir) {
  BertCheckpoint ck = read_bert_checkpoint(dir);
  return load_into(std::make_shared<BertForMaskedLM>(ck.config), ck);
}

void save_bert(const std::string& dir, const BertConfig& given, const nn::Module& model) {
  // A structurally pruned model (compress/) has fewer heads or FFN neurons in some layers, and a
  // factorized one two thin Linears ("<linear>.0", "<linear>.1") where a dense one was: its
  // per-layer sizes and ranks come from the weights, so config.json rebuilds it.
  BertConfig config = given;
  const size_t L = size_t(std::max<int64_t>(config.num_hidden_layers, 0));
  std::vector<int64_t> heads(L, -1), ffn = heads;
  std::map<std::string, std::vector<int64_t>> ranks;
  for (const auto& [name, t] : model.named_parameters()) {
    const auto at = name.find("encoder.layer.");
    if (at == std::string::npos || t.dim() != 2) continue;
    size_t end = at + 14;
    int64_t l = 0;
    while (end < name.size() && std::isdigit(static_cast<unsigned char>(name[end])) && l < (int64_t(1) << 40))
      l = l * 10 + (name[end++] - '0');
    if (l < 0 || l >= int64_t(L)) continue;
    const std::string rest = name.substr(end);
    for (const char* linear : kBertLayerLinears) {
      const std::string p = std::string(".") + linear;
      // The output rows: the dense weight's, or the second factor's.
      const bool out_rows = rest == p + ".weight" || rest == p + ".1.weight";
      if (out_rows && p == ".attention.self.query") heads[size_t(l)] = t.size(0) / std::max<int64_t>(config.head_dim(), 1);
      if (out_rows && p == ".intermediate.dense") ffn[size_t(l)] = t.size(0);
      if (rest == p + ".0.weight") {
        auto& v = ranks[linear];
        v.resize(L, 0);
        v[size_t(l)] = t.size(0);
      }
    }
  }
  auto per_layer = [](const std::vector<int64_t>& v, int64_t uniform) {
    for (int64_t x : v)
      if (x != -1 && x != uniform) return v;
    return std::vector<int64_t>{};
  };
  config.layer_heads = per_layer(heads, config.num_attention_heads);
  config.layer_intermediate_sizes = per_layer(ffn, config.intermediate_size);
  for (auto* v : {&config.layer_heads, &config.layer_intermediate_sizes})
    for (int64_t& x : *v)
      if (x == -1) x = v == &config.layer_heads ? config.num_attention_heads : config.intermediate_size;
  config.layer_ranks = ranks;
  config.validate("save_bert");
  NamedTensors tensors;
  for (const auto& [name, t] : model.state_dict()) tensors.emplace_back(name, t);
  save_safetensors(dir + "/model.safetensors", tensors, {{"format", "pt"}});
  write_file_atomically(dir + "/config.json", bert_config_json(config));
}

}  // namespace finch::models
