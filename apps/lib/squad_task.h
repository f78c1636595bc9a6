// SQuAD as a fine-tuning task and a score for the commands that change a trained BERT (finch
// prune / lowrank on a BERT directory): the file split by article as train_squad splits it, the
// training windows as a BertTask for bert_train.h's loop (transformers' start/end cross-entropy),
// and the held-out EM/F1 decoded as infer_squad decodes.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "apps/lib/bert_train.h"
#include "data/squad.h"
#include "data/squad_eval.h"
#include "data/squad_features.h"
#include "data/wordpiece.h"
#include "models/bert.h"

namespace finch::apps {

struct SquadSplitOptions {
  double fraction = 0.8;  // share of the articles trained on (split_by_article)
  uint64_t seed = 0;
  data::SquadFeatureOptions features;
  int64_t eval_limit = 0;  // score only the first N held-out questions (0: all)
};

struct SquadSplit {
  std::vector<data::SquadExample> examples;
  std::vector<std::vector<data::SquadFeature>> features;  // per example
  std::vector<size_t> train, heldout;                     // example indices
  std::vector<std::pair<size_t, size_t>> train_windows;   // (example, feature) of every training window
  bool version_2 = false;
  int64_t max_seq_length() const { return features_options.max_seq_length; }
  data::SquadFeatureOptions features_options;
};

// Reads `path`, splits it by article (squad_train.h's split_by_article: the same questions as
// train_squad --split-by-article with the same fraction and seed) and windows every question.
SquadSplit load_squad_split(const std::string& path, const data::WordPieceTokenizer& tok, const SquadSplitOptions& o);

// Start and end logits [B, S] of a batch of windows (input_ids, token_type_ids, attention_mask).
using QaLogits = std::function<std::pair<Tensor, Tensor>(const Tensor&, const Tensor&, const Tensor&)>;

// The questions `which` (indices into `examples`, windowed as `features` at length S) answered
// from `forward`'s logits over all their windows (batches of `batch` windows) and scored by the
// official evaluation; each question's answer text appended to *answers in that order.
data::SquadScore score_questions(const std::vector<data::SquadExample>& examples,
                                 const std::vector<std::vector<data::SquadFeature>>& features,
                                 const std::vector<size_t>& which, int64_t S, const QaLogits& forward,
                                 const data::SquadDecodeOptions& d, int64_t batch,
                                 std::vector<std::pair<std::string, std::string>>* answers = nullptr);

// The held-out questions answered from `forward`'s logits over all their windows (batches of
// `batch` windows) and scored by the official evaluation.
data::SquadScore score_heldout(const SquadSplit& s, const QaLogits& forward, const data::SquadDecodeOptions& d,
                               int64_t batch);

// Distillation of the QA head (Hinton et al. 2015) when `teacher` is set: each window's loss is
// (D(start) + D(end)) / 2 with D = train::distillation_loss, α·T²·KL(softmax(t/T) ‖ softmax(s/T))
// + (1 − α)·CE(s, the labelled position), t the teacher's logits of the same windows (eval mode,
// no gradient).
struct QaDistill {
  models::BertForQuestionAnswering* teacher = nullptr;
  double temperature = 4, alpha = 0.9;
};

// The training windows as a task: the mean of transformers' (CE(start) + CE(end)) / 2 over a
// micro-batch (or the distillation loss above), with spans right as the accuracy. `s`, `model`
// and the teacher must outlive the task.
BertTask squad_qa_task(const SquadSplit& s, models::BertForQuestionAnswering& model, const std::string& program,
                       const QaDistill& distill = {});

// The loss of task.batch on the first `windows` training windows, backward run (gradients
// accumulate in the model): the Taylor score's pass (compress/structured.h).
void accumulate_squad_gradients(const SquadSplit& s, models::BertForQuestionAnswering& model, int64_t windows,
                                int64_t batch);

}  // namespace finch::apps
