// finch quantize / verify on series and text checkpoints (series_quantize_cmd.h).
#include "apps/lib/series_quantize_cmd.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>

#include "apps/lib/checkpoint.h"
#include "apps/lib/program_build.h"
#include "apps/lib/sequence_program.h"
#include "apps/lib/series_rnn_debug.h"
#include "apps/lib/series_simulation.h"
#include "apps/lib/series_data.h"
#include "apps/lib/series_train.h"
#include "apps/lib/version.h"
#include "autograd/nn/embedding.h"
#include "autograd/nn/sequence.h"
#include "compile/capture.h"
#include "compile/dynamic_rnn.h"
#include "compile/passes.h"
#include "framework/error.h"
#include "framework/grad_mode.h"
#include "framework/parallel.h"
#include "framework/results.h"
#include "framework/safetensors.h"
#include "models/series_spec.h"
#include "ops/rnn_seq.h"
#include "quant/prepare.h"
#include "quant/qat_rnn.h"
#include "quant/qconfig.h"
#include "runtime/program_file.h"
#include "train/checkpoint.h"
#include "train/evaluate.h"

namespace finch::apps {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

const std::vector<std::string> kSeriesFlags = {"--train",   "--test",     "--val-split", "--missing",  "--normalize",
                                               "--target",  "--inputs",   "--window",    "--horizon",  "--vocab-size",
                                               "--max-len", "--truncate", "--tokenizer", "--spm-model"};

// Batch-1 latency (ms) of two forwards over the first n test samples (each padded to T steps),
// alternating sample by sample so that a loaded machine slows both alike: the median per sample.
std::pair<double, double> latency_pair_ms(const train::BatchForward& f, const train::BatchForward& h,
                                          const SequenceData& d, int64_t n, int64_t T) {
  n = std::min(n, d.test->size());
  if (n <= 0) return {0, 0};
  Generator g(0);
  std::vector<data::Batch> xs;
  for (int64_t i = 0; i < n; ++i) {
    data::Batch b;
    const data::Sample smp = d.test->get(i, g);
    const auto [x, len] = padded_to(smp.image.unsqueeze(0), Tensor(), T);
    b.images = x, b.lengths = len;
    xs.push_back(b);
  }
  NoGradGuard ng;
  for (int64_t i = 0; i < std::min<int64_t>(n, 3); ++i) f(xs[size_t(i)]), h(xs[size_t(i)]);
  std::vector<double> tf, th;
  auto time = [](const train::BatchForward& fn, const data::Batch& b) {
    const auto t0 = Clock::now();
    fn(b);
    return 1e3 * std::chrono::duration<double>(Clock::now() - t0).count();
  };
  for (const data::Batch& b : xs) tf.push_back(time(f, b)), th.push_back(time(h, b));
  auto median = [](std::vector<double> v) {
    std::nth_element(v.begin(), v.begin() + std::ptrdiff_t(v.size() / 2), v.end());
    return v[v.size() / 2];
  };
  return {median(tf), median(th)};
}

int64_t program_bytes(const runtime::Graph& g) { return int64_t(runtime::serialize_program(g).size()); }

}  // namespace

void add_sequence_data_flags(CLI::App& app, SeriesOptions& o) {
  add_series_data_options(app, o, /*train_required=*/false);
  add_text_data_options(app, o, /*with_data=*/false);
}

bool sequence_data_flags_given(const CLI::App& app) {
  return std::any_of(kSeriesFlags.begin(), kSeriesFlags.end(), [&](const std::string& f) { return app.count(f) > 0; });
}

bool is_sequence_checkpoint(const std::string& path) {
  if (!fs::is_regular_file(path)) return false;
  const auto meta = load_safetensors(path).metadata;
  const auto& names = models::series_model_names();
  return meta.count("model") && std::find(names.begin(), names.end(), meta.at("model")) != names.end();
}

bool is_sequence_program(const std::string& path) {
  if (!fs::is_regular_file(path)) return false;
  return runtime::read_program_meta(path).contains("sequence");
}

bool sequence_checkpoint_or_flags(const std::string& checkpoint, const CLI::App& app) {
  if (is_sequence_checkpoint(checkpoint)) return true;
  if (sequence_data_flags_given(app))
    fail("--train, --test and the other series/text data flags are for checkpoints of train_series and train_text; ",
         checkpoint,
         fs::is_regular_file(checkpoint) ? " records no series model (image models take --dataset and --data)"
                                         : " does not exist");
  return false;
}

bool sequence_program_or_flags(const std::string& program, const CLI::App& app) {
  if (is_sequence_program(program)) return true;
  if (sequence_data_flags_given(app))
    fail("--train, --test and the other series/text data flags are for programs of series and text models; ", program,
         " is not one (image programs take --dataset and --data)");
  return false;
}

int run_sequence_quantize(const QuantizeOptions& given, SeriesOptions s, const std::string& command_line) {
  QuantizeOptions q = given;
  if (q.qconfig.empty()) q.qconfig = "int8";
  quant::qconfig_preset(q.qconfig);  // fails on an unknown name
  if (q.data.threads > 0) set_num_threads(q.data.threads);
  const std::string& ckpt = q.data.checkpoint;
  if (q.data.model_given || q.data.width_given || !q.data.mean.empty() || !q.data.std.empty() ||
      q.data.dataset != QuantizeOptions().data.dataset)
    fail(ckpt,
         " records a series model; it takes train_series/train_text's data flags, not --model, --width, "
         "--dataset, --mean or --std (the checkpoint rebuilds the model and its input preparation)");
  if (q.mode == "fp16") fail("--mode fp16 is for image models; series and text models take --mode static or dynamic");
  if (q.out.size() < 6 || q.out.compare(q.out.size() - 6, 6, ".finch") != 0)
    fail("--out ", q.out, ": series and text models are quantized into a program; expected a FILE.finch");
  const SafetensorsFile f = load_safetensors(ckpt);
  s.checkpoint = ckpt;
  const SequenceData d = load_sequence_data(s, f.metadata, q.data.data_dir, ckpt);
  const models::SeriesSpec spec = checkpoint_spec(f, s, d);
  nn::ModulePtr model = models::create_series(spec, nullptr);
  load_weights(ckpt, *model);  // its compress_edits first (finch prune's smaller layers)
  model->eval();
  train::EvalConfig ec;
  ec.batch_size = q.batch_size;
  ec.num_classes = d.regression ? 0 : int64_t(d.classes.size());
  ec.target_std = d.target_std;
  ec.keep_logits = !d.regression;
  const char* metric = d.regression ? "mse" : "accuracy";

  // Calibration batches: training samples in a seeded order, as finch quantize takes images.
  std::vector<data::Batch> calib;
  {
    data::DataLoaderOptions lo;
    lo.batch_size = q.batch_size;
    lo.shuffle = true;
    lo.seed = 1;
    data::DataLoader l(d.train, lo);
    l.start_epoch(0);
    data::Batch b;
    while (int64_t(calib.size()) < q.calib_batches && l.next(b)) calib.push_back(b);
  }
  if (calib.empty()) fail(ckpt, ": finch quantize needs at least one training sample to calibrate on");
  const int64_t T = longest_sequence(d);

  // fp32: the deployed float program (BN folded), scored and timed as the int8 one.
  runtime::Graph g32 = sequence_float_graph(*model, calib[0], T);
  compile::fold_batch_norm(g32);
  compile::fold_constants(g32);
  compile::remove_dead(g32);
  runtime::Program p32(g32, "fp32 program");
  std::printf("fp32 program: evaluating %lld test samples ...\n", static_cast<long long>(d.test->size()));
  const train::EvalResult r32 = train::evaluate(program_forward(p32, T), d.test, ec);

  nlohmann::json meta = {{"model", spec.name},
                         {"dataset", d.name},
                         {"classes", d.classes},
                         {"steps", T},
                         {"finch_version", finch_version()}};
  meta["sequence"] = nlohmann::json(f.metadata);
  meta["sequence_data"] = sequence_data_json(s);
  runtime::Graph g;
  Simulation sim;
  nlohmann::json counts;
  if (q.mode == "dynamic") {
    g = sequence_float_graph(*model, calib[0], T);
    compile::fold_batch_norm(g);
    const compile::DynamicQuantReport rep = compile::quantize_dynamic_graph(g);
    compile::fold_constants(g);
    compile::remove_dead(g);
    counts = {{"dq_lstm", rep.lstm},
              {"dq_gru", rep.gru},
              {"dq_linear", rep.linear},
              {"qembedding", rep.embedding},
              {"float", rep.skipped}};
  } else {
    quant::PrepareOptions po;
    po.qconfig = quant::qconfig_preset(q.qconfig);
    po.qconfig.activation_observer = q.observer;
    po.fuse = q.fuse;
    po.skip = q.skip;
    const auto [ex, ex_len] = padded_to(calib[0].images.slice(0, 0, 1).contiguous(), Tensor(), T);
    // Output-error rounding keeps up to 4096 calibration steps per LSTM layer-direction.
    sim = prepare_simulation(*model, ex, po, q.rnn_rounding == "output-error" ? 4096 : 0);
    for (auto& l : sim.lstms) l->enable_fake_quant(false);  // calibrate on the float layers
    for (auto& l : sim.grus) l->enable_fake_quant(false);
    {
      NoGradGuard ng;
      for (const data::Batch& b : calib) forward_sequence_batch(*model, b);
    }
    freeze(sim);
    g = static_program(*model, sim, calib[0], T);
    int qconv = 0, qlinear = 0, qlstm = 0, qgru = 0, qemb = 0, fl = 0;
    for (const runtime::Node& n : g.nodes) {
      qconv += n.op == "qconv2d", qlinear += n.op == "qlinear", qlstm += n.op == "qlstm", qgru += n.op == "qgru";
      qemb += n.op == "qembedding", fl += n.op == "conv2d" || n.op == "linear" || n.op == "lstm" || n.op == "gru";
    }
    counts = {{"qconv2d", qconv}, {"qlinear", qlinear}, {"qlstm", qlstm},
              {"qgru", qgru},     {"qembedding", qemb}, {"float", fl}};
  }
  meta["precision"] = q.mode == "dynamic" ? "int8-dynamic" : "int8";
  meta["quantization"] = {{"mode", q.mode},         {"qconfig", q.qconfig},
                          {"observer", q.observer}, {"fuse", q.fuse},
                          {"skip", q.skip},         {"calibration_batches", q.mode == "static" ? q.calib_batches : 0},
                          {"rnn_rounding", q.mode == "static" ? q.rnn_rounding : "nearest"}};
  g.meta = meta;
  runtime::Program check(g, q.out);  // validate before writing
  runtime::write_program(g, q.out);
  print_program_summary(g, q.out);
  runtime::Program p(runtime::read_program(q.out), q.out);
  std::printf("%s program: evaluating ...\n", q.mode.c_str());
  const train::EvalResult r8 = train::evaluate(program_forward(p, T), d.test, ec);
  const auto [lat32, lat8] = latency_pair_ms(program_forward(p32, T), program_forward(p, T), d, q.latency_images, T);
  nlohmann::json report;
  int64_t differing = 0;
  if (q.mode == "static") {
    // The simulated model over the same test set, logit for logit (finch verify repeats this
    // from the files).
    const train::EvalResult rs = train::evaluate(*model, d.test, ec);
    for (size_t i = 0; i < rs.logits.size() && i < r8.logits.size(); ++i)
      for (size_t k = 0; k < rs.logits[i].size() && k < r8.logits[i].size(); ++k)
        differing += rs.logits[i][k] != r8.logits[i][k];
    report["simulated_" + std::string(metric)] = metric_of(rs);
    report["simulated_equals_deployed"] = differing == 0 && rs.logits.size() == r8.logits.size();
    report["differing_logits"] = differing;
    std::printf("recurrent layers, each on the program's own input (quantization debugger):\n");
    report["recurrent_layers"] = recurrent_errors(g32, p, calib, T);
    // The same on held-out data: output-error rounding is fitted on the calibration steps.
    std::vector<data::Batch> held_out;
    {
      data::DataLoaderOptions lo;
      lo.batch_size = q.batch_size;
      data::DataLoader l(d.test, lo);
      l.start_epoch(0);
      data::Batch b;
      while (held_out.size() < 4 && l.next(b)) held_out.push_back(b);
    }
    std::printf("the same on the test data (held out from calibration):\n");
    report["recurrent_layers_test"] = recurrent_errors(g32, p, held_out, T);
    NamedTensors t;
    for (const auto& [name, v] : model->state_dict()) t.emplace_back(name, v);
    for (const auto& [name, v] : sim.q->state->state_dict()) t.emplace_back("quant." + name, v);
    for (auto& [name, v] : quant::qat_lstm_state(sim.lstms)) t.emplace_back("qat." + name, v);
    for (auto& [name, v] : quant::qat_gru_state(sim.grus)) t.emplace_back("qat." + name, v);
    std::map<std::string, std::string> sm = f.metadata;
    sm["finch_simulation"] = "static int8 program " + q.out;
    save_safetensors(q.out + ".sim.safetensors", t, sm);
  }
  const int64_t b32 = program_bytes(g32), b8 = int64_t(fs::file_size(q.out));
  std::printf("\n%-14s %10s %12s %10s\n", "variant", "size KB", metric, "ms/sample");
  std::printf("%-14s %10.1f %12.4f %10.3f\n", "fp32 program", b32 / 1024.0, metric_of(r32), lat32);
  std::printf("%-14s %10.1f %12.4f %10.3f\n", (q.mode + " int8").c_str(), b8 / 1024.0, metric_of(r8), lat8);
  std::printf("int8 / fp32: size %.3f, batch-1 latency %.3f (median, alternating); %s %+.4f\n",
              double(b8) / double(b32), lat32 > 0 ? lat8 / lat32 : 0.0, metric, metric_of(r8) - metric_of(r32));
  if (q.mode == "static")
    std::printf("simulated model == program on every test logit: %s (%lld differ)\n", differing == 0 ? "yes" : "NO",
                static_cast<long long>(differing));
  report["variants"] =
      nlohmann::json::array({{{"name", "fp32"}, {"size_bytes", b32}, {metric, metric_of(r32)}, {"latency_ms", lat32}},
                             {{"name", q.mode + "-" + (q.mode == "dynamic" ? std::string("int8") : q.qconfig)},
                              {"size_bytes", b8},
                              {metric, metric_of(r8)},
                              {"latency_ms", lat8}}});
  report["model"] = spec.name;
  report["dataset"] = d.name;
  report["test_samples"] = r8.count;
  report["checkpoint"] = ckpt;
  report["program"] = q.out;
  report["nodes"] = counts;
  report["quantization"] = meta["quantization"];
  report["threads"] = get_num_threads();
  report["finch_version"] = finch_version();
  report["command_line"] = command_line;
  if (!q.report.empty()) write_json_file(q.report, report);
  std::printf("program: %s\n", q.out.c_str());
  if (q.mode == "static" && differing != 0)
    fail("the simulated model and its int8 program disagree on ", differing,
         " test logits; this is a bug, please "
         "report it with ",
         q.out);
  return 0;
}

}  // namespace finch::apps
