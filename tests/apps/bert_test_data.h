// Shared by the train_bert / train_squad tests: a tiny WordPiece vocabulary (108 tokens), a BERT
// config of that size, a learnable corpus, a SQuAD file of six articles and a metrics.csv reader.
#pragma once

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/mlm.h"
#include "data/wordpiece.h"
#include "framework/random.h"

namespace finch::test {

inline const std::vector<std::string> kWords = {"the", "a", "of", "in", "river", "city", "king", "was", "built", "by",
                                         "who", "what", "when", "where", "is", "name", "year", "north", "south",
                                         "bridge", "stone", "old", "new", "castle", "people", "lived", "there",
                                         "after", "war", "and", "to", "it", "on", "for", "with", "from", "town"};

inline std::vector<std::string> vocab_tokens() {
  std::vector<std::string> v = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
  v.insert(v.end(), kWords.begin(), kWords.end());
  for (char c = '0'; c <= '9'; ++c) v.push_back(std::string(1, c));
  for (char c = 'a'; c <= 'z'; ++c) v.push_back(std::string(1, c));
  for (char c = 'a'; c <= 'z'; ++c) v.push_back("##" + std::string(1, c));
  for (const char* p : {".", ",", "?", "'"}) v.push_back(p);
  return v;  // 108 tokens
}

inline data::MlmVocab tiny_vocab() { return data::MlmVocab::from(data::WordPieceTokenizer::from_tokens(vocab_tokens())); }

inline void write_lines(const std::string& path, const std::vector<std::string>& lines) {
  std::ofstream f(path);
  for (const auto& l : lines) f << l << "\n";
}

inline const char* kTinyConfig =
    R"({"model_type": "bert", "vocab_size": 108, "hidden_size": 32, "num_hidden_layers": 2,
        "num_attention_heads": 2, "intermediate_size": 64, "max_position_embeddings": 64,
        "type_vocab_size": 2, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1, "initializer_range": 0.02, "layer_norm_eps": 1e-12})";

// A corpus with a pattern to learn: short sentences from a small grammar.
inline std::string corpus(int sentences, uint64_t seed) {
  Generator g(seed);
  const std::vector<std::string> subj = {"the king", "the people", "the town", "a city"}, verb = {"was built", "lived"},
                                 place = {"on the river", "in the north", "by the bridge", "after the war"};
  std::string s;
  for (int i = 0; i < sentences; ++i)
    s += subj[g.below(subj.size())] + " " + verb[g.below(verb.size())] + " " + place[g.below(place.size())] + ". ";
  return s;
}

inline nlohmann::json squad_json() {
  nlohmann::json data = nlohmann::json::array();
  const std::vector<std::string> places = {"river", "north", "south", "bridge", "castle", "town"};
  int id = 0;
  for (int a = 0; a < 6; ++a) {
    const std::string place = places[size_t(a)];
    const std::string ctx = "the old " + place + " was built in 12" + std::to_string(a) + "4 by the king. people lived "
                            "there after the war, and the town grew on the " + place + ".";
    nlohmann::json qas = nlohmann::json::array();
    for (const auto& [q, ans] : std::vector<std::pair<std::string, std::string>>{
             {"when was the old " + place + " built?", "12" + std::to_string(a) + "4"},
             {"who built the old " + place + "?", "the king"},
             {"when did people live there?", "after the war"}})
      qas.push_back({{"id", "q" + std::to_string(id++)},
                     {"question", q},
                     {"answers", {{{"text", ans}, {"answer_start", ctx.find(ans)}}}}});
    data.push_back({{"title", "article" + std::to_string(a)}, {"paragraphs", {{{"context", ctx}, {"qas", qas}}}}});
  }
  return {{"version", "1.1"}, {"data", data}};
}

inline std::vector<double> csv_column(const std::string& path, const std::string& name) {
  std::ifstream f(path);
  std::string line;
  std::getline(f, line);
  std::vector<std::string> head;
  std::stringstream hs(line);
  for (std::string c; std::getline(hs, c, ',');) head.push_back(c);
  const size_t k = size_t(std::find(head.begin(), head.end(), name) - head.begin());
  std::vector<double> out;
  while (std::getline(f, line)) {
    std::stringstream ls(line);
    std::string c;
    for (size_t i = 0; i <= k; ++i) std::getline(ls, c, ',');
    out.push_back(std::stod(c));
  }
  return out;
}

}  // namespace finch::test
