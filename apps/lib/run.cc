// train_cifar's run: data, model, the training library's loop with train_cifar's callbacks, and
// the result files in --out.
#include "apps/lib/run.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "apps/lib/checkpoint.h"
#include "apps/lib/datasets.h"
#include "apps/lib/distributed.h"
#include "apps/lib/model_selection.h"
#include "apps/lib/qat_run.h"
#include "apps/lib/trainer.h"
#include "apps/lib/version.h"
#include "framework/error.h"
#include "framework/parallel.h"
#include "framework/random.h"
#include "framework/results.h"
#include "models/factory.h"
#include "train/callbacks.h"
#include "train/checkpoint.h"
#include "train/evaluate.h"
#include "train/initial_weights.h"
#include "train/report.h"

namespace finch::apps {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kThumbnails = 12;  // most confidently wrong test images in report.html

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

nlohmann::json nan_to_null(const std::vector<double>& v) {
  nlohmann::json a = nlohmann::json::array();
  for (double x : v) a.push_back(std::isfinite(x) ? nlohmann::json(x) : nlohmann::json(nullptr));
  return a;
}

// The keys summary.json shares between training and --eval-only.
nlohmann::json base_summary(const TrainOptions& o, const nn::Module& model, const DataBundle& d,
                            const train::EvalResult& r, const std::string& command_line) {
  return {{"model", o.model},
          {"width", o.width},
          {"dataset", o.dataset},
          {"parameters", model.num_parameters()},
          {"classes", d.classes},
          {"test_images", r.count},
          {"test_loss", r.loss},
          {"test_accuracy", r.accuracy},
          {"per_class_accuracy", nan_to_null(r.per_class_accuracy())},
          {"confusion_matrix", r.confusion},
          {"threads", get_num_threads()},
          {"finch_version", finch_version()},
          {"command_line", command_line}};
}

int64_t file_size_or_zero(const std::string& path) {
  std::error_code ec;
  const auto n = std::filesystem::file_size(path, ec);
  return ec ? 0 : int64_t(n);
}

nn::ModulePtr make_model(const TrainOptions& o, const DataBundle& d, Generator* gen) {
  return models::create(o.model, d.channels, int64_t(d.classes.size()), zoo_options(o, d.height, gen));
}

int eval_only(const TrainOptions& o, const std::string& command_line) {
  const auto t0 = Clock::now();
  const DataBundle d = load_data(o, /*need_train=*/false);
  nn::ModulePtr model = make_model(o, d, nullptr);
  load_weights(o.checkpoint, *model);
  const train::EvalResult r =
      train::evaluate(*model, d.test, 256, int64_t(d.classes.size()), !o.predictions.empty(), o.workers);
  create_out_dir(o.out_dir);
  nlohmann::json s = base_summary(o, *model, d, r, command_line);
  s["checkpoint"] = o.checkpoint;
  s["model_file_bytes"] = file_size_or_zero(o.checkpoint);
  s["wall_seconds"] = train::round_significant(seconds_since(t0));
  write_json_file(o.out_dir + "/summary.json", s);
  train::ReportExtras extras;
  extras.mistakes = train::confident_mistake_thumbnails(*d.test, r, kThumbnails);
  train::write_report_html(o.out_dir + "/report.html", s, nlohmann::json::array(), extras);
  if (!o.predictions.empty()) train::write_predictions_csv(o.predictions, r);
  std::printf("test accuracy %.4f (%lld images), loss %.4f — %s/summary.json\n", r.accuracy,
              static_cast<long long>(r.count), r.loss, o.out_dir.c_str());
  return 0;
}

// Throughput over every epoch so far, resumed runs included (rows from before the "images"
// column carry it as seconds × images_per_second).
double images_per_second(const nlohmann::json& history) {
  double seconds = 0, images = 0;
  // The checkpoint's rows were checked on load (train/checkpoint.h); a null (NaN) rate counts as 0.
  auto number = [](const nlohmann::json& row, const char* key) {
    return row.contains(key) && row[key].is_number() ? row[key].get<double>() : 0.0;
  };
  for (const auto& row : history) {
    const double s = number(row, "seconds");
    seconds += s;
    images += row.contains("images") && row["images"].is_number() ? row["images"].get<double>()
                                                                  : std::round(s * number(row, "images_per_second"));
  }
  return seconds > 0 ? train::round_significant(images / seconds) : 0.0;
}

}  // namespace

int run_train_cifar(TrainOptions o, const std::string& command_line, bool quiet) {
  finalize_options(o);
  set_num_threads(o.threads);
  if ((o.eval_only || o.qat) && dist::launcher_world_size() > 1)
    fail(o.eval_only ? "--eval-only" : "--qat", " runs in one process, but mpirun started ",
         dist::launcher_world_size(), "; run it without mpirun (data-parallel training is for float training)");
  if (o.eval_only) {
    if (!model_name_in(o.checkpoint).empty())
      adopt_model_of(o.checkpoint, o, o.model_given, o.width_given);  // the file says which network it is
    check_width(o.model, o.width);
    return eval_only(o, command_line);
  }
  if (o.qat && !o.checkpoint.empty()) {
    if (!model_name_in(o.checkpoint).empty()) adopt_model_of(o.checkpoint, o, o.model_given, o.width_given);
    check_width(o.model, o.width);
    return run_qat(o, command_line, quiet);
  }
  if (o.qat) {
    // From scratch: train the float model first, then fine-tune it with QAT.
    TrainOptions f = o;
    f.qat = false;
    if (const int rc = run_train_cifar(f, command_line, quiet); rc != 0) return rc;
    o.checkpoint = o.out_dir + "/model.safetensors";
    return run_qat(o, command_line, quiet);
  }
  const auto t0 = Clock::now();
  const DataBundle d = load_data(o, true, o.val_fraction, o.seed);
  const int64_t num_classes = int64_t(d.classes.size());
  if (o.keep.empty()) o.keep = d.val ? "best" : "last";
  // Every random draw of a run comes from the seed: init from `gen`, dropout from the default
  // generator (saved in checkpoints), shuffling and augmentation from the loader's (seed, epoch).
  manual_seed(o.seed * 2654435761u + 1);
  Generator gen(o.seed);
  nn::ModulePtr model = make_model(o, d, &gen);
  // Pretrained weights go in before the optimizer and the data-parallel broadcast see the model.
  train::InitialWeightsReport init;
  if (!o.initial_checkpoint.empty()) init = train::load_initial_weights(o.initial_checkpoint, *model, o.reinit_head);
  std::unique_ptr<optim::Optimizer> opt = train::make_optimizer(optimizer_config(o), *model);

  // Under mpirun -np N: every rank trains on its shard; rank 0 alone writes files.
  const std::unique_ptr<train::DataParallel> dp =
      start_data_parallel(*model, *d.train, train_options_fingerprint(o), o);
  const int ranks = dp ? dp->size() : 1;
  const bool root = !dp || dp->rank() == 0;
  if (root) create_out_dir(o.out_dir);
  if (root && !o.initial_checkpoint.empty()) {
    std::cerr << "train_cifar: --initial-checkpoint " << o.initial_checkpoint << ": " << train::describe(init) << "\n";
    // Not an error: ImageNet weights fine-tuned with the CIFAR stem on 32×32 images is a choice.
    if (const std::string stem = stem_in(o.initial_checkpoint); !stem.empty() && stem != o.stem)
      std::cerr << "train_cifar: note: " << o.initial_checkpoint << " records the " << stem
                << " stem; this run builds the " << o.stem << " stem (--stem " << o.stem << ")\n";
  }
  const std::string out = o.out_dir + "/";
  train::TrainState state;
  if (!o.resume.empty()) state = resume_checkpoint(o, *model, *opt);  // every rank reads it
  const size_t first_row = state.history.size();

  data::DataLoaderOptions lo;
  lo.batch_size = o.batch_size;
  lo.shuffle = true;
  lo.drop_last = d.train->size() / ranks > o.batch_size;  // BN dislikes a tiny last batch
  lo.num_workers = o.workers;
  lo.seed = o.seed;
  lo.num_shards = ranks;
  lo.shard_rank = dp ? dp->rank() : 0;
  data::DataLoader loader(d.train, lo);

  if (root)
    std::cerr << "train_cifar: " << o.model << " (" << model->num_parameters() << " parameters) on " << o.dataset
            << ": " << d.train->size() << " training / "
            << (d.val ? std::to_string(d.val->size()) + " validation (" + d.val_source + ") / " : "")
            << d.test->size() << " test images, " << o.epochs
            << " epochs, batch " << o.batch_size << ", " << o.optimizer << " lr " << o.lr << " (" << o.schedule
            << "), " << get_num_threads() << " threads"
            << (state.epochs_done ? ", resuming after epoch " + std::to_string(state.epochs_done) : "")
            << (dp ? ", " + std::to_string(ranks) + " processes (" + dist::world().backend() + "), effective batch " +
                         std::to_string(o.batch_size * ranks)
                   : "")
            << "\n";

  const train::ScheduleConfig schedule = schedule_config(o);
  train::CheckpointCallback checkpoints(o.out_dir, checkpoint_tags(o), weight_metadata(o));
  train::MetricsCsvCallback metrics(out + "metrics.csv", metrics_columns(d.val != nullptr));
  SelectionLogCallback log("img/s");
  train::LoopConfig lc = loop_config(o, quiet || !root);
  lc.parallel = dp.get();
  // The best epoch (best.safetensors, "(best)") is the best VALIDATION accuracy, never the test
  // set's (apps/lib/model_selection.h).
  const SelectionConfig sc{false, o.patience};
  if (root) prepare_best_file(o.out_dir, o.resume, state.history, sc);
  train::Evaluator validate;
  if (d.val) validate = [&](nn::Module& m) { return train::evaluate(m, d.val, 256, num_classes, false, o.workers); };
  ValidationSelection selection(validate, sc,
                                root ? std::vector<train::Callback*>{&checkpoints, &metrics, &log}
                                     : std::vector<train::Callback*>{});
  // Every rank evaluates (the same weights, the same test and validation sets) so their state
  // and their early-stopping decision stay identical.
  const train::EvalResult last = train::fit(
      *model, *opt, loader, classification_loss(o.label_smoothing), schedule, lc, state,
      [&](nn::Module& m) { return train::evaluate(m, d.test, 256, num_classes, false, o.workers); }, {&selection});
  if (!root) return 0;
  // model.safetensors: the best validation epoch's weights with --keep best (the default with
  // validation), else the last epoch's.
  const int64_t kept = kept_epoch(state.history, sc, o.keep);
  if (kept > 0) train::load_weights(out + "best.safetensors", *model);
  // A resumed run that had nothing left, or stopped early, still reports the current weights.
  const train::EvalResult r = last.count > 0 && o.predictions.empty() && kept == 0
                                  ? last
                                  : train::evaluate(*model, d.test, 256, num_classes, !o.predictions.empty(), o.workers);
  save_weights(out + "model.safetensors", *model, o);
  if (!o.predictions.empty()) train::write_predictions_csv(o.predictions, r);
  nlohmann::json s = base_summary(o, *model, d, r, command_line);
  const SelectionReport sr = selection_report(d, o, selection, state.epochs_done);
  s.update(selection_summary(state.history, sr));
  s["model_file_bytes"] = file_size_or_zero(out + "model.safetensors");
  s["epochs"] = o.epochs;
  s["epochs_done"] = state.epochs_done;
  s["train_images"] = d.train->size();
  s["train_images_per_second"] = images_per_second(state.history);
  s["distributed"] = distributed_summary(dp.get(), o.batch_size, o.lr, state.history, first_row);
  s["distributed"]["bucket_mb"] = o.bucket_mb;
  s["wall_seconds"] = train::round_significant(seconds_since(t0));
  s["stem"] = o.stem;
  if (!o.initial_checkpoint.empty())
    s["initial_checkpoint"] = {{"file", o.initial_checkpoint}, {"loaded", init.loaded.size()},
                               {"head_reinitialized", init.head_kept}, {"unused", init.unused.size()}};
  s["hyperparameters"] = {{"batch_size", o.batch_size},   {"lr", o.lr},
                          {"optimizer", o.optimizer},     {"momentum", o.momentum},
                          {"weight_decay", o.weight_decay}, {"schedule", o.schedule},
                          {"warmup_epochs", o.warmup_epochs}, {"label_smoothing", o.label_smoothing},
                          {"augment", o.augment},         {"seed", o.seed},
                          {"mean", o.mean},               {"std", o.std}};
  write_json_file(out + "summary.json", s);
  train::ReportExtras extras;
  extras.lr_curve = train::schedule_curve(schedule, loader.num_batches());
  extras.mistakes = train::confident_mistake_thumbnails(*d.test, r, kThumbnails);
  train::write_report_html(out + "report.html", s, state.history, extras);
  std::printf("test accuracy %.4f (model.safetensors: %s %lld of %lld epochs%s); report: %sreport.html\n", r.accuracy,
              kept > 0 ? "the best validation epoch," : "the last,", static_cast<long long>(kept > 0 ? kept : state.epochs_done),
              static_cast<long long>(state.epochs_done), sr.stopped_early ? ", stopped early" : "", out.c_str());
  return 0;
}

}  // namespace finch::apps
