// SQuAD answers from start/end logits (transformers' postprocess_qa_predictions: n-best starts and
// ends, spans inside the context only, max answer length, v2.0 null answers with a threshold) and
// the official evaluation (evaluate-v1.1.py / evaluate-v2.0.py: exact match and F1 after the
// normalization of case, punctuation, articles and white space, max over the gold answers).
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "data/squad.h"

namespace finch::data {

struct SquadDecodeOptions {
  int64_t n_best = 20;
  int64_t max_answer_length = 30;
  bool version_2 = false;       // allow the null answer ""
  double null_threshold = 0.0;  // v2: "" when null score - best span score > this
};

// One feature's logits and its per-token context offsets ((-1, -1) outside the context; code
// points of the context), all three of the same length.
struct SquadFeatureLogits {
  std::span<const std::pair<int64_t, int64_t>> offsets;
  std::span<const float> start_logits, end_logits;
};

// The answer text for one example from all of its features. Ties in the logits break as numpy's
// stable argsort reversed (the later token first). With no valid span (v1): "empty", as
// transformers does. Throws when the options or the spans' lengths are inconsistent.
std::string decode_squad_answer(const std::string& context,
                                const std::vector<SquadFeatureLogits>& features,
                                const SquadDecodeOptions& opt);

// The official normalize_answer: Python lower-case (with the final-sigma rule approximated: a
// capital sigma after a letter and not before one gives ς), ASCII punctuation removed, the words
// "a", "an", "the" (Unicode word boundaries) replaced by a space, white space collapsed.
std::string normalize_squad_answer(std::string_view s);
bool squad_exact_match(std::string_view prediction, std::string_view gold);
// version_2: evaluate-v2.0's F1 (an empty side scores 1 when both are empty, else 0); v1.1: 0.
double squad_f1(std::string_view prediction, std::string_view gold, bool version_2 = false);

struct SquadScore {
  double exact = 0, f1 = 0;  // percent over all questions
  int64_t total = 0, missing = 0;  // questions, and those without a prediction (scored 0)
};
// v1.1: max over the gold answers; v2.0: gold answers that normalize to "" are dropped and a
// question with none left has the gold answer "".
SquadScore evaluate_squad(const std::vector<SquadExample>& examples,
                          const std::map<std::string, std::string>& predictions, bool version_2);

}  // namespace finch::data
