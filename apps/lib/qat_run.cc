// QAT fine-tuning: prepare the float model, train it with the training library's loop and a
// QAT-phase callback (fake quantization on), convert, report.
#include "apps/lib/qat_run.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "apps/lib/checkpoint.h"
#include "apps/lib/compress_cmd_common.h"
#include "apps/lib/datasets.h"
#include "apps/lib/program_build.h"
#include "apps/lib/prune_cmd.h"
#include "apps/lib/trainer.h"
#include "apps/lib/version.h"
#include "compress/edits.h"
#include "framework/error.h"
#include "framework/grad_mode.h"
#include "framework/parallel.h"
#include "framework/random.h"
#include "framework/results.h"
#include "quant/checkpoint.h"
#include "quant/prepare.h"
#include "quant/save.h"
#include "runtime/executor.h"
#include "runtime/program_file.h"
#include "train/callbacks.h"
#include "train/evaluate.h"
#include "train/report.h"

namespace finch::apps {
namespace {

// The QAT phases as a training-loop callback: BN statistics and observers freeze from their
// epochs on, each epoch's history row records whether BN was frozen, and one line per epoch.
class QatPhases : public train::Callback {
 public:
  QatPhases(quant::QuantizedModel& q, const TrainOptions& o) : q_(q), o_(o) {}
  void on_epoch_begin(train::Context&, int64_t e) override {
    if (e >= o_.freeze_bn_epoch) q_.freeze_bn_stats();
    if (e >= o_.freeze_observer_epoch) q_.freeze_observers();
  }
  void on_epoch_end(train::Context& ctx, const train::EpochEnd& e) override {
    const nlohmann::json& row = ctx.state.history.back();
    // qat_metrics.csv and summary.json's qat.history keep their own columns.
    ctx.state.history.back() = {{"epoch", row["epoch"]},         {"lr", row["lr"]},
                                {"train_loss", row["train_loss"]}, {"train_acc", row["train_acc"]},
                                {"test_acc", row["test_acc"]},     {"seconds", row["seconds"]},
                                {"bn_frozen", q_.bn_frozen()}};
    std::fprintf(stderr, "QAT epoch %lld/%lld: train loss %.4f acc %.2f%%, test acc %.2f%% (int8 simulated), %.1f s\n",
                 static_cast<long long>(e.epoch + 1), static_cast<long long>(o_.qat_epochs), e.train.loss,
                 100 * e.train.accuracy, 100 * e.test.accuracy, e.train.seconds);
  }

 private:
  quant::QuantizedModel& q_;
  const TrainOptions& o_;
};

}  // namespace

int run_qat(const TrainOptions& base, const std::string& command_line, bool quiet) {
  const auto t0 = std::chrono::steady_clock::now();
  // The float run's summary.json in --out is extended; one that is not a JSON object is refused
  // now, before the fine-tuning, not after it.
  nlohmann::json earlier_summary = nlohmann::json::object();
  if (const std::string path = base.out_dir + "/summary.json"; std::filesystem::exists(path)) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    earlier_summary = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
    if (!earlier_summary.is_object())
      fail(path, " exists but is not a JSON object (the summary a training run writes); remove it or choose "
                 "another --out");
  }
  TrainOptions o = base;
  quant::PrepareOptions po;
  po.qconfig = quant::qconfig_preset(o.qconfig);
  po.qconfig.activation_observer = "moving-average";  // QAT: activations drift while training
  set_num_threads(o.threads);
  const DataBundle d = load_data(o, true);
  const int64_t classes = int64_t(d.classes.size());
  manual_seed(o.seed * 2654435761u + 7);
  nn::ModulePtr model = load_trained_model(o, d);
  // An unstructured-pruned file (finch prune) keeps its zeros through QAT: an empty mask set
  // otherwise, whose callback does nothing.
  compress::MaskSet masks = pruned_weights_in(o.checkpoint) ? compress::masks_from_zeros(*model) : compress::MaskSet{};
  MaskCallback keep_zeros(masks);
  const train::EvalResult float_r = train::evaluate(*model, d.test, 256, classes, false, o.workers);
  std::cerr << "train_cifar --qat: " << o.model << " from " << o.checkpoint << " (float test accuracy "
            << float_r.accuracy << "), " << o.qat_epochs << " QAT epochs, " << po.qconfig.str() << "\n";

  // The QAT run is its own short schedule: qat_epochs at qat_lr, cosine, no warm-up.
  TrainOptions qo = o;
  qo.epochs = o.qat_epochs;
  qo.lr = o.qat_lr;
  qo.warmup_epochs = 0;
  qo.stop_after_epochs = 0;
  Generator g(0);
  const Tensor example = d.test->get(0, g).image.to(DType::f32).unsqueeze(0);
  auto q = quant::prepare(*model, example, po, /*qat=*/true);
  std::unique_ptr<optim::Optimizer> opt = train::make_optimizer(optimizer_config(qo), *model);
  data::DataLoaderOptions lo;
  lo.batch_size = o.batch_size;
  lo.drop_last = d.train->size() > o.batch_size;
  lo.num_workers = o.workers;
  lo.seed = o.seed + 1;
  data::DataLoader loader(d.train, lo);
  {
    // QAT starts from calibrated ranges, as PTQ would: a few training batches in eval mode with
    // observers on. (Without it, freezing observers in the first QAT epoch would leave them empty.)
    data::DataLoaderOptions co2 = lo;
    co2.seed = o.seed + 2;
    data::DataLoader calib(d.train, co2);
    calib.start_epoch(0);
    data::Batch b;
    model->eval();
    NoGradGuard ng;
    for (int i = 0; i < 16 && calib.next(b); ++i) model->forward(b.images);
  }
  const std::string out = o.out_dir + "/";
  create_out_dir(o.out_dir);
  const train::ScheduleConfig schedule = schedule_config(qo);
  QatPhases phases(*q, o);
  train::TrainState state;
  train::LoopConfig loop = loop_config(qo, quiet);
  loop.name = "QAT fine-tuning";
  loop.lr_hint = "lower --qat-lr";
  const train::EvalResult r = train::fit(
      *model, *opt, loader, classification_loss(qo.label_smoothing), schedule, loop, state,
      [&](nn::Module& m) {
        // Test images must not move the activation ranges: observers pause while evaluating.
        q->enable_observers(false);
        train::EvalResult e = train::evaluate(m, d.test, 256, classes, false, o.workers);  // the converted arithmetic
        q->enable_observers(true);
        return e;
      },
      {&phases, &keep_zeros});
  const nlohmann::json& history = state.history;
  quant::convert(*q);
  q->enable_observers(false);
  const train::EvalResult conv_r = train::evaluate(*model, d.test, 256, classes, !o.predictions.empty(), o.workers);
  if (!o.predictions.empty()) train::write_predictions_csv(o.predictions, conv_r);
  // A pruned or factorized model's architecture edits travel with it, so that finch verify (and
  // anything else reading this file) rebuilds the smaller layers before loading; likewise the
  // marker that its zeros are masks.
  std::map<std::string, std::string> qat_meta = {
      {"model", o.model}, {"width", nlohmann::json(o.width).dump()}, {"stem", o.stem}, {"dataset", o.dataset}, {"qconfig", po.qconfig.str()}};
  if (const std::string edits = edits_in(o.checkpoint); !edits.empty()) qat_meta[compress::kEditsKey] = edits;
  if (!masks.entries.empty()) qat_meta[kMasksKey] = "zeros";
  quant::save_quantized_model(out + "qat_model.safetensors", *q, qat_meta);
  quant::save_quantized(out + "quantized.safetensors", *q, {{"model", o.model}, {"dataset", o.dataset}});
  if (!o.export_program.empty()) {
    runtime::Graph pg =
        quantized_program(*q, example, program_meta(o, d.channels, d.height, d.width, d.classes), "static", o.qconfig);
    runtime::Program check(pg, o.export_program);
    runtime::write_program(pg, o.export_program);
    print_program_summary(pg, o.export_program);
    std::cerr << "int8 program: " << o.export_program << " (finch verify " << o.export_program << " --checkpoint "
              << out << "qat_model.safetensors)\n";
  }
  train::write_metrics_csv(out + "qat_metrics.csv", history,
                           {"epoch", "lr", "train_loss", "train_acc", "test_acc", "seconds"});
  nlohmann::json s = earlier_summary;
  s["model"] = o.model;
  s["dataset"] = o.dataset;
  s["float_checkpoint"] = o.checkpoint;
  s["float_test_accuracy"] = float_r.accuracy;
  s["qat_test_accuracy"] = r.accuracy;
  s["converted_test_accuracy"] = conv_r.accuracy;
  s["qat"] = {{"qconfig", po.qconfig.str()}, {"epochs", o.qat_epochs}, {"lr", o.qat_lr},
              {"freeze_bn_epoch", o.freeze_bn_epoch}, {"freeze_observer_epoch", o.freeze_observer_epoch},
              {"history", history}, {"plan_points", q->plan.size()}};
  s["float_model_bytes"] = int64_t(std::filesystem::file_size(o.checkpoint));
  s["converted_model_bytes"] = int64_t(std::filesystem::file_size(out + "quantized.safetensors"));
  s["test_accuracy"] = conv_r.accuracy;
  s["qat_wall_seconds"] =
      train::round_significant(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  s["finch_version"] = finch_version();
  s["command_line"] = command_line;
  write_json_file(out + "summary.json", s);
  train::ReportExtras extras;
  extras.lr_curve = train::schedule_curve(schedule, loader.num_batches());
  extras.mistakes = train::confident_mistake_thumbnails(*d.test, conv_r, 12);
  train::write_report_html(out + "report.html", s, history, extras);
  std::printf("float %.4f -> QAT %.4f -> converted int8 %.4f; %squantized.safetensors (%lld bytes)\n",
              float_r.accuracy, r.accuracy, conv_r.accuracy, out.c_str(),
              static_cast<long long>(s["converted_model_bytes"].get<int64_t>()));
  return 0;
}

}  // namespace finch::apps
