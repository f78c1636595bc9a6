// train_series / train_text --qat (series_qat.h): fp32 and PTQ baselines, QAT fine-tuning of the
// LSTM layers, the int8 program, and the simulated == deployed check over the whole test set.
#include "apps/lib/series_qat.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include <nlohmann/json.hpp>

#include "apps/lib/checkpoint.h"
#include "apps/lib/sequence_program.h"
#include "apps/lib/series_train.h"
#include "apps/lib/trainer.h"
#include "apps/lib/version.h"
#include "autograd/nn/sequence.h"
#include "compile/capture.h"
#include "compile/dynamic_rnn.h"
#include "compile/passes.h"
#include "compile/static_rnn.h"
#include "framework/error.h"
#include "framework/grad_mode.h"
#include "framework/parallel.h"
#include "framework/random.h"
#include "framework/results.h"
#include "framework/safetensors.h"
#include "models/series_spec.h"
#include "quant/qat_rnn.h"
#include "runtime/executor.h"
#include "runtime/program_file.h"
#include "train/callbacks.h"
#include "train/checkpoint.h"
#include "train/evaluate.h"
#include "train/losses.h"
#include "train/report.h"

namespace finch::apps {
namespace {

// Observers pause while evaluating (test data must not move the ranges) and freeze from
// --freeze-observer-epoch on.
class QatPhases : public train::Callback {
 public:
  QatPhases(const std::vector<std::unique_ptr<quant::QatLstm>>& q, const std::vector<std::unique_ptr<quant::QatGru>>& g,
            int64_t freeze)
      : q_(q), g_(g), freeze_(freeze) {}
  void on_epoch_begin(train::Context&, int64_t e) override { frozen_ = e >= freeze_, set(!frozen_); }
  void on_epoch_end(train::Context& ctx, const train::EpochEnd& e) override {
    ctx.state.history.back()["observers_frozen"] = frozen_;
    std::fprintf(stderr, "QAT epoch %lld: train loss %.4f, test %s %.4f (the int8 program's arithmetic)\n",
                 static_cast<long long>(e.epoch + 1), e.train.loss, e.test.regression ? "MSE" : "accuracy",
                 e.test.regression ? e.test.mse : e.test.accuracy);
  }
  void set(bool on) const {
    for (const auto& q : q_) q->enable_observers(on);
    for (const auto& q : g_) q->enable_observers(on);
  }
  bool frozen() const { return frozen_; }

 private:
  const std::vector<std::unique_ptr<quant::QatLstm>>& q_;
  const std::vector<std::unique_ptr<quant::QatGru>>& g_;
  int64_t freeze_;
  bool frozen_ = false;
};

double score(const train::EvalResult& r) { return r.regression ? r.mse : r.accuracy; }

}  // namespace

int run_sequence_qat(const std::string& program, const SeriesOptions& o, const SequenceData& d,
                     const std::string& command_line, bool quiet) {
  const auto t0 = std::chrono::steady_clock::now();
  const SafetensorsFile f = load_safetensors(o.checkpoint);
  const models::SeriesSpec spec = checkpoint_spec(f, o, d);
  manual_seed(o.seed * 2654435761u + 7);
  nn::ModulePtr model = models::create_series(spec, nullptr);
  load_weights(o.checkpoint, *model);  // its compress_edits first (a pruned model)
  train::EvalConfig ec;
  ec.batch_size = 256;
  ec.num_classes = d.regression ? 0 : int64_t(d.classes.size());
  ec.workers = o.workers;
  ec.target_std = d.target_std;
  const train::EvalResult fp32 = train::evaluate(*model, d.test, ec);
  create_out_dir(o.out_dir);
  const std::string out = o.out_dir + "/";

  data::DataLoaderOptions lo;
  lo.batch_size = o.batch_size > 0 ? o.batch_size : default_sequence_batch(spec.name, d.train->size());
  lo.shuffle = true;
  lo.drop_last = d.train->size() > lo.batch_size && d.train->size() % lo.batch_size == 1;
  lo.num_workers = o.workers;
  lo.seed = o.seed + 1;
  // Calibration: 16 training batches, the same ones for PTQ and for QAT's starting ranges.
  std::vector<data::Batch> calib;
  {
    data::DataLoaderOptions co = lo;
    co.seed = o.seed + 2;
    data::DataLoader cl(d.train, co);
    cl.start_epoch(0);
    data::Batch b;
    while (calib.size() < 16 && cl.next(b)) calib.push_back(b);
  }
  if (calib.empty()) fail(program, ": --qat needs at least one training batch");

  // PTQ: the float program, its LSTMs calibrated on those batches.
  const int64_t steps = longest_sequence(d);
  runtime::Graph ptq_g = sequence_float_graph(*model, calib[0], steps);
  std::vector<std::vector<Tensor>> calib_inputs;
  for (const data::Batch& b : calib) {
    const auto [x, len] = padded_to(b.images, b.lengths, steps);
    calib_inputs.push_back({x, len});
  }
  const int ptq_layers =
      compile::quantize_static_lstm(ptq_g, calib_inputs) + compile::quantize_static_gru(ptq_g, calib_inputs);
  compile::quantize_embeddings(ptq_g);
  runtime::Program ptq_p(ptq_g, "PTQ program");
  const train::EvalResult ptq = train::evaluate(program_forward(ptq_p, steps), d.test, ec);
  std::cerr << program << " --qat: " << spec.name << " from " << o.checkpoint << ": fp32 " << score(fp32)
            << ", PTQ int8 program " << score(ptq) << " (" << ptq_layers << " int8 recurrent layers); " << o.qat_epochs
            << " QAT epochs at lr " << o.qat_lr << "\n";

  // QAT: ranges from the calibration batches, then fine-tuning with the integer forward.
  std::vector<std::unique_ptr<quant::QatLstm>> qat = quant::prepare_qat_lstm(*model);
  std::vector<std::unique_ptr<quant::QatGru>> qgru = quant::prepare_qat_gru(*model);
  if (qat.empty() && qgru.empty())
    fail(program, ": --qat simulates LSTM and GRU layers, and ", spec.name, " has none (quantize conv models with finch quantize)");
  const quant::QatEmbeddings embeddings(*model);
  {
    model->eval();
    NoGradGuard ng;
    auto& la = dynamic_cast<nn::LengthAware&>(*model);
    for (const data::Batch& b : calib) la.forward_with_lengths(b.images, b.lengths);
  }
  SeriesOptions qo = o;
  qo.epochs = o.qat_epochs;
  qo.lr = o.qat_lr;
  qo.schedule = "cosine";
  qo.warmup_epochs = 0;
  qo.stop_after_epochs = 0;
  std::unique_ptr<optim::Optimizer> opt = train::make_optimizer(optimizer_config(qo), *model);
  data::DataLoader loader(d.train, lo);
  const train::ScheduleConfig schedule = schedule_config(qo);
  QatPhases phases(qat, qgru, o.freeze_observer_epoch);
  train::TrainState state;
  train::LoopConfig loop = loop_config(qo, quiet);
  loop.name = "QAT fine-tuning";
  loop.lr_hint = "lower --qat-lr";
  const train::LossFn loss = d.regression ? train::regression_loss() : train::classification_loss(o.label_smoothing);
  train::fit(
      *model, *opt, loader, loss, schedule, loop, state,
      [&](nn::Module& m) {
        phases.set(false);
        train::EvalResult e = train::evaluate(m, d.test, ec);
        phases.set(!phases.frozen());
        return e;
      },
      {&phases});
  phases.set(false);

  // Convert: the QAT ranges into the program; the simulated model and the program, logit for logit.
  train::EvalConfig kc = ec;
  kc.keep_logits = !d.regression;
  const train::EvalResult sim = train::evaluate(*model, d.test, kc);
  runtime::Graph g = sequence_float_graph(*model, calib[0], steps);
  const int qat_layers = quant::lower_qat_lstm(g, qat) + quant::lower_qat_gru(g, qgru);
  if (compile::quantize_embeddings(g) != embeddings.count())
    fail(program, ": not every QAT embedding became qembedding in the program");
  const std::string path = o.export_program.empty() ? out + "model_int8.finch" : o.export_program;
  runtime::write_program(g, path);
  runtime::Program p(runtime::read_program(path), path);
  const train::EvalResult deployed = train::evaluate(program_forward(p, steps), d.test, kc);
  int64_t differing = 0;
  double max_diff = 0;
  for (size_t i = 0; i < sim.logits.size() && i < deployed.logits.size(); ++i)
    for (size_t k = 0; k < sim.logits[i].size() && k < deployed.logits[i].size(); ++k) {
      const double diff = std::fabs(double(sim.logits[i][k]) - deployed.logits[i][k]);
      differing += diff != 0, max_diff = std::max(max_diff, diff);
    }
  const bool equal = sim.logits.size() == deployed.logits.size() && differing == 0 && score(sim) == score(deployed);

  train::Metadata meta(f.metadata.begin(), f.metadata.end());
  meta["finch_version"] = finch_version();
  train::save_weights(out + "qat_model.safetensors", *model, meta);
  train::write_metrics_csv(out + "qat_metrics.csv", state.history,
                           {"epoch", "lr", "train_loss", "train_acc", "test_acc", "seconds"});
  const char* metric = d.regression ? "test_mse" : "test_accuracy";
  nlohmann::json s = {{"model", spec.name},
                      {"dataset", d.name},
                      {"float_checkpoint", o.checkpoint},
                      {"metric", metric},
                      {"fp32", score(fp32)},
                      {"ptq_int8_program", score(ptq)},
                      {"qat_simulated", score(sim)},
                      {"qat_int8_program", score(deployed)},
                      {"int8_recurrent_layers", qat_layers},
                      {"simulated_equals_deployed", equal},
                      {"differing_logits", differing},
                      {"max_abs_logit_difference", max_diff},
                      {"test_samples", deployed.count},
                      {"program", path},
                      {"program_bytes", int64_t(std::filesystem::file_size(path))},
                      {"float_model_bytes", int64_t(std::filesystem::file_size(o.checkpoint))},
                      {"qat", {{"epochs", o.qat_epochs}, {"lr", o.qat_lr}, {"optimizer", o.optimizer},
                               {"freeze_observer_epoch", o.freeze_observer_epoch}, {"history", state.history}}},
                      {"threads", get_num_threads()},
                      {"wall_seconds", train::round_significant(
                                           std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count())},
                      {"finch_version", finch_version()},
                      {"command_line", command_line}};
  write_json_file(out + "qat_summary.json", s);
  std::printf("%s: fp32 %.4f, PTQ int8 program %.4f, QAT int8 program %.4f (simulated %.4f; %s); %s (%lld bytes)\n",
              metric, score(fp32), score(ptq), score(deployed), score(sim),
              equal ? "simulated == deployed on every test logit" : "SIMULATED != DEPLOYED", path.c_str(),
              static_cast<long long>(s["program_bytes"].get<int64_t>()));
  if (!equal)
    fail(program, ": the QAT model and its int8 program disagree on ", differing, " test logits (max difference ",
         max_diff, "); this is a bug, please report it with ", out, "qat_summary.json");
  return 0;
}

}  // namespace finch::apps
