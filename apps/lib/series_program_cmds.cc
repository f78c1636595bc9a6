// finch compile and finch run on series and text models (series_quantize_cmd.h): compile captures
// the fp32 program of a train_series/train_text checkpoint (BN folded, activations fused) with
// the training app's data flags, which give the program's step count and an example batch; run
// scores any program of such a model (fp32, static or dynamic int8) on the data it records or
// the flags given, and writes the metrics train_series reports (accuracy, macro F1, balanced
// accuracy, κ, confusion matrix; MSE/MAE/RMSE for forecasting), --predictions and --json.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "apps/lib/checkpoint.h"
#include "apps/lib/program_build.h"
#include "apps/lib/program_inspect.h"
#include "apps/lib/sequence_program.h"
#include "apps/lib/series_quantize_cmd.h"
#include "apps/lib/series_simulation.h"
#include "apps/lib/series_train.h"
#include "apps/lib/version.h"
#include "compile/passes.h"
#include "framework/error.h"
#include "framework/grad_mode.h"
#include "framework/parallel.h"
#include "framework/random.h"
#include "framework/results.h"
#include "framework/safetensors.h"
#include "models/series_spec.h"
#include "runtime/program_file.h"
#include "train/checkpoint.h"
#include "train/metrics.h"

namespace finch::apps {
namespace {

namespace fs = std::filesystem;

// Image flags have no meaning for a series or text model: one sentence naming them.
void refuse_image_flags(const std::string& what, bool image_flags) {
  if (image_flags)
    fail(what,
         " is a series or text model; it takes train_series/train_text's data flags, not --model, --width, "
         "--dataset, --mean, --std or --limit-test (the checkpoint rebuilds the model and its input preparation)");
}

// Median batch-1 latency (ms) of `f` over the first n test samples, each padded to T steps.
double batch1_latency_ms(const train::BatchForward& f, const SequenceData& d, int64_t n, int64_t T) {
  n = std::min(n, d.test->size());
  if (n <= 0) return 0;
  Generator g(0);
  std::vector<double> ms;
  NoGradGuard ng;
  for (int64_t i = 0; i < n; ++i) {
    data::Batch b;
    const data::Sample smp = d.test->get(i, g);
    const auto [x, len] = padded_to(smp.image.unsqueeze(0), Tensor(), T);
    b.images = x, b.lengths = len;
    if (i == 0) f(b);  // warm-up: packed weights, first-touch pages
    const auto t0 = std::chrono::steady_clock::now();
    f(b);
    ms.push_back(1e3 * std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::nth_element(ms.begin(), ms.begin() + std::ptrdiff_t(ms.size() / 2), ms.end());
  return ms[ms.size() / 2];
}

}  // namespace

int image_flags_given(const CLI::App& app) {
  int n = 0;
  for (const char* f : {"--model", "--width", "--dataset", "--mean", "--std", "--limit-test"})
    for (const CLI::Option* o : app.get_options())
      if (o->check_lname(f + 2) && o->count() > 0) ++n;
  return n;
}

int run_sequence_compile(const ProgramOptions& o, SeriesOptions s, bool image_flags) {
  if (o.data.threads > 0) set_num_threads(o.data.threads);
  const std::string& ckpt = o.data.checkpoint;
  refuse_image_flags(ckpt, image_flags);
  if (o.out.size() < 6 || o.out.compare(o.out.size() - 6, 6, ".finch") != 0)
    fail("--out ", o.out, ": a series or text model compiles into a program; expected a FILE.finch");
  const SafetensorsFile f = load_safetensors(ckpt);
  s.checkpoint = ckpt;
  const SequenceData d = load_sequence_data(s, f.metadata, o.data.data_dir, ckpt);
  const models::SeriesSpec spec = checkpoint_spec(f, s, d);
  nn::ModulePtr model = models::create_series(spec, nullptr);
  load_weights(ckpt, *model);  // its compress_edits first (a pruned model)
  model->eval();
  // The program's step count is the data's longest sequence (shorter ones run padded, with their
  // lengths), as finch quantize makes its programs.
  const int64_t T = longest_sequence(d);
  runtime::Graph g = sequence_float_graph(*model, first_batch(d.train, std::min<int64_t>(o.batch_size, 8)), T);
  compile::fold_batch_norm(g);
  compile::fold_constants(g);
  compile::remove_dead(g);
  g.meta = {{"model", spec.name},   {"dataset", d.name},         {"classes", d.classes},
            {"steps", T},           {"precision", "fp32"},       {"finch_version", finch_version()},
            {"sequence", f.metadata}, {"sequence_data", sequence_data_json(s)}};
  runtime::Program check(g, o.out);  // validate before writing
  runtime::write_program(g, o.out);
  print_program_summary(g, o.out);
  std::printf("fp32 program: %s (%.1f KiB; the checkpoint is %.1f KiB), %lld steps\n", o.out.c_str(),
              double(fs::file_size(o.out)) / 1024.0, double(fs::file_size(ckpt)) / 1024.0,
              static_cast<long long>(T));
  return 0;
}

int run_sequence_run(const ProgramOptions& o, SeriesOptions s, bool image_flags) {
  if (o.data.threads > 0) set_num_threads(o.data.threads);
  refuse_image_flags(o.program, image_flags);
  runtime::Graph g = runtime::read_program(o.program);
  const nlohmann::json& meta = g.meta;
  std::map<std::string, std::string> recorded;  // the checkpoint's metadata, as the program recorded it
  try {
    recorded = meta.at("sequence").get<std::map<std::string, std::string>>();
  } catch (const std::exception&) {
    fail(o.program, ": expected meta.sequence to hold the checkpoint's metadata (string values)");
  }
  std::string data_dir = o.data.data_dir;
  if (s.train_file.empty() && data_dir.empty()) {  // the data (and flags) the program was made with
    if (!meta.contains("sequence_data") || !meta["sequence_data"].is_object())
      fail(o.program, " records no data; give it with --train/--test or --data as train_series/train_text took it");
    data_dir = recorded_sequence_data(meta["sequence_data"], s);
  }
  s.checkpoint = o.program;
  const SequenceData d = load_sequence_data(s, recorded, data_dir, o.program);
  for (const auto& [key, value] : d.metadata) {  // the data prepared as for training (checkpoint_spec's rule)
    const auto it = recorded.find(key);
    if (it != recorded.end() && it->second != value)
      fail(o.program, " was made from a model trained on data prepared otherwise: its '", key, "' is '", it->second,
           "' but this data gives '", value, "'");
  }
  const int64_t T = meta.contains("steps") && meta["steps"].is_number_integer() ? meta["steps"].get<int64_t>() : 0;
  if (T < 1) fail(o.program, ": expected meta.steps >= 1 (the program's step count), found ", T);
  runtime::ProgramOptions ro;
  ro.reference_kernels = o.reference_kernels;
  runtime::Program p(std::move(g), o.program, ro);  // g (and meta) moved: read p.graph().meta from here on
  train::EvalConfig ec;
  ec.batch_size = o.batch_size;
  ec.num_classes = d.regression ? 0 : int64_t(d.classes.size());
  ec.target_std = d.target_std;
  ec.keep_logits = !o.data.predictions.empty() && !d.regression;
  const train::BatchForward fwd = program_forward(p, T);
  const train::EvalResult r = train::evaluate(fwd, d.test, ec);
  if (ec.keep_logits) train::write_predictions_csv(o.data.predictions, r);
  p.set_profiling(o.profile);
  const double lat = batch1_latency_ms(fwd, d, o.latency_images, T);
  nlohmann::json rep = test_metrics_json(d, r);
  const std::string precision = p.graph().meta.value("precision", "");
  if (d.regression)
    std::printf("%s: MSE %.5g RMSE %.5g MAE %.5g on %lld samples (%s)", o.program.c_str(), r.mse, r.rmse, r.mae,
                static_cast<long long>(r.count), d.name.c_str());
  else
    std::printf("%s: accuracy %.2f%%, macro F1 %.4f, balanced accuracy %.4f on %lld samples (%s)", o.program.c_str(),
                100 * r.accuracy, rep["macro_f1"].is_number() ? rep["macro_f1"].get<double>() : NAN,
                rep["balanced_accuracy"].is_number() ? rep["balanced_accuracy"].get<double>() : NAN,
                static_cast<long long>(r.count), d.name.c_str());
  std::printf(", batch-1 latency %.3f ms/sample, %d threads, %s\n", lat, get_num_threads(), precision.c_str());
  if (o.profile) print_profile(p);
  if (!o.json.empty()) {
    rep["program"] = o.program, rep["dataset"] = d.name, rep["model"] = p.graph().meta.value("model", "");
    rep["precision"] = precision, rep["latency_ms"] = lat, rep["threads"] = get_num_threads();
    write_json_file(o.json, rep);
  }
  return 0;
}

}  // namespace finch::apps
