// Training checkpoints: one safetensors file with everything --resume needs to continue a run
// bit for bit (weights and buffers, optimizer state, the default generator's state, the epochs
// done, the best accuracy so far and the per-epoch history), written atomically.
//
// Layout: tensors "model.<state_dict name>", "optimizer.<optimizer state name>",
// "rng.default" (I64 [5], the bits of Generator::State); metadata "format" =
// "finch-train-checkpoint", "model", "width" (the MobileNet width multiplier), "dataset", "optimizer", "epochs_done", "best_test_accuracy",
// "history" (JSON array of the per-epoch metrics rows), "finch_version".
#pragma once
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "autograd/nn/module.h"
#include "autograd/optim/optimizer.h"

namespace finch::apps {

struct CheckpointInfo {
  std::string model, dataset, optimizer;
  double width = 1.0;  // files without a "width" entry predate --width: 1
  int64_t epochs_done = 0;
  double best_test_accuracy = 0;
  nlohmann::json history = nlohmann::json::array();
};

void save_checkpoint(const std::string& path, const nn::Module& model, const optim::Optimizer& opt,
                     const CheckpointInfo& info);

// Restores model, optimizer and the default generator; returns the saved info. A file that is
// not a checkpoint, or one of another model/optimizer, is an error naming the file.
CheckpointInfo load_checkpoint(const std::string& path, nn::Module& model, optim::Optimizer& opt);

// Model weights from a model.safetensors/best.safetensors file or a checkpoint (its "model."
// entries), loaded strictly into `model`.
void load_weights(const std::string& path, nn::Module& model);

// The weights with PyTorch names plus metadata ("model", "dataset", "width"), as
// model.safetensors / best.safetensors.
void save_weights(const std::string& path, const nn::Module& model, const std::string& model_name,
                  const std::string& dataset, double width = 1.0);

// The "model" metadata of a weights or checkpoint file ("" when absent).
std::string model_name_in(const std::string& path);

// The "width" metadata of a weights or checkpoint file (1 when absent: written before --width).
double width_in(const std::string& path);

struct TrainOptions;
// Makes `o` describe the network stored in `path`: its model name (unless --model was given, when
// a different one is an error) and its width multiplier (likewise for --width). `model_given` and
// `width_given` say which the user typed; without a model name in the file, --model is required.
void adopt_model_of(const std::string& path, TrainOptions& o, bool model_given, bool width_given);

}  // namespace finch::apps
