// `finch quantize`: fp32 baseline, prepare → calibrate → convert, side-by-side table and files.
#include "apps/lib/quantize_run.h"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <functional>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "apps/lib/checkpoint.h"
#include "apps/lib/datasets.h"
#include "apps/lib/program_build.h"
#include "apps/lib/version.h"
#include "autograd/functional.h"
#include "data/dataloader.h"
#include "framework/error.h"
#include "framework/grad_mode.h"
#include "framework/parallel.h"
#include "framework/results.h"
#include "framework/safetensors.h"
#include "models/factory.h"
#include "quant/observer.h"
#include "quant/prepare.h"
#include "runtime/executor.h"
#include "runtime/program_file.h"
#include "train/evaluate.h"
#include "train/report.h"
#include "quant/save.h"

namespace finch::apps {

// Evaluation and the report come from the training library (train/).
using train::batch1_latency_ms;
using train::EvalResult;
using train::evaluate;
using train::write_predictions_csv;
using train::write_report_html;

namespace {

using Clock = std::chrono::steady_clock;

int64_t file_size(const std::string& path) { return int64_t(std::filesystem::file_size(path)); }

struct Variant {
  std::string name;
  int64_t size_bytes = 0;
  double accuracy = 0, latency_ms = 0;
};

std::string signed_pp(double now, double base) {
  char b[32];
  std::snprintf(b, sizeof b, "%+.2f", 100.0 * (now - base));
  return b;
}

std::string pct(double now, double base) {
  if (!(base > 0)) return "n/a";  // nothing timed (--latency-images 0) or an empty file
  char b[32];
  std::snprintf(b, sizeof b, "%+.1f%%", 100.0 * (now - base) / base);
  return b;
}

void print_table(const std::vector<Variant>& v) {
  std::printf("\n%-10s %10s %8s %9s %9s %10s %8s\n", "variant", "size KB", "size Δ", "accuracy", "acc Δ pp",
              "ms/image", "time Δ");
  const Variant& b = v.front();
  for (const Variant& x : v) {
    const bool base = &x == &v.front();
    std::printf("%-10s %10.1f %8s %8.2f%% %9s %10.3f %8s\n", x.name.c_str(), double(x.size_bytes) / 1024.0,
                base ? "—" : pct(double(x.size_bytes), double(b.size_bytes)).c_str(), 100 * x.accuracy,
                base ? "—" : signed_pp(x.accuracy, b.accuracy).c_str(), x.latency_ms,
                base ? "—" : pct(x.latency_ms, b.latency_ms).c_str());
  }
}

// The debugger: error statistics of every fake-quant over the calibration batches.
nlohmann::json debug_report(quant::QuantizedModel& q, const std::function<void()>& run_batches,
                            const std::string& csv_path) {
  for (auto& [name, fq] : q.fake_quants()) {
    fq->reset_errors();
    fq->collect_errors(true);
  }
  run_batches();
  nlohmann::json rows = nlohmann::json::array();
  CsvWriter csv({"name", "scale", "zero_point", "mean_error", "mean_abs_error", "max_abs_error", "mse",
                 "rmse_over_scale", "flagged"});
  std::printf("\nquantization debugger (fake_quant(x) - x on the calibration data; rmse/scale 0.289 = rounding only)\n");
  std::printf("%-48s %10s %5s %10s %10s %10s %8s\n", "fake-quant", "scale", "zp", "mean|err|", "max|err|", "mse",
              "rmse/s");
  for (auto& [name, fq] : q.fake_quants()) {
    fq->collect_errors(false);
    const auto& e = fq->errors();
    if (e.count == 0 || !fq->ready()) continue;
    const quant::QParams p = fq->qparams();
    double scale = 0;
    for (float s : p.scale) scale += s;
    scale /= double(p.scale.size());  // per-channel: the mean scale
    const double ratio = std::sqrt(e.mse()) / scale;
    const bool flag = ratio > 0.7;
    std::printf("%-48s %10.4g %5d %10.4g %10.4g %10.4g %8.3f%s\n", name.c_str(), scale, p.zero_point[0],
                e.mean_abs(), e.max_abs, e.mse(), ratio, flag ? "  <-- above 0.7" : "");
    rows.push_back({{"name", name}, {"scale", scale}, {"zero_point", p.zero_point[0]}, {"mean_error", e.mean()},
                    {"mean_abs_error", e.mean_abs()}, {"max_abs_error", e.max_abs}, {"mse", e.mse()},
                    {"rmse_over_scale", ratio}, {"flagged", flag}});
    csv.add_row({name, scale, int64_t(p.zero_point[0]), e.mean(), e.mean_abs(), e.max_abs, e.mse(), ratio,
                 int64_t(flag)});
  }
  csv.save(csv_path);
  std::printf("debugger table: %s\n", csv_path.c_str());
  return rows;
}

}  // namespace

void add_quantize_options(CLI::App& app, QuantizeOptions& o) {
  app.add_option("--model", o.data.model, "network (default: the one the checkpoint names)")
      ->check(CLI::IsMember(models::model_names()));
  app.add_option("--checkpoint", o.data.checkpoint, "trained fp32 weights (model.safetensors or a checkpoint)")
      ->required();
  app.add_option("--width", o.data.width, "MobileNet width multiplier (default: the checkpoint's)");
  app.add_option("--dataset", o.data.dataset, "cifar10, cifar100, fashion-mnist or folder")
      ->check(CLI::IsMember({"cifar10", "cifar100", "fashion-mnist", "folder"}))
      ->capture_default_str();
  app.add_option("--data", o.data.data_dir, "dataset folder (default for fashion-mnist: /usr/share/datasets/fashion-mnist)");
  app.add_option("--mode", o.mode, "static (calibrated int8 activations), dynamic (Linear only, activations "
                                   "quantized per batch) or fp16 (fp16 weights)")
      ->check(CLI::IsMember({"static", "dynamic", "fp16"}))
      ->capture_default_str();
  app.add_option("--qconfig", o.qconfig, "int8, int8-per-tensor, uint8-io, int8-weights-only, fp16, int4-weights "
                                         "(default: int8; fp16 for --mode fp16)");
  app.add_option("--observer", o.observer, "activation observer: minmax, moving-average, histogram-mse, percentile, entropy")
      ->capture_default_str();
  app.add_option("--calib-batches", o.calib_batches, "training batches used for calibration")
      ->check(positive_number())
      ->capture_default_str();
  app.add_option("--batch-size", o.batch_size, "batch size for calibration and evaluation")
      ->check(positive_number())
      ->capture_default_str();
  app.add_option("--rnn-rounding", o.rnn_rounding,
                 "series/text static int8: round the LSTMs' int8 weights to nearest, or by their output error on "
                 "the calibration steps (docs/quantization.md, \"Calibration\")")
      ->check(CLI::IsMember({"output-error", "nearest"}))
      ->capture_default_str();
  app.add_flag("!--no-fuse", o.fuse, "do not fold BatchNorm into convolutions nor fuse activations");
  app.add_option("--skip", o.skip, "module paths kept in float (e.g. layer3 fc)");
  app.add_option("--out", o.out, "the converted model: FILE.finch for the integer program (plus FILE.finch.sim.safetensors for finch verify), else safetensors with integer weights")->required();
  app.add_option("--report", o.report, "JSON report: {\"variants\": [{name, size_bytes, accuracy, latency_ms}, ...]}");
  app.add_option("--html", o.html, "the report as a self-contained HTML page (with --debug: the debugger table)");
  app.add_flag("--debug", o.debug, "print the quantization debugger table and write it as CSV beside --out");
  app.add_option("--latency-images", o.latency_images, "test images timed one at a time")
      ->check(non_negative_number())
      ->capture_default_str();
  app.add_option("--mean", o.data.mean, "per-channel normalization mean (default: the dataset's)")->expected(1, 3);
  app.add_option("--std", o.data.std, "per-channel normalization std (default: the dataset's)")->expected(1, 3);
  app.add_option("--predictions", o.data.predictions, "CSV of the quantized model's per-image predictions");
  app.add_option("--limit-test", o.data.limit_test, "use only the first N test images (0, the default: all)")
      ->check(non_negative_number());
  app.add_option("--image-size", o.data.image_size,
                 "--dataset folder: resize photos to this size (default: the size the checkpoint was trained at, else 32)")
      ->check(CLI::Range(8, 1024))
      ->each([&o](const std::string&) { o.data.image_size_given = true; });
  app.add_option("--limit-train", o.data.limit_train, "calibrate from the first N training images only (0, the default: all)")
      ->check(non_negative_number());
  app.add_option("--threads", o.data.threads, "compute threads (0: all cores)")
      ->check(non_negative_number());
}

void finalize_quantize_options(QuantizeOptions& o) {
  o.data.augment = false;  // calibration sees the images as they are
  finalize_data_options(o.data);
  if (o.qconfig.empty()) o.qconfig = o.mode == "fp16" ? "fp16" : "int8";
  const auto names = quant::observer_names();
  if (std::find(names.begin(), names.end(), o.observer) == names.end()) {
    std::string valid;
    for (const auto& n : names) valid += (valid.empty() ? "" : ", ") + n;
    fail("unknown --observer '", o.observer, "'; expected one of: ", valid);
  }
  quant::qconfig_preset(o.qconfig);  // fails on an unknown name
  if (o.mode == "fp16" && o.qconfig != "fp16") fail("--mode fp16 needs --qconfig fp16, got ", o.qconfig);
}

int run_quantize(const QuantizeOptions& opt, const std::string& command_line) {
  QuantizeOptions o = opt;
  if (o.data.threads > 0) set_num_threads(o.data.threads);
  adopt_model_of(o.data.checkpoint, o.data, o.data.model_given, o.data.width_given);
  check_width(o.data.model, o.data.width);
  const DataBundle d = load_data(o.data, /*need_train=*/o.mode == "static");
  const int64_t classes = int64_t(d.classes.size());
  nn::ModulePtr model = models::create(o.data.model, d.channels, classes, zoo_options(o.data, d.height));
  load_weights(o.data.checkpoint, *model);
  model->eval();

  std::vector<Variant> variants;
  std::printf("fp32: evaluating %lld test images ...\n", static_cast<long long>(d.test->size()));
  const EvalResult r0 = evaluate(*model, d.test, o.batch_size, classes);
  const std::string tmp = o.out + ".fp32.tmp";
  {
    NamedTensors t;
    for (const auto& [name, v] : model->state_dict()) t.emplace_back(name, v);
    save_safetensors(tmp, t);
  }
  variants.push_back({"fp32", file_size(tmp), r0.accuracy, batch1_latency_ms(*model, *d.test, o.latency_images)});
  std::filesystem::remove(tmp);

  quant::PrepareOptions po;
  po.qconfig = quant::qconfig_preset(o.qconfig);
  po.qconfig.activation_observer = o.observer;
  po.fuse = o.fuse;
  po.skip = o.skip;
  po.dynamic = o.mode == "dynamic";
  Generator g(0);
  const Tensor example = d.test->get(0, g).image.to(DType::f32).unsqueeze(0);
  auto q = quant::prepare(*model, example, po, /*qat=*/false);
  std::printf("%s: %zu quantization points (%s)\n", o.mode.c_str(), q->plan.size(), po.qconfig.str().c_str());

  // Calibration: training images in a seeded order, no augmentation, eval mode.
  auto run_calibration = [&] {
    std::shared_ptr<const data::Dataset> src = o.mode == "static" ? d.train : d.test;
    data::DataLoaderOptions lo;
    lo.batch_size = o.batch_size;
    lo.seed = 1;
    data::DataLoader loader(src, lo);
    loader.start_epoch(0);
    data::Batch b;
    NoGradGuard ng;
    for (int64_t i = 0; i < o.calib_batches && loader.next(b); ++i) model->forward(b.images);
  };
  const auto t0 = Clock::now();
  if (o.mode == "static") run_calibration();
  else model->forward(example);  // weights observed once; dynamic inputs are measured per batch
  quant::convert(*q);
  const double calib_s = std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf("%s: calibrated in %.1f s; evaluating ...\n", o.mode.c_str(), calib_s);
  const EvalResult r1 = evaluate(*model, d.test, o.batch_size, classes, !o.data.predictions.empty());
  if (!o.data.predictions.empty()) write_predictions_csv(o.data.predictions, r1);
  const double lat = batch1_latency_ms(*model, *d.test, o.latency_images);
  const bool program = o.out.size() > 6 && o.out.compare(o.out.size() - 6, 6, ".finch") == 0;
  nlohmann::json program_result;
  if (program) {
    // The integer program, and beside it the simulated model's state for finch verify.
    runtime::Graph pg = quantized_program(*q, example, program_meta(o.data, d.channels, d.height, d.width, d.classes),
                                          o.mode, o.qconfig);
    runtime::Program check(pg, o.out);
    runtime::write_program(pg, o.out);
    save_simulation_state(o.out + ".sim.safetensors", *model, *q, pg.meta, edits_in(o.data.checkpoint));
    print_program_summary(pg, o.out);
    // The deployed accuracy: the program itself over the same test set, image by image against
    // the simulated model (they are built to agree exactly; finch verify shows it per layer).
    runtime::Program prog(std::move(pg), o.out);
    const train::Forward pm = [&prog](const Tensor& x) { return prog.run(x); };
    const EvalResult rp = evaluate(pm, d.test, o.batch_size, classes);
    int64_t same = 0;
    for (size_t i = 0; i < rp.predicted.size() && i < r1.predicted.size(); ++i) same += rp.predicted[i] == r1.predicted[i];
    const double plat = batch1_latency_ms(pm, *d.test, o.latency_images);
    std::printf("program %s: accuracy %.2f%% (simulated %.2f%%), same prediction on %lld/%lld images, batch-1 "
                "%.3f ms/image on the reference kernels\n",
                o.out.c_str(), 100 * rp.accuracy, 100 * r1.accuracy, static_cast<long long>(same),
                static_cast<long long>(rp.count), plat);
    program_result = {{"accuracy", rp.accuracy}, {"latency_ms", plat}, {"size_bytes", file_size(o.out)},
                      {"same_predictions", same}, {"images", rp.count}};
  } else {
    quant::save_quantized(o.out, *q, {{"model", o.data.model}, {"dataset", o.data.dataset},
                                      {"finch_version", finch_version()}});
  }
  variants.push_back({o.mode == "fp16" ? "fp16" : o.mode + "-" + o.qconfig, file_size(o.out), r1.accuracy, lat});

  print_table(variants);
  std::printf("(accuracy and time of the quantized model on the simulated integer path; %s)\n",
              program ? "finch run evaluates the program itself" : "--out FILE.finch writes the program");
  nlohmann::json report;
  report["variants"] = nlohmann::json::array();
  for (const Variant& v : variants)
    report["variants"].push_back({{"name", v.name}, {"size_bytes", v.size_bytes}, {"accuracy", v.accuracy},
                                  {"latency_ms", v.latency_ms}});
  if (program) report["program"] = program_result;
  report["model"] = o.data.model;
  report["checkpoint"] = o.data.checkpoint;
  report["mode"] = o.mode;
  report["qconfig"] = po.qconfig.str();
  report["observer"] = o.observer;
  report["fused"] = o.fuse;
  report["calibration_batches"] = o.mode == "static" ? o.calib_batches : 0;
  report["plan"] = nlohmann::json::array();
  for (const auto& e : q->plan) report["plan"].push_back({{"site", e.site}, {"type", e.type}, {"what", e.what}});
  report["threads"] = get_num_threads();
  report["finch_version"] = finch_version();
  report["command_line"] = command_line;
  if (o.debug) report["debug"] = debug_report(*q, run_calibration, o.out + ".debug.csv");
  if (!o.report.empty()) write_json_file(o.report, report);
  if (!o.html.empty()) {
    report["dataset"] = o.data.dataset;
    report["test_accuracy"] = r1.accuracy;
    write_report_html(o.html, report, nlohmann::json::array());
  }
  std::printf("converted model: %s\n", o.out.c_str());
  return 0;
}

}  // namespace finch::apps
