// The options, loading, fine-tuning and output code `finch prune` and `finch lowrank` share (see
// compress_cmd_common.h).
#include "apps/lib/compress_cmd_common.h"

#include <filesystem>

#include <CLI/CLI.hpp>

#include "apps/lib/checkpoint.h"
#include "apps/lib/trainer.h"
#include "apps/lib/version.h"
#include "data/dataloader.h"
#include "framework/parallel.h"
#include "framework/safetensors.h"
#include "models/factory.h"
#include "train/evaluate.h"
#include "train/optim_config.h"

namespace finch::apps {

void add_compress_input_options(CLI::App& app, TrainOptions& t) {
  app.add_option("--model", t.model, "network (default: the one the checkpoint names)")
      ->check(CLI::IsMember(models::model_names()));
  app.add_option("--checkpoint", t.checkpoint, "trained fp32 weights (model.safetensors or a checkpoint)")->required();
  app.add_option("--width", t.width, "MobileNet width multiplier (default: the checkpoint's)");
  app.add_option("--dataset", t.dataset, "cifar10, cifar100, fashion-mnist or folder")
      ->check(CLI::IsMember({"cifar10", "cifar100", "fashion-mnist", "folder"}))
      ->capture_default_str();
  app.add_option("--data", t.data_dir, "dataset folder (default for fashion-mnist: /usr/share/datasets/fashion-mnist)");
  app.add_option("--out", t.out_dir, "output folder: model.safetensors and summary.json")->required();
}

void add_compress_fine_tune_options(CLI::App& app, TrainOptions& t, bool normalization) {
  app.add_option("--lr", t.lr, "fine-tuning learning rate (default: the model's training lr / 10)")
      ->check(positive_number());
  app.add_option("--batch-size", t.batch_size, "fine-tuning batch size")->check(positive_number())->capture_default_str();
  app.add_option("--seed", t.seed, "seed of shuffling and augmentation")->capture_default_str();
  if (normalization) {
    app.add_option("--mean", t.mean, "per-channel normalization mean (default: the dataset's)")->expected(1, 3);
    app.add_option("--std", t.std, "per-channel normalization std (default: the dataset's)")->expected(1, 3);
  }
  app.add_option("--limit-train", t.limit_train, "fine-tune on the first N training images only (0: all)")
      ->check(non_negative_number());
  app.add_option("--limit-test", t.limit_test, "evaluate on the first N test images only (0: all)")
      ->check(non_negative_number());
  app.add_option("--threads", t.threads, "compute threads (0: all cores)")->check(non_negative_number());
  app.add_option("--workers", t.workers, "data-loader threads")->check(non_negative_number());
}

namespace {

// A Hugging Face BERT directory, or weights whose tensors are BERT's (train_bert/train_squad's).
bool is_bert_checkpoint(const std::string& path) {
  namespace fs = std::filesystem;
  if (fs::is_directory(path)) return fs::is_regular_file(fs::path(path) / "config.json");
  if (!fs::is_regular_file(path) || model_name_in(path) != "") return false;
  const SafetensorsFile f = load_safetensors(path);
  for (const auto& [name, t] : f.tensors)
    if (name.rfind("bert.", 0) == 0 || name.rfind("embeddings.word_embeddings", 0) == 0) return true;
  return false;
}

}  // namespace

void prepare_compress_options(TrainOptions& t, bool lr_given) {
  if (is_bert_checkpoint(t.checkpoint))
    fail(t.checkpoint, " is a BERT checkpoint: finch prune --structured and finch lowrank take a BERT directory "
         "(config.json, model.safetensors and vocab.txt, as train_squad writes) with --data SQuAD.json; finch "
         "compress takes image models (docs/pruning.md)");
  set_num_threads(t.threads);
  adopt_model_of(t.checkpoint, t, t.model_given, t.width_given);
  check_width(t.model, t.width);
  t.augment = true;
  finalize_data_options(t);
  if (!lr_given) t.lr = default_lr(t.model, t.optimizer) / 10;
  if (t.weight_decay < 0) t.weight_decay = 5e-4;
}

nn::ModulePtr load_trained_model(const TrainOptions& t, const DataBundle& d) {
  nn::ModulePtr model = models::create(t.model, d.channels, int64_t(d.classes.size()), zoo_options(t, d.height));
  load_weights(t.checkpoint, *model);  // the file's compress_edits first (a pruned or factorized model)
  return model;
}

train::EvalResult compress_fine_tune(const TrainOptions& base, const DataBundle& d, nn::Module& model, int64_t epochs,
                                     uint64_t loader_seed, const std::string& name, const train::LossFn& loss,
                                     const std::vector<train::Callback*>& callbacks) {
  TrainOptions t = base;
  t.epochs = epochs;
  t.warmup_epochs = 0;
  t.stop_after_epochs = 0;
  data::DataLoaderOptions lo;
  lo.batch_size = t.batch_size;
  lo.shuffle = true;
  lo.drop_last = d.train->size() > t.batch_size;
  lo.num_workers = t.workers;
  lo.seed = loader_seed;
  data::DataLoader loader(d.train, lo);
  std::unique_ptr<optim::Optimizer> opt = train::make_optimizer(optimizer_config(t), model);
  train::TrainState state;
  train::LoopConfig loop = loop_config(t, false);
  loop.name = name;
  const int64_t classes = int64_t(d.classes.size());
  return train::fit(model, *opt, loader, loss, schedule_config(t), loop, state,
                    [&](nn::Module& m) { return train::evaluate(m, d.test, 256, classes, false, t.workers); },
                    callbacks);
}

void write_compress_outputs(const TrainOptions& t, const nn::Module& model, const train::Metadata& meta,
                            const CompressRun& run, const std::string& command_line, nlohmann::json& s) {
  const std::string out = t.out_dir + "/";
  create_out_dir(t.out_dir);
  train::save_weights(out + "model.safetensors", model, meta);
  s["model"] = t.model;
  s["dataset"] = t.dataset;
  s["checkpoint"] = t.checkpoint;
  s["parameters_before"] = run.params_before;
  s["parameters_after"] = model.num_parameters();
  s["test_accuracy_before"] = run.accuracy_before;
  s["test_accuracy"] = run.accuracy_after;
  s["fine_tune_epochs"] = run.fine_tune_epochs;
  s["finch_version"] = finch_version();
  s["command_line"] = command_line;
  s["wall_seconds"] =
      train::round_significant(std::chrono::duration<double>(std::chrono::steady_clock::now() - run.t0).count());
  write_json_file(out + "summary.json", s);
}

}  // namespace finch::apps
