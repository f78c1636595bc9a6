// train_cifar's weight and checkpoint files: the metadata it records (model name, MobileNet
// width, dataset, optimizer, finch version) over the training library's files
// (train/checkpoint.h), and reading which network a file holds.
//
// Checkpoint metadata (besides the library's format/epochs_done/best_test_accuracy/history):
// "model", "width" (the MobileNet width multiplier, JSON), "stem" ("cifar" or "imagenet"; absent
// in files written before --stem: cifar), "dataset", "optimizer", "finch_version". Weight files:
// "model", "width", "stem", "dataset", "finch_version".
#pragma once
#include <string>

#include "apps/lib/train_options.h"
#include "models/factory.h"
#include "train/checkpoint.h"

namespace finch::apps {

// Weights from a model.safetensors/best.safetensors or a checkpoint into `model`, freshly built by
// models::create(...): first the architecture edits the file records (metadata "compress_edits",
// compress/edits.h: a pruned model's smaller layers), then the tensors. Every app that builds a
// model from a file goes through here, so a pruned file loads with no extra flags.
void load_weights(const std::string& path, nn::Module& model);
// The "compress_edits" metadata of a weights or checkpoint file ("" when absent).
std::string edits_in(const std::string& path);

// The metadata train_cifar writes into checkpoint.safetensors and into weight files.
train::Metadata checkpoint_tags(const TrainOptions& o);
train::Metadata weight_metadata(const DataOptions& o);

// The weights with PyTorch names plus weight_metadata(o), as model.safetensors / best.safetensors.
void save_weights(const std::string& path, const nn::Module& model, const DataOptions& o);

// models::create's options for the network `o` describes (its width and stem) at `input_size`
// (LeNet-5's padding): the one place the apps turn DataOptions into a zoo network.
models::CreateOptions zoo_options(const DataOptions& o, int64_t input_size, Generator* gen = nullptr);

// Restores a checkpoint for --resume and checks that it belongs to this run (same model, dataset,
// optimizer, width and stem, fewer epochs done than o.epochs); finch::Error sentences otherwise.
train::TrainState resume_checkpoint(const TrainOptions& o, nn::Module& model, optim::Optimizer& opt);

// The "model" metadata of a weights or checkpoint file ("" when absent).
std::string model_name_in(const std::string& path);

// The "stem" metadata of a weights or checkpoint file ("" when absent: a foreign file, or one
// written before --stem).
std::string stem_in(const std::string& path);

// The "width" metadata of a weights or checkpoint file (1 when absent: written before --width).
double width_in(const std::string& path);

// Makes `o` describe the network stored in `path`: its model name (unless --model was given, when
// a different one is an error), its width multiplier (likewise for --width) and its stem
// (likewise for o.stem_given). `model_given` and `width_given` say which the user typed; without
// a model name in the file, --model is required.
void adopt_model_of(const std::string& path, DataOptions& o, bool model_given, bool width_given);

}  // namespace finch::apps
