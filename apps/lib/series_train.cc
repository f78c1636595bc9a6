// train_series / train_text's training run: spec, model, loop, result files (series_train.h).
#include "apps/lib/series_train.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <limits>
#include <utility>

#include <nlohmann/json.hpp>

#include "apps/lib/checkpoint.h"
#include "apps/lib/distributed.h"
#include "apps/lib/model_selection.h"
#include "apps/lib/trainer.h"
#include "apps/lib/version.h"
#include "models/keras_init.h"
#include "framework/error.h"
#include "framework/parallel.h"
#include "framework/random.h"
#include "framework/results.h"
#include "framework/safetensors.h"
#include "train/callbacks.h"
#include "train/checkpoint.h"
#include "train/evaluate.h"
#include "train/losses.h"
#include "train/report.h"

namespace finch::apps {

nlohmann::json finite_or_null(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

nlohmann::json finite_or_null(const std::vector<double>& v) {
  nlohmann::json a = nlohmann::json::array();
  for (double x : v) a.push_back(finite_or_null(x));
  return a;
}

namespace {

using Clock = std::chrono::steady_clock;

bool is_forecaster(const std::string& m) { return m == "lstm_forecaster"; }

// Fawaz et al. 2019 report the model of the lowest training loss (Keras's ModelCheckpoint on
// 'loss'), not the last epoch's: this keeps those weights as lowest_loss.safetensors. The
// threshold comes from the history, so a resumed run continues where the first left off.
class LowestLossCallback : public train::Callback {
 public:
  LowestLossCallback(std::string path, train::Metadata metadata)
      : path_(std::move(path)), metadata_(std::move(metadata)) {}
  void on_train_begin(train::Context& ctx) override {
    for (const auto& row : ctx.state.history)
      if (row["train_loss"].is_number()) lowest_ = std::min(lowest_, row["train_loss"].get<double>());
  }
  void on_epoch_end(train::Context& ctx, const train::EpochEnd& e) override {
    if (!(e.train.loss < lowest_)) return;
    lowest_ = e.train.loss;
    train::save_weights(path_, ctx.model, metadata_);
  }

 private:
  std::string path_;
  train::Metadata metadata_;
  double lowest_ = std::numeric_limits<double>::infinity();
};

// The epoch (1-based) of the lowest training loss in the history and that loss; epoch 0: none.
std::pair<int64_t, double> lowest_loss_epoch(const nlohmann::json& history) {
  int64_t epoch = 0;
  double lowest = std::numeric_limits<double>::infinity();
  for (const auto& row : history)
    if (row["train_loss"].is_number() && row["train_loss"].get<double>() < lowest) {
      lowest = row["train_loss"].get<double>();
      epoch = row["epoch"].get<int64_t>();
    }
  return {epoch, lowest};
}

// Metadata entries of `spec` and the data that a resumed run must share with its checkpoint.
void check_resume_matches(const std::string& path, const train::Metadata& want) {
  const SafetensorsFile f = load_safetensors(path);
  for (const auto& [key, value] : want) {
    if (key == "finch_version") continue;
    auto it = f.metadata.find(key);
    if (it == f.metadata.end() || it->second != value)
      fail(path, " was written for another model or data: its '", key, "' is ",
           it == f.metadata.end() ? std::string("missing") : "'" + it->second + "'", " but this run has '", value,
           "'");
  }
}

double samples_per_second(const nlohmann::json& history) {
  double seconds = 0, samples = 0;
  for (const auto& row : history) {
    if (row.contains("seconds") && row["seconds"].is_number()) seconds += row["seconds"].get<double>();
    if (row.contains("images") && row["images"].is_number()) samples += row["images"].get<double>();
  }
  return seconds > 0 ? train::round_significant(samples / seconds) : 0.0;
}

}  // namespace

nlohmann::json test_metrics_json(const SequenceData& d, const train::EvalResult& r) {
  nlohmann::json s = {{"task", d.regression ? "regression" : "classification"},
                      {"test_samples", r.count},
                      {"test_loss", finite_or_null(r.loss)},
                      {"test_accuracy", finite_or_null(r.accuracy)}};
  if (d.regression) {
    s["test_mse"] = r.mse;
    s["test_mae"] = r.mae;
    s["test_rmse"] = r.rmse;
    s["test_mse_original"] = finite_or_null(r.mse_original);
    s["test_mae_original"] = finite_or_null(r.mae_original);
    s["test_rmse_original"] = finite_or_null(r.rmse_original);
  } else {
    const train::ClassificationScores cs = train::classification_scores(r.confusion);
    s["classes"] = d.classes;
    s["balanced_accuracy"] = finite_or_null(cs.balanced_accuracy);
    s["macro_precision"] = finite_or_null(cs.macro_precision);
    s["macro_recall"] = finite_or_null(cs.macro_recall);
    s["macro_f1"] = finite_or_null(cs.macro_f1);
    s["cohen_kappa"] = finite_or_null(cs.cohen_kappa);
    s["per_class_accuracy"] = finite_or_null(r.per_class_accuracy());
    s["per_class_precision"] = finite_or_null(cs.precision);
    s["per_class_f1"] = finite_or_null(cs.f1);
    s["confusion_matrix"] = r.confusion;
  }
  return s;
}

namespace {

// The summary.json keys that training and --eval-only share: the model, the data and the
// test metrics (classification scores or regression errors).
nlohmann::json evaluation_summary(const SequenceData& d, const models::SeriesSpec& spec,
                                  const nn::Module& model, const train::EvalResult& r) {
  nlohmann::json s = {{"model", spec.name},
                      {"dataset", d.name},
                      {"parameters", model.num_parameters()},
                      {"architecture", spec.to_metadata()}};
  s.update(test_metrics_json(d, r));
  nlohmann::json data_meta = nlohmann::json::object();
  for (const auto& [k, v] : d.metadata) data_meta[k] = v;
  s["data"] = data_meta;
  s["threads"] = get_num_threads();
  s["finch_version"] = finch_version();
  return s;
}

void print_result(const train::EvalResult& r, const nlohmann::json& s, const std::string& tail) {
  if (r.regression)
    std::printf("test MSE %.5g RMSE %.5g MAE %.5g%s\n", r.mse, r.rmse, r.mae, tail.c_str());
  else
    std::printf("test accuracy %.4f, macro F1 %.4f, balanced accuracy %.4f%s\n", r.accuracy,
                s["macro_f1"].is_number() ? s["macro_f1"].get<double>() : NAN,
                s["balanced_accuracy"].is_number() ? s["balanced_accuracy"].get<double>() : NAN, tail.c_str());
}

}  // namespace

models::SeriesSpec sequence_spec(const SeriesOptions& o, const SequenceData& d) {
  const bool text_model = models::is_text_model(o.model);
  if (text_model && !d.tokens) fail("--model ", o.model, " reads token ids; train it with train_text --data DIR");
  if (!text_model && d.tokens) fail("--model ", o.model, " reads series, not text; use imdb_lstm or imdb_bilstm");
  if (is_forecaster(o.model) && !d.regression)
    fail("--model lstm_forecaster predicts values; ", o.train_file, " holds class labels (use a classifier such as fcn)");
  if (d.regression && d.horizon > 0 && !is_forecaster(o.model))
    fail("--model ", o.model, " is a classifier; forecasting a CSV series needs --model lstm_forecaster");
  models::SeriesSpec s;
  s.name = o.model;
  s.in_channels = d.channels;
  const int64_t k = int64_t(d.classes.size());
  // Seed 002's IMDB models end in Dense(1): one logit for two classes.
  s.num_classes = d.regression ? 1 : (text_model && k == 2 ? 1 : k);
  if (o.model == "ecg_cnn") {
    if (d.min_length != d.max_length)
      fail("--model ecg_cnn needs series of one length (its flatten fixes it); ", o.train_file, " has lengths ",
           d.min_length, " to ", d.max_length);
    s.seq_len = d.max_length;
  }
  s.vocab_size = d.vocab_size;
  s.hidden_size = o.hidden_size;
  s.proj_size = o.proj_size;
  s.num_layers = o.num_layers;
  s.width = o.model_width;
  s.dropout = o.dropout;
  if (is_forecaster(o.model)) {
    s.horizon = d.horizon > 0 ? d.horizon : 1;
    s.num_targets = d.num_targets > 0 ? d.num_targets : 1;
  }
  return models::resolve_series(s);
}

int run_sequence_training(const std::string& program, SeriesOptions o, const SequenceData& d,
                          const std::string& command_line, bool quiet) {
  const auto t0 = Clock::now();
  const models::SeriesSpec spec = sequence_spec(o, d);
  if (o.batch_size == 0) o.batch_size = default_sequence_batch(o.model, d.train->size());
  o.dataset = d.name;  // what apps/lib/checkpoint.h's --resume check compares
  const int64_t num_classes = int64_t(d.classes.size());
  manual_seed(o.seed * 2654435761u + 1);
  Generator gen(o.seed);
  nn::ModulePtr model = models::create_series(spec, &gen);
  if (o.init.empty()) o.init = default_sequence_init(o.model);
  models::apply_init(*model, o.init, &gen);
  std::unique_ptr<optim::Optimizer> opt = train::make_optimizer(optimizer_config(o), *model);

  train::Metadata weights_meta = spec.to_metadata();
  for (const auto& [k, v] : d.metadata) weights_meta[k] = v;
  weights_meta["dataset"] = d.name;
  weights_meta["finch_version"] = finch_version();
  train::Metadata tags = weights_meta;
  tags["optimizer"] = o.optimizer;
  tags["init"] = o.init;
  tags["width"] = checkpoint_tags(o).at("width");

  // Under mpirun -np N: every rank trains on its shard; rank 0 alone writes files.
  Fingerprint fp = train_options_fingerprint(o);
  for (const auto& [k, v] : spec.to_metadata()) fp.push_back({"model spec " + k, v});
  fp.push_back({"--window/--horizon/--max-len", std::to_string(o.window) + "/" + std::to_string(o.horizon) + "/" +
                                                    std::to_string(o.max_len)});
  if (o.keep.empty()) o.keep = d.val ? "best" : "last";
  if (!d.val && (o.keep == "best" || o.patience > 0))
    fail(o.keep == "best" ? "--keep best" : "--patience", " needs validation data, but this run holds out none");
  const std::unique_ptr<train::DataParallel> dp = start_data_parallel(*model, *d.train, fp, o);
  const int ranks = dp ? dp->size() : 1;
  const bool root = !dp || dp->rank() == 0;
  if (root) create_out_dir(o.out_dir);
  const std::string out = o.out_dir + "/";
  train::TrainState state;
  if (!o.resume.empty()) {  // every rank reads it
    check_resume_matches(o.resume, weights_meta);
    state = resume_checkpoint(o, *model, *opt);
  }
  const size_t first_row = state.history.size();

  data::DataLoaderOptions lo;
  lo.batch_size = o.batch_size;
  lo.shuffle = true;
  // BatchNorm cannot normalize a last batch of one sample; drop only that one.
  const int64_t shard_size = d.train->size() / ranks;
  lo.drop_last = shard_size > o.batch_size && shard_size % o.batch_size == 1;
  lo.num_workers = o.workers;
  lo.seed = o.seed;
  lo.num_shards = ranks;
  lo.shard_rank = dp ? dp->rank() : 0;
  data::DataLoader loader(d.train, lo);

  if (root)
    std::cerr << program << ": " << o.model << " (" << model->num_parameters() << " parameters) on " << d.name << ": "
            << d.train->size() << " training / "
            << (d.val ? std::to_string(d.val->size()) + " validation (" + d.val_source + ") / " : "")
            << d.test->size() << " test " << (d.tokens ? "reviews" : "series") << ", " << o.epochs << " epochs, batch " << o.batch_size << ", "
            << o.optimizer << " lr " << o.lr << " (" << o.schedule << "), " << get_num_threads() << " threads"
            << (state.epochs_done ? ", resuming after epoch " + std::to_string(state.epochs_done) : "")
            << (dp ? ", " + std::to_string(ranks) + " processes, effective batch " + std::to_string(o.batch_size * ranks)
                   : "")
            << "\n";

  train::EvalConfig ec;
  ec.batch_size = 256;
  ec.num_classes = d.regression ? 0 : num_classes;
  ec.workers = o.workers;
  ec.target_std = d.target_std;
  const train::LossFn loss = d.regression ? train::regression_loss() : train::classification_loss(o.label_smoothing);
  train::ScheduleConfig schedule = schedule_config(o);
  train::CheckpointCallback checkpoints(o.out_dir, tags, weights_meta);
  train::MetricsCsvCallback metrics(out + "metrics.csv", metrics_columns(d.val != nullptr));
  SelectionLogCallback log;
  LowestLossCallback lowest(out + "lowest_loss.safetensors", weights_meta);
  train::LoopConfig lc = loop_config(o, quiet || !root);
  lc.parallel = dp.get();
  // The best epoch is chosen on the validation part of the training data, never the test set
  // (apps/lib/model_selection.h); best.safetensors is that epoch's weights.
  const SelectionConfig sc{d.regression, o.patience};
  if (root) prepare_best_file(o.out_dir, o.resume, state.history, sc);
  train::Evaluator validate;
  if (d.val) validate = [&](nn::Module& m) { return train::evaluate(m, d.val, ec); };
  ValidationSelection selection(validate, sc,
                                root ? std::vector<train::Callback*>{&checkpoints, &metrics, &lowest, &log}
                                     : std::vector<train::Callback*>{});
  // Every rank evaluates (the same weights, test and validation sets), so their state and their
  // early-stopping decision stay identical.
  const train::EvalResult last = train::fit(
      *model, *opt, loader, loss, schedule, lc, state, [&](nn::Module& m) { return train::evaluate(m, d.test, ec); },
      {&selection});
  if (!root) return 0;
  // model.safetensors: the best validation epoch's weights with --keep best (the default when
  // there is validation data), else the last epoch's.
  const int64_t kept = kept_epoch(state.history, sc, o.keep);
  if (kept > 0) train::load_weights(out + "best.safetensors", *model);
  train::EvalConfig final_ec = ec;
  final_ec.keep_logits = !o.predictions.empty() && !d.regression;
  const train::EvalResult r =
      last.count > 0 && !final_ec.keep_logits && kept == 0 ? last : train::evaluate(*model, d.test, final_ec);
  train::save_weights(out + "model.safetensors", *model, weights_meta);
  if (final_ec.keep_logits) train::write_predictions_csv(o.predictions, r);

  nlohmann::json s = evaluation_summary(d, spec, *model, r);
  const SelectionReport sr = selection_report(d, o, selection, state.epochs_done, d.regression);
  s.update(selection_summary(state.history, sr));
  s["model_file_bytes"] = int64_t(std::filesystem::file_size(out + "model.safetensors"));
  s["epochs"] = o.epochs;
  s["epochs_done"] = state.epochs_done;
  s["train_samples"] = d.train->size();
  s["train_samples_per_second"] = samples_per_second(state.history);
  s["distributed"] = distributed_summary(dp.get(), o.batch_size, o.lr, state.history, first_row);
  s["distributed"]["bucket_mb"] = o.bucket_mb;
  s["wall_seconds"] = train::round_significant(std::chrono::duration<double>(Clock::now() - t0).count());
  s["command_line"] = command_line;
  if (const auto [epoch, train_loss] = lowest_loss_epoch(state.history);
      epoch > 0 && std::filesystem::exists(out + "lowest_loss.safetensors")) {
    nn::ModulePtr kept = models::create_series(spec, nullptr);
    train::load_weights(out + "lowest_loss.safetensors", *kept);
    const train::EvalResult k = train::evaluate(*kept, d.test, ec);
    nlohmann::json low = {{"epoch", epoch}, {"train_loss", train_loss}, {"test_loss", finite_or_null(k.loss)}};
    if (d.regression) {
      low["test_mse"] = k.mse;
      low["test_rmse_original"] = finite_or_null(k.rmse_original);
    } else {
      low["test_accuracy"] = k.accuracy;
      low["macro_f1"] = finite_or_null(train::classification_scores(k.confusion).macro_f1);
    }
    s["lowest_train_loss"] = low;
  }
  s["hyperparameters"] = {{"batch_size", o.batch_size}, {"lr", o.lr},         {"optimizer", o.optimizer},
                          {"weight_decay", o.weight_decay}, {"schedule", o.schedule}, {"seed", o.seed},
                          {"label_smoothing", o.label_smoothing}};
  write_json_file(out + "summary.json", s);
  train::ReportExtras extras;  // the lr curve comes from the history (the plateau schedule's real LRs)
  if (o.schedule != "plateau") extras.lr_curve = train::schedule_curve(schedule, loader.num_batches());
  train::write_report_html(out + "report.html", s, state.history, extras);
  const std::string which = kept > 0 ? "the best validation epoch " + std::to_string(kept) + " of " +
                                           std::to_string(state.epochs_done)
                                     : "the last of " + std::to_string(state.epochs_done) + " epochs";
  print_result(r, s, " (model.safetensors: " + which + (sr.stopped_early ? ", stopped early" : "") +
                         "); report: " + out + "report.html");
  return 0;
}

models::SeriesSpec checkpoint_spec(const SafetensorsFile& f, const SeriesOptions& o, const SequenceData& d) {
  const models::SeriesSpec spec = models::SeriesSpec::from_metadata(f.metadata, o.checkpoint);
  if (o.model_given && o.model != spec.name) fail(o.checkpoint, " holds a ", spec.name, " but --model is ", o.model);
  // The data must be prepared as it was for training: same format, normalization (and its
  // statistics), classes, vocabulary and lengths.
  for (const auto& [key, value] : d.metadata) {
    auto it = f.metadata.find(key);
    if (it != f.metadata.end() && it->second != value)
      fail(o.checkpoint, " was trained on data prepared otherwise: its '", key, "' is '", it->second,
           "' but this data gives '", value, "'");
  }
  return spec;
}

int run_sequence_eval(const std::string& program, SeriesOptions o, const SequenceData& d,
                      const std::string& command_line) {
  if (dist::launcher_world_size() > 1)
    fail("--eval-only runs in one process, but mpirun started ", dist::launcher_world_size(), "; run it without mpirun");
  const auto t0 = Clock::now();
  const SafetensorsFile f = load_safetensors(o.checkpoint);
  const models::SeriesSpec spec = checkpoint_spec(f, o, d);
  nn::ModulePtr model = models::create_series(spec, nullptr);
  load_weights(o.checkpoint, *model);  // its compress_edits first (a pruned model)
  train::EvalConfig ec;
  ec.num_classes = d.regression ? 0 : int64_t(d.classes.size());
  ec.workers = o.workers;
  ec.target_std = d.target_std;
  ec.keep_logits = !o.predictions.empty() && !d.regression;
  if (!d.regression && spec.num_classes != ec.num_classes && !(spec.num_classes == 1 && ec.num_classes == 2))
    fail(o.checkpoint, " holds a model with ", spec.num_classes, " outputs but the data has ", ec.num_classes,
         " classes");
  const train::EvalResult r = train::evaluate(*model, d.test, ec);
  create_out_dir(o.out_dir);
  nlohmann::json s = evaluation_summary(d, spec, *model, r);
  s["checkpoint"] = o.checkpoint;
  s["model_file_bytes"] = int64_t(std::filesystem::file_size(o.checkpoint));
  s["command_line"] = command_line;
  s["wall_seconds"] = train::round_significant(std::chrono::duration<double>(Clock::now() - t0).count());
  write_json_file(o.out_dir + "/summary.json", s);
  train::write_report_html(o.out_dir + "/report.html", s, nlohmann::json::array());
  if (ec.keep_logits) train::write_predictions_csv(o.predictions, r);
  std::cerr << program << ": evaluated " << o.checkpoint << " (" << spec.name << ") on " << d.test->size()
            << " test samples\n";
  print_result(r, s, " — " + o.out_dir + "/summary.json");
  return 0;
}

}  // namespace finch::apps
