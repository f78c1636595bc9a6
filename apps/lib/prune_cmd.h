// `finch prune`: structured (channels removed, the model rebuilt smaller) or unstructured (masked
// weights, one-shot / iterative / gradual, N:M) pruning of a trained model, fine-tuned with the
// training library, written as DIR/model.safetensors (its architecture recorded) and
// DIR/summary.json.
#pragma once

#include <string>
#include <vector>

#include "apps/lib/train_options.h"
#include "compress/unstructured.h"
#include "train/loop.h"

namespace CLI {
class App;
}

namespace finch::apps {

struct PruneOptions {
  TrainOptions train;  // model, checkpoint, dataset, batch size, lr, seed, threads, --out
  bool structured = false;
  double amount = 0.5;        // structured: fraction of each group's channels removed
  std::string score = "l1";   // l1, l2, bn, taylor
  bool global = false;        // rank all groups (structured) or all weights (unstructured) together
  int64_t taylor_batches = 8;
  double sparsity = 0.9;      // unstructured: fraction of weights zeroed
  std::string schedule = "one-shot";  // one-shot, iterative, gradual
  int64_t rounds = 3;         // iterative: prune + fine-tune rounds
  std::string pattern;        // "2:4": N:M masks (one-shot)
  std::vector<std::string> skip;  // module paths left dense (unstructured)
  int64_t fine_tune_epochs = 1;   // per round for iterative
  int64_t bn_batches = 32;        // BatchNorm statistics re-estimated after pruning
  bool lr_given = false;
  bool distill = false;       // fine-tune against the teacher's logits (train/distill.h)
  double temperature = 4, alpha = 0.9;
  std::string teacher;        // the teacher's weights (default: --checkpoint, the unpruned model)
};

// Metadata that finch prune writes on unstructured-pruned weights ("compress_masks": "zeros"): the
// zeros are the masks, which fine-tuning (train_cifar --qat) must keep.
inline constexpr const char* kMasksKey = "compress_masks";
bool pruned_weights_in(const std::string& path);

void add_prune_options(CLI::App& app, PruneOptions& o);
int run_prune(PruneOptions o, const std::string& command_line);

// Keeps a MaskSet's zeros through training: apply() after every optimizer step, and the gradual
// schedule's re-pruning when one is given (a train/ callback; compress/ may not include train/).
class MaskCallback : public train::Callback {
 public:
  explicit MaskCallback(compress::MaskSet& masks, compress::GradualPruner* gradual = nullptr)
      : masks_(masks), gradual_(gradual) {}
  void on_batch_end(train::Context&, int64_t, int64_t, double) override;

 private:
  compress::MaskSet& masks_;
  compress::GradualPruner* gradual_;
  int64_t step_ = 0;
};

}  // namespace finch::apps
