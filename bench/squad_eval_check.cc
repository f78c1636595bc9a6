// Prints finch's official-style EM/F1 (v1.1 and v2.0 rules) of a predictions file on a SQuAD file,
// for compare_squad_eval.py to check against the official script's logic on the whole dev set.
//   squad_eval_check SQUAD.json PREDICTIONS.json
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "data/squad.h"
#include "data/squad_eval.h"

int main(int argc, char** argv) {
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
