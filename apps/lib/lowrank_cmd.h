// `finch lowrank`: low-rank factorization (truncated SVD) of a trained model's Linear and Conv2d
// layers, optionally fine-tuned (with distillation from the unfactorized model), written as
// DIR/model.safetensors (the factorization recorded in "compress_edits", so the file loads with no
// extra flags) and DIR/summary.json.
#pragma once

#include <string>
#include <vector>

#include "apps/lib/train_options.h"

namespace CLI {
class App;
}

namespace finch::apps {

struct LowRankCmdOptions {
  TrainOptions train;  // model, checkpoint, dataset, batch size, lr, seed, threads, --out
  double rank_fraction = 0, energy = 0, compression = 0;  // exactly one
  bool global = false;               // --compression for the whole model
  std::vector<std::string> skip;     // module paths left dense
  int64_t fine_tune_epochs = 0;
  bool distill = false;              // fine-tune against the unfactorized model's logits
  double temperature = 4, alpha = 0.9;
  std::string teacher;               // the teacher's weights (default: --checkpoint, the unfactorized model)
  bool lr_given = false;
};

void add_lowrank_options(CLI::App& app, LowRankCmdOptions& o);
int run_lowrank(LowRankCmdOptions o, const std::string& command_line);

}  // namespace finch::apps
