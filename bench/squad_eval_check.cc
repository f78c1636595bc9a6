// Prints finch's official-style EM/F1 (v1.1 and v2.0 rules) of a predictions file on a SQuAD file,
// for compare_squad_eval.py to check against the official script's logic on the whole dev set.
// With --decode, instead writes the answers decoded from made-up logits (exact in binary:
// ((token·7919 + feature·104729 + example·31) mod 641) / 64 for starts, ·7927 for ends) over the
// features (384/128/64) of every question, for compare_squad_decode.py.
//   squad_eval_check SQUAD.json PREDICTIONS.json
//   squad_eval_check --decode VOCAB SQUAD.json OUT.json v1|v2
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "data/squad.h"
#include "data/squad_eval.h"
#include "data/squad_features.h"

namespace {

float made_up_logit(int64_t token, int64_t feature, int64_t example, int64_t mul) {
  return float((token * mul + feature * 104729 + example * 31) % 641) / 64.0f;
}

int decode(const std::string& vocab, const std::string& squad, const std::string& out, bool v2) {
  const auto tok = finch::data::WordPieceTokenizer::from_file(vocab);
  const auto examples = finch::data::read_squad(squad);
  nlohmann::json answers = nlohmann::json::object();
  finch::data::SquadDecodeOptions opt;
  opt.version_2 = v2;
  for (size_t e = 0; e < examples.size(); ++e) {
    const auto feats = finch::data::make_squad_features(examples[e], int64_t(e), tok, {});
    std::vector<std::vector<float>> st(feats.size()), en(feats.size());
    std::vector<finch::data::SquadFeatureLogits> logits;
    for (size_t f = 0; f < feats.size(); ++f) {
      for (size_t k = 0; k < feats[f].input_ids.size(); ++k) {
        st[f].push_back(made_up_logit(int64_t(k), int64_t(f), int64_t(e), 7919));
        en[f].push_back(made_up_logit(int64_t(k), int64_t(f), int64_t(e), 7927));
      }
      logits.push_back({feats[f].offsets, st[f], en[f]});
    }
    answers[examples[e].id] = finch::data::decode_squad_answer(examples[e].context, logits, opt);
  }
  std::ofstream(out) << answers.dump();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 6 && std::string(argv[1]) == "--decode") {
    try {
      return decode(argv[2], argv[3], argv[4], std::string(argv[5]) == "v2");
    } catch (const std::exception& e) {
      std::fprintf(stderr, "squad_eval_check: %s\n", e.what());
      return 1;
    }
  }
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s SQUAD.json PREDICTIONS.json\n", argv[0]);
    return 2;
  }
  try {
    const auto examples = finch::data::read_squad(argv[1]);
    std::ifstream in(argv[2]);
    if (!in) throw std::runtime_error(std::string(argv[2]) + ": cannot open the predictions");
    const auto preds = nlohmann::json::parse(in).get<std::map<std::string, std::string>>();
    for (const bool v2 : {false, true}) {
      const auto s = finch::data::evaluate_squad(examples, preds, v2);
      std::printf("%s %.12f %.12f %lld %lld\n", v2 ? "v2" : "v1", s.exact, s.f1,
                  static_cast<long long>(s.total), static_cast<long long>(s.missing));
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "squad_eval_check: %s\n", e.what());
    return 1;
  }
  return 0;
}
