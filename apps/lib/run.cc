// train_cifar's run: data, model, epochs, checkpoints and the result files in --out.
#include "apps/lib/run.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "apps/lib/checkpoint.h"
#include "apps/lib/datasets.h"
#include "apps/lib/metrics.h"
#include "apps/lib/qat_run.h"
#include "apps/lib/report_html.h"
#include "apps/lib/trainer.h"
#include "apps/lib/version.h"
#include "framework/error.h"
#include "framework/parallel.h"
#include "framework/random.h"
#include "framework/results.h"
#include "models/factory.h"

namespace finch::apps {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

nlohmann::json nan_to_null(const std::vector<double>& v) {
  nlohmann::json a = nlohmann::json::array();
  for (double x : v) a.push_back(std::isfinite(x) ? nlohmann::json(x) : nlohmann::json(nullptr));
  return a;
}

// The keys summary.json shares between training and --eval-only.
nlohmann::json base_summary(const TrainOptions& o, const nn::Module& model, const DataBundle& d,
                            const EvalResult& r, const std::string& command_line) {
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

nlohmann::json history_row(int64_t epoch, const EpochStats& s, const EvalResult& r) {
  return {{"epoch", epoch},
          {"lr", s.lr},
          {"train_loss", s.loss},
          {"train_acc", s.accuracy},
          {"test_loss", r.loss},
          {"test_acc", r.accuracy},
          {"seconds", s.seconds},
          {"images_per_second", s.seconds > 0 ? double(s.images) / s.seconds : 0.0}};
}

void write_metrics_csv(const std::string& path, const nlohmann::json& history) {
  const std::vector<std::string> keys = {"epoch",     "lr",       "train_loss", "train_acc",
                                         "test_loss", "test_acc", "seconds",    "images_per_second"};
  CsvWriter csv(keys);
  for (const auto& row : history) {
    std::vector<CsvCell> cells;
    cells.emplace_back(row.at("epoch").get<int64_t>());
    for (size_t i = 1; i < keys.size(); ++i) cells.emplace_back(row.at(keys[i]).get<double>());
    csv.add_row(std::move(cells));
  }
  csv.save(path);
}

int64_t file_size_or_zero(const std::string& path) {
  std::error_code ec;
  const auto n = std::filesystem::file_size(path, ec);
  return ec ? 0 : int64_t(n);
}

int eval_only(const TrainOptions& o, const std::string& command_line) {
  const auto t0 = Clock::now();
  const DataBundle d = load_data(o, /*need_train=*/false);
  models::CreateOptions co;
  co.cifar = true;
  co.input_size = d.height;
  co.width_mult = o.width;
  nn::ModulePtr model = models::create(o.model, d.channels, int64_t(d.classes.size()), co);
  load_weights(o.checkpoint, *model);
  const EvalResult r = evaluate(*model, d.test, 256, int64_t(d.classes.size()), !o.predictions.empty(), o.workers);
  std::filesystem::create_directories(o.out_dir);
  nlohmann::json s = base_summary(o, *model, d, r, command_line);
  s["checkpoint"] = o.checkpoint;
  s["model_file_bytes"] = file_size_or_zero(o.checkpoint);
  s["wall_seconds"] = seconds_since(t0);
  write_json_file(o.out_dir + "/summary.json", s);
  write_report_html(o.out_dir + "/report.html", s, nlohmann::json::array());
  if (!o.predictions.empty()) write_predictions_csv(o.predictions, r);
  std::printf("test accuracy %.4f (%lld images), loss %.4f — %s/summary.json\n", r.accuracy,
              static_cast<long long>(r.count), r.loss, o.out_dir.c_str());
  return 0;
}

}  // namespace

int run_train_cifar(TrainOptions o, const std::string& command_line, bool quiet) {
  finalize_options(o);
  set_num_threads(o.threads);
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
  const DataBundle d = load_data(o, true);
  const int64_t num_classes = int64_t(d.classes.size());
  // Every random draw of a run comes from the seed: init from `gen`, dropout from the default
  // generator (saved in checkpoints), shuffling and augmentation from the loader's (seed, epoch).
  manual_seed(o.seed * 2654435761u + 1);
  Generator gen(o.seed);
  models::CreateOptions co;
  co.cifar = true;
  co.input_size = d.height;
  co.width_mult = o.width;
  co.gen = &gen;
  nn::ModulePtr model = models::create(o.model, d.channels, num_classes, co);
  std::unique_ptr<optim::Optimizer> opt = make_optimizer(o, *model);

  std::filesystem::create_directories(o.out_dir);
  const std::string out = o.out_dir + "/";
  CheckpointInfo info{o.model, o.dataset, o.optimizer, o.width, 0, 0.0, nlohmann::json::array()};
  if (!o.resume.empty()) {
    CheckpointInfo saved = load_checkpoint(o.resume, *model, *opt);
    if (saved.model != o.model || saved.dataset != o.dataset || saved.optimizer != o.optimizer)
      fail(o.resume, " was written by a ", saved.model, " run on ", saved.dataset, " with ", saved.optimizer,
           ", not ", o.model, " on ", o.dataset, " with ", o.optimizer);
    if (saved.width != o.width)
      fail(o.resume, " holds a ", saved.model, " of width ", saved.width, " but --width is ", o.width);
    if (saved.epochs_done >= o.epochs)
      fail(o.resume, " already holds ", saved.epochs_done, " epochs; raise --epochs (now ", o.epochs,
           ") to train further");
    info = saved;
  }

  data::DataLoaderOptions lo;
  lo.batch_size = o.batch_size;
  lo.shuffle = true;
  lo.drop_last = d.train->size() > o.batch_size;  // BN dislikes a tiny last batch
  lo.num_workers = o.workers;
  lo.seed = o.seed;
  data::DataLoader loader(d.train, lo);

  std::cerr << "train_cifar: " << o.model << " (" << model->num_parameters() << " parameters) on " << o.dataset
            << ": " << d.train->size() << " training / " << d.test->size() << " test images, " << o.epochs
            << " epochs, batch " << o.batch_size << ", " << o.optimizer << " lr " << o.lr << " (" << o.schedule
            << "), " << get_num_threads() << " threads"
            << (info.epochs_done ? ", resuming after epoch " + std::to_string(info.epochs_done) : "") << "\n";

  EvalResult last;
  bool have_last = false;
  double train_seconds = 0;
  int64_t train_images = 0;
  for (const auto& row : info.history) {
    train_seconds += row.at("seconds").get<double>();
    train_images += int64_t(std::llround(row.at("seconds").get<double>() * row.at("images_per_second").get<double>()));
  }
  int64_t ran = 0;
  for (int64_t epoch = info.epochs_done; epoch < o.epochs; ++epoch) {
    if (o.stop_after_epochs > 0 && ran == o.stop_after_epochs) break;
    const EpochStats st = train_epoch(o, *model, *opt, loader, epoch, quiet);
    last = evaluate(*model, d.test, 256, num_classes, false, o.workers);
    have_last = true;
    train_seconds += st.seconds;
    train_images += st.images;
    info.history.push_back(history_row(epoch + 1, st, last));
    info.epochs_done = epoch + 1;
    ++ran;
    const bool best = last.accuracy > info.best_test_accuracy || epoch == 0;
    if (best) {
      info.best_test_accuracy = last.accuracy;
      save_weights(out + "best.safetensors", *model, o.model, o.dataset, o.width);
    }
    save_checkpoint(out + "checkpoint.safetensors", *model, *opt, info);
    write_metrics_csv(out + "metrics.csv", info.history);
    std::fprintf(stderr, "epoch %lld/%lld: train loss %.4f acc %.2f%%, test loss %.4f acc %.2f%%%s, %.1f s (%.0f img/s)\n",
                 static_cast<long long>(epoch + 1), static_cast<long long>(o.epochs), st.loss, 100 * st.accuracy,
                 last.loss, 100 * last.accuracy, best ? " (best)" : "", st.seconds,
                 st.seconds > 0 ? double(st.images) / st.seconds : 0.0);
  }
  // A resumed run that had nothing left, or stopped early, still reports the current weights.
  const EvalResult r = have_last && o.predictions.empty()
                           ? last
                           : evaluate(*model, d.test, 256, num_classes, !o.predictions.empty(), o.workers);
  save_weights(out + "model.safetensors", *model, o.model, o.dataset, o.width);
  if (!o.predictions.empty()) write_predictions_csv(o.predictions, r);
  nlohmann::json s = base_summary(o, *model, d, r, command_line);
  s["best_test_accuracy"] = std::max(info.best_test_accuracy, r.accuracy);
  s["model_file_bytes"] = file_size_or_zero(out + "model.safetensors");
  s["epochs"] = o.epochs;
  s["epochs_done"] = info.epochs_done;
  s["train_images"] = d.train->size();
  s["train_images_per_second"] = train_seconds > 0 ? double(train_images) / train_seconds : 0.0;
  s["wall_seconds"] = seconds_since(t0);
  s["hyperparameters"] = {{"batch_size", o.batch_size},   {"lr", o.lr},
                          {"optimizer", o.optimizer},     {"momentum", o.momentum},
                          {"weight_decay", o.weight_decay}, {"schedule", o.schedule},
                          {"warmup_epochs", o.warmup_epochs}, {"label_smoothing", o.label_smoothing},
                          {"augment", o.augment},         {"seed", o.seed},
                          {"mean", o.mean},               {"std", o.std}};
  write_json_file(out + "summary.json", s);
  write_report_html(out + "report.html", s, info.history);
  std::printf("test accuracy %.4f (best %.4f) after %lld epochs; report: %sreport.html\n", r.accuracy,
              s["best_test_accuracy"].get<double>(), static_cast<long long>(info.epochs_done), out.c_str());
  return 0;
}

}  // namespace finch::apps
