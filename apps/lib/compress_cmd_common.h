// What `finch prune` and `finch lowrank` share: their model/checkpoint/dataset/--out and fine-tuning
// options, the option defaults, loading the trained model, one fine-tuning run and the output files.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "apps/lib/datasets.h"
#include "apps/lib/train_options.h"
#include "autograd/nn/module.h"
#include "framework/results.h"
#include "train/checkpoint.h"
#include "train/loop.h"

namespace CLI {
class App;
}

namespace finch::apps {

// --model, --checkpoint (required), --width, --dataset, --data, --out (required).
void add_compress_input_options(CLI::App& app, TrainOptions& t);
// --lr, --batch-size, --seed, [--mean, --std when `normalization`], --limit-train, --limit-test,
// --threads, --workers.
void add_compress_fine_tune_options(CLI::App& app, TrainOptions& t, bool normalization);

// Threads, the checkpoint's model and width, augmentation, the data defaults, lr (the model's
// training lr / 10 unless given) and weight decay 5e-4 unless given.
void prepare_compress_options(TrainOptions& t, bool lr_given);

// The network t.model for d's images and classes (width t.width), with t.checkpoint's weights (its
// compress_edits applied first).
nn::ModulePtr load_trained_model(const TrainOptions& t, const DataBundle& d);

// `epochs` of fine-tuning of `model` from a fresh optimizer (the layers' shapes may have changed),
// cosine to 0 with no warm-up, shuffled with `loader_seed`; returns the last test evaluation.
train::EvalResult compress_fine_tune(const TrainOptions& t, const DataBundle& d, nn::Module& model, int64_t epochs,
                                     uint64_t loader_seed, const std::string& name, const train::LossFn& loss,
                                     const std::vector<train::Callback*>& callbacks = {});

// Saves t.out_dir/model.safetensors with `meta`, adds the fields both commands report to `s` and
// writes t.out_dir/summary.json.
struct CompressRun {
  int64_t params_before = 0;
  double accuracy_before = 0, accuracy_after = 0;
  int64_t fine_tune_epochs = 0;
  std::chrono::steady_clock::time_point t0;
};
void write_compress_outputs(const TrainOptions& t, const nn::Module& model, const train::Metadata& meta,
                            const CompressRun& run, const std::string& command_line, nlohmann::json& s);

}  // namespace finch::apps
