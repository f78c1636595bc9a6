// Training checkpoints: one safetensors file with everything a resumed run needs to continue bit
// for bit (weights and buffers, optimizer state, the default generator's state, the epochs done,
// the best accuracy so far and the per-epoch history), written atomically (temporary + rename).
//
// Layout: tensors "model.<state_dict name>", "optimizer.<optimizer state name>", "rng.default"
// (I64 [5], the bits of Generator::State); metadata "format" = "finch-train-checkpoint",
// "epochs_done", "best_test_accuracy", "history" (JSON array of the per-epoch rows), plus the
// caller's tags (train_cifar: "model", "width", "dataset", "optimizer", "finch_version").
// A run with state outside the model and optimizer (train_squad --qat's activation ranges) adds
// it as tensors "extra.<name>".
#pragma once
#include <map>
#include <string>

#include "autograd/nn/module.h"
#include "framework/safetensors.h"
#include "autograd/optim/optimizer.h"
#include "train/loop.h"

namespace finch::train {

using Metadata = std::map<std::string, std::string>;

// The "format" metadata of a checkpoint (tensors "model.<name>", "optimizer.…", "rng.default").
inline constexpr const char* kCheckpointFormat = "finch-train-checkpoint";

// `extra`: the caller's own state, stored as "extra.<name>" (names without the prefix).
void save_checkpoint(const std::string& path, const nn::Module& model, const optim::Optimizer& opt,
                     const TrainState& state, const Metadata& tags, const NamedTensors& extra = {});

struct LoadedCheckpoint {
  TrainState state;
  Metadata metadata;   // every metadata entry of the file (the tags included)
  NamedTensors extra;  // the "extra.*" tensors, prefix removed (with_extra only)
};

// Restores model (strictly), optimizer and the default generator, after checking the whole
// file first (so a refused file changes nothing): every model weight present and shaped, every
// optimizer buffer for every parameter once an epoch is done (the optimizer alone would start a
// missing one from zero and break exact resume), every tensor finite, rng.default, a whole
// epochs_done, best_test_accuracy in [0, 1], and one history row per epoch with the columns of
// history_row as numbers. Any problem is one finch::Error sentence naming the file and entry.
// "extra.*" tensors (finite, like every tensor) are returned when `with_extra`; without it a file
// that has them is refused, since this run would drop state the writing run kept.
LoadedCheckpoint load_checkpoint(const std::string& path, nn::Module& model, optim::Optimizer& opt,
                                 bool with_extra = false);

// Model weights from a plain weights file or a checkpoint (its "model." entries), loaded
// strictly into `model`; a mismatch or a NaN/infinite weight is a finch::Error naming the file
// and the tensor.
void load_weights(const std::string& path, nn::Module& model);

// The state_dict with PyTorch names plus `metadata`, atomically.
void save_weights(const std::string& path, const nn::Module& model, const Metadata& metadata);

// Writes the state atomically after each epoch: "<dir>/checkpoint.safetensors" every epoch and
// the weights as "<dir>/best.safetensors" when the epoch is the best so far.
class CheckpointCallback : public Callback {
 public:
  // `tags` go into the checkpoint; `weight_metadata` into best.safetensors.
  CheckpointCallback(std::string dir, Metadata tags, Metadata weight_metadata);
  void on_epoch_end(Context& ctx, const EpochEnd& e) override;
  std::string checkpoint_path() const { return dir_ + "/checkpoint.safetensors"; }
  std::string best_path() const { return dir_ + "/best.safetensors"; }

 private:
  std::string dir_;
  Metadata tags_, weight_metadata_;
};

}  // namespace finch::train
