// train_squad's library part: SQuAD dev articles split by article into training and held-out
// questions, windowed features, the start/end cross-entropy of transformers'
// BertForQuestionAnswering, the fine-tuning run (bert_train.h's loop) and the held-out EM/F1
// with infer_squad's decoding and the official evaluation.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "apps/lib/bert_train.h"
#include "data/squad.h"

namespace CLI {
class App;
}

namespace finch::apps {

struct SquadTrainOptions {
  BertTrainOptions train;
  // init_dir: a Hugging Face directory (train_bert's output) or a train_bert
  // checkpoint.safetensors (then vocab_path is required); vocab_path empty: init_dir/vocab.txt.
  std::string data_path, init_dir, vocab_path;
  double split_fraction = 0.8;                  // share of the articles trained on
  uint64_t split_seed = 0;
  int64_t max_seq_length = 384, doc_stride = 128, max_query_length = 64;
  int64_t n_best = 20, max_answer_length = 30;
  int64_t eval_batch_size = 16;
  int64_t eval_limit = 0;  // 0: every held-out question
  std::string predictions_path;  // empty: out/predictions.json
  // qat: fine-tune with the static int8 simulation in the forward (quant/bert_sim.h), its range
  // observers on for the first qat_observer_steps steps (-1: half the steps) and frozen after;
  // at the end the held-out questions are scored by the simulation and OUT/model-int8-static.finch
  // is written and checked equal to it bit for bit.
  bool qat = false;
  int64_t qat_observer_steps = -1;
  double qat_averaging = 0.01;
  // eval_int8_static: also score the held-out questions with a post-training static int8 program
  // of the final weights, calibrated on the first calibration_windows training windows.
  bool eval_int8_static = false;
  int64_t calibration_windows = 32;
};

void add_squad_train_options(CLI::App& app, SquadTrainOptions& o);

// The split of --split-by-article: the articles (distinct titles, in the order they first appear)
// are shuffled by a generator seeded with `seed` (Fisher-Yates over finch's xoshiro Generator),
// and the first round(fraction · articles) of them — at least one, and one short of all when
// there are two or more — are the training articles. Returns, per example, whether it is in a
// training article. A file with one article or a fraction outside (0, 1) is one sentence.
std::vector<bool> split_by_article(const std::vector<data::SquadExample>& examples, double fraction, uint64_t seed);

// The whole run; returns the exit code (0). Bad input is a finch::Error sentence.
int run_squad_training(SquadTrainOptions o, const std::string& command_line);

}  // namespace finch::apps
