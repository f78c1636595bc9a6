// finch bench / finch bench-program (see bench_cmd.h).
#include "apps/lib/bench_cmd.h"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <vector>

#include "apps/lib/checkpoint.h"
#include "apps/lib/program_build.h"
#include "apps/lib/sparse_report.h"
#include "apps/lib/version.h"
#include "framework/error.h"
#include "framework/grad_mode.h"
#include "framework/parallel.h"
#include "framework/random.h"
#include "framework/results.h"
#include "models/factory.h"
#include "quant/prepare.h"
#include "quant/qconfig.h"
#include "runtime/executor.h"
#include "runtime/op_table.h"
#include "runtime/program_file.h"
#include "runtime/verify.h"

namespace finch::apps {

namespace {

using Clock = std::chrono::steady_clock;

// The q-th quantile of sorted samples, linearly interpolated between ranks (numpy's default), so
// p50 of an even count is the mean of the middle two.
double quantile(const std::vector<double>& sorted, double q) {
  const double pos = q * double(sorted.size() - 1);
  const size_t lo = size_t(pos), hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (pos - double(lo)) * (sorted[hi] - sorted[lo]);
}

// fp32 / fp16 / int8 by the weight constants' dtypes: integer weights win over half ones (an int8
// program may keep a float layer), and an integer bias alone (i32) does not make a program int8.
std::string program_kind(const runtime::Graph& g) {
  bool i8 = false, f16 = false;
  for (const auto& v : g.values) {
    if (!v.is_constant()) continue;
    i8 = i8 || v.dtype == DType::i8 || v.dtype == DType::u8;
    f16 = f16 || v.dtype == DType::f16;
  }
  return i8 ? "int8" : f16 ? "fp16" : "fp32";
}

// Random inputs at the declared shapes with dim 0 = batch: N(0, 1) for float inputs (what a
// normalized image looks like), uniform codes for integer-coded ones, uniform token ids and
// all-ones attention masks for a BERT program's.
std::vector<Tensor> random_inputs(const runtime::Graph& g, int64_t batch, uint64_t seed, const std::string& what) {
  Generator gen(seed);
  std::vector<Tensor> xs;
  const std::vector<bool> length_values = runtime::sequence_length_values(g);
  for (int32_t i : g.inputs) {
    const runtime::Value& v = g.values[size_t(i)];
    Shape s = v.shape;
    if (s.empty()) fail(what, ": input '", v.name, "' is a scalar; finch bench needs a batch dimension");
    s[0] = batch;
    // Token ids (an integer input an embedding reads): uniform over the table's rows; an
    // attention mask (an integer input an attention reads): every token attended.
    int64_t rows = 0;
    bool mask = false, lengths = false;
    for (const runtime::Node& n : g.nodes) {
      if ((n.op == "embedding" || n.op == "qembedding") && n.inputs.size() > 1 && n.inputs[0] == i && n.inputs[1] >= 0)
        rows = g.values[size_t(n.inputs[1])].shape.at(0);
      mask = mask || ((n.op == "attention" || n.op == "qattention") && n.inputs.size() > 3 && n.inputs[3] == i);
    }
    // A recurrent program's lengths (read by the recurrent ops, or shortened first by a model's
    // valid convs): every sample runs all the program's steps.
    lengths = length_values[size_t(i)];
    const runtime::Value& first = g.values[size_t(g.inputs[0])];
    if ((v.dtype == DType::i64 || v.dtype == DType::i32) && lengths && i != g.inputs[0] && !first.shape.empty()) {
      xs.push_back(full(s, double(first.shape.back()), v.dtype));
      continue;
    }
    if (v.dtype == DType::f32) xs.push_back(randn(s, gen));
    else if ((v.dtype == DType::i8 || v.dtype == DType::u8) && v.quant)
      xs.push_back(randint(v.quant->qmin, v.quant->qmax + 1, s, gen, v.dtype));
    else if ((v.dtype == DType::i64 || v.dtype == DType::i32) && rows > 0)
      xs.push_back(randint(0, rows, s, gen, v.dtype));
    else if ((v.dtype == DType::i64 || v.dtype == DType::i32) && mask)
      xs.push_back(ones(s, v.dtype));
    else
      fail(what, ": input '", v.name, "' has dtype ", dtype_name(v.dtype),
           "; finch bench feeds f32 inputs, i8/u8 codes with quantization parameters, token ids and attention masks");
  }
  return xs;
}

// "3x224x224" -> {3, 224, 224}.
std::vector<int64_t> parse_chw(const std::string& s) {
  std::vector<int64_t> d;
  std::stringstream in(s);
  std::string part;
  while (std::getline(in, part, 'x')) {
    const bool digits = !part.empty() && part.size() < 7 &&
                        std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
    d.push_back(digits ? std::stoll(part) : 0);
  }
  if (d.size() != 3 || std::count(d.begin(), d.end(), 0) > 0 || s.back() == 'x')
    fail("--input-size '", s, "' is not CxHxW with three positive integers (e.g. 3x224x224)");
  return d;
}

}  // namespace

void add_bench_options(CLI::App& app, BenchOptions& o) {
  app.add_option("program", o.program, "a .finch program")->required();
  app.add_option("--batch", o.batch, "images per run (replaces dim 0 of the input shape)")
      ->capture_default_str();
  app.add_option("--threads", o.threads, "compute threads")->capture_default_str();
  app.add_option("--iters", o.iters, "timed runs")->capture_default_str();
  app.add_flag("--reference-kernels", o.reference_kernels,
               "time the reference kernels instead of the optimized ones (the same results, an fp32 program's "
               "conv2d/linear to float rounding)");
  add_sparse_option(app, o.sparse);
  app.add_option("--warmup", o.warmup, "untimed runs before the timed ones")
      ->capture_default_str();
  app.add_option("--max-seconds", o.max_seconds,
                 "stop the warmup, then the timed runs, after this many seconds each (0: no limit)");
  app.add_option("--seed", o.seed, "seed of the random inputs")->capture_default_str();
  app.add_option("--json", o.json, "also write the result as JSON");
}

void add_bench_program_options(CLI::App& app, BenchProgramOptions& o) {
  app.add_option("--model", o.model, "network (default: the one the checkpoint names)")
      ->check(CLI::IsMember(models::model_names()));
  app.add_option("--checkpoint", o.checkpoint, "fp32 weights (default: a seeded initialization)");
  app.add_option("--input-size", o.input_size, "input C×H×W, e.g. 3x224x224")->capture_default_str();
  app.add_option("--classes", o.classes, "output classes")->capture_default_str();
  app.add_option("--width", o.width, "width multiplier (MobileNet v1/v2)")->capture_default_str();
  app.add_flag("--cifar", o.cifar, "the zoo's CIFAR variant (stride-1 stem), as train_cifar trains");
  app.add_option("--precision", o.precision, "fp32, fp16 or int8 (static, calibrated on random-normal images)")
      ->check(CLI::IsMember({"fp32", "fp16", "int8"}))
      ->capture_default_str();
  app.add_option("--qconfig", o.qconfig, "int8 preset: int8 (per-channel), int8-per-tensor, uint8-io")
      ->capture_default_str();
  app.add_flag("!--no-fuse", o.fuse, "do not fold BatchNorm nor fuse activations (int8)");
  app.add_option("--calib-batches", o.calib_batches, "random-normal calibration batches (int8)")
      ->capture_default_str();
  app.add_option("--calib-batch-size", o.calib_batch_size, "images per calibration batch")
      ->capture_default_str();
  app.add_option("--seed", o.seed, "seed of the initialization and the calibration images")->capture_default_str();
  app.add_option("--threads", o.threads, "compute threads (0: all cores)");
  app.add_option("--out", o.out, "the program to write (.finch)")->required();
}

int run_bench(const BenchOptions& o) {
  // CLI11's range messages print the double limits in full; one sentence each instead.
  if (o.batch < 1) fail("--batch must be at least 1, got ", o.batch);
  if (o.threads < 1) fail("--threads must be at least 1, got ", o.threads);
  if (o.iters < 1) fail("--iters must be at least 1, got ", o.iters);
  if (o.warmup < 0) fail("--warmup must be 0 or more, got ", o.warmup);
  if (!(o.max_seconds >= 0)) fail("--max-seconds must be 0 (no limit) or more, got ", o.max_seconds);
  if (!std::filesystem::is_regular_file(o.program))
    fail(o.program, " does not exist or is not a file; expected a .finch program");
  runtime::Graph g = runtime::read_program(o.program);
  // The program's problems (a meta.precision that is no string included) before its meta is read.
  if (const auto problems = runtime::verify(g, o.program); !problems.empty()) throw Error(problems[0]);
  set_num_threads(o.threads);
  const std::string kind = program_kind(g);
  const std::string precision = g.meta.value("precision", kind);
  const std::string model = g.meta.value("model", "");
  runtime::ProgramOptions po;
  po.reference_kernels = o.reference_kernels;
  po.sparse = runtime::sparse_kernels_from_name(o.sparse, "--sparse");
  runtime::Program p(std::move(g), o.program, po);
  // --batch 1000000000 must be a sentence about the batch, not an allocation failure.
  p.check_batch(o.batch);
  std::vector<Tensor> xs = random_inputs(p.graph(), o.batch, o.seed, o.program);
  // The budget bounds the warmup too (one run is enough to warm a slow program).
  int64_t warmup = 0;
  for (const auto w0 = Clock::now(); warmup < o.warmup;) {
    p.run(xs);
    ++warmup;
    if (o.max_seconds > 0 && std::chrono::duration<double>(Clock::now() - w0).count() >= o.max_seconds) break;
  }
  std::vector<double> ms;
  ms.reserve(size_t(o.iters));
  // Slow programs (the scalar reference kernels) would take minutes at a fixed count: the time
  // budget ends the run early, and the report says how many runs were timed.
  const auto start = Clock::now();
  for (int64_t i = 0; i < o.iters; ++i) {
    const auto t0 = Clock::now();
    p.run(xs);
    const auto t1 = Clock::now();
    ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    if (o.max_seconds > 0 && std::chrono::duration<double>(t1 - start).count() >= o.max_seconds) break;
  }
  const int64_t runs = int64_t(ms.size());
  std::vector<double> sorted = ms;
  std::sort(sorted.begin(), sorted.end());
  const double median = quantile(sorted, 0.5), p10 = quantile(sorted, 0.1), p90 = quantile(sorted, 0.9);
  const double ips = double(o.batch) * 1000.0 / median;
  const int64_t bytes = int64_t(std::filesystem::file_size(o.program));
  std::printf("%s: %s%s%s program, %.1f KiB, batch %lld, %d thread%s, %lld runs after %lld warmup: median %.3f ms "
              "(p10 %.3f, p90 %.3f), %.1f images/s\n",
              o.program.c_str(), kind.c_str(), model.empty() ? "" : " ", model.c_str(), double(bytes) / 1024.0,
              static_cast<long long>(o.batch), get_num_threads(), get_num_threads() == 1 ? "" : "s",
              static_cast<long long>(runs), static_cast<long long>(warmup), median, p10, p90, ips);
  int64_t sparse_nodes = 0;
  for (double s : p.sparse_nodes()) sparse_nodes += s >= 0;
  if (sparse_nodes > 0 || po.sparse != runtime::SparseKernels::measured)
    std::printf("%lld nodes on sparse kernels (--sparse %s)\n", static_cast<long long>(sparse_nodes), o.sparse.c_str());
  if (!o.json.empty())
    write_json_file(o.json, {{"program", o.program}, {"model", model}, {"kind", kind}, {"precision", precision},
                             {"sparse", o.sparse}, {"sparse_nodes", sparse_nodes},
                             {"batch", o.batch}, {"threads", get_num_threads()}, {"iters", runs},
                             {"kernels", o.reference_kernels ? "reference" : "optimized"},
                             {"warmup", warmup}, {"latency_ms_median", median}, {"latency_ms_p10", p10},
                             {"latency_ms_p90", p90}, {"latency_ms", ms}, {"images_per_second", ips},
                             {"file_bytes", bytes}, {"finch_version", finch_version()}});
  return 0;
}

int run_bench_program(BenchProgramOptions o, bool model_given) {
  if (o.classes < 1) fail("--classes must be at least 1, got ", o.classes);
  if (o.calib_batches < 1 || o.calib_batch_size < 1)
    fail("--calib-batches and --calib-batch-size must be at least 1, got ", o.calib_batches, " and ",
         o.calib_batch_size);
  if (o.threads > 0) set_num_threads(o.threads);
  if (!o.checkpoint.empty()) {
    if (!std::filesystem::is_regular_file(o.checkpoint))
      fail("--checkpoint ", o.checkpoint, " does not exist or is not a file; expected fp32 weights (safetensors)");
    if (const std::string m = model_name_in(o.checkpoint); !m.empty()) {
      if (model_given && m != o.model) fail(o.checkpoint, " holds a ", m, " but --model is ", o.model);
      o.model = m;
    } else if (!model_given) {
      fail(o.checkpoint, " does not name its model; give --model");
    }
    if (!o.width_given) o.width = width_in(o.checkpoint);  // a trained α=0.5 network stays α=0.5
  } else if (!model_given) {
    fail("give --model (or --checkpoint naming one)");
  }
  if (o.precision == "int8" && o.qconfig == "fp16") fail("--qconfig fp16 is --precision fp16, not int8");
  const std::vector<int64_t> chw = parse_chw(o.input_size);
  const bool mobilenet = o.model == "mobilenet_v1" || o.model == "mobilenetv2";
  if (o.width != 1.0 && !mobilenet) fail("--width applies to mobilenet_v1 and mobilenetv2, not ", o.model);
  if (!(o.width > 0)) fail("--width must be positive, got ", o.width);
  Generator gen(o.seed);
  models::CreateOptions co;
  co.cifar = o.cifar;
  co.width_mult = o.width;
  co.input_size = chw[1];
  co.gen = &gen;
  nn::ModulePtr model = models::create(o.model, chw[0], o.classes, co);
  if (!o.checkpoint.empty()) load_weights(o.checkpoint, *model);
  model->eval();

  std::vector<std::string> classes;
  for (int64_t c = 0; c < o.classes; ++c) classes.push_back(std::to_string(c));
  nlohmann::json meta = {{"model", o.model}, {"dataset", "random-normal"},
                         {"mean", std::vector<float>(size_t(chw[0]), 0.f)},
                         {"std", std::vector<float>(size_t(chw[0]), 1.f)}, {"classes", classes},
                         {"input", chw}, {"finch_version", finch_version()},
                         {"benchmark_aid", {{"weights", o.checkpoint.empty() ? "seeded init" : o.checkpoint},
                                            {"seed", o.seed}, {"width", o.width}, {"cifar", o.cifar}}}};
  const Tensor example = randn({1, chw[0], chw[1], chw[2]}, gen);
  runtime::Graph g;
  NoGradGuard ng;
  if (o.precision == "fp32") {
    g = float_program(*model, example, meta);
  } else {
    const std::string qc = o.precision == "fp16" ? "fp16" : o.qconfig;
    quant::PrepareOptions po;
    po.qconfig = quant::qconfig_preset(qc);  // fails on an unknown name
    po.fuse = o.fuse;
    auto q = quant::prepare(*model, example, po, /*qat=*/false);
    if (o.precision == "int8") {
      // Calibration on N(0, 1) images: ranges that a normalized input would roughly give. The
      // program's accuracy means nothing; its kernels, shapes and sizes are the deployed ones.
      for (int64_t b = 0; b < o.calib_batches; ++b)
        model->forward(randn({o.calib_batch_size, chw[0], chw[1], chw[2]}, gen));
      meta["benchmark_aid"]["calibration"] = std::to_string(o.calib_batches) + " random-normal batches of " +
                                             std::to_string(o.calib_batch_size);
    } else {
      model->forward(example);  // fp16: weights only
    }
    quant::convert(*q);
    g = quantized_program(*q, example, meta, o.precision == "fp16" ? "fp16" : "static", qc);
  }
  runtime::Program check(g, o.out);  // validate before writing
  runtime::write_program(g, o.out);
  print_program_summary(g, o.out);
  std::printf("%s program of %s (%s, input %s): %s (%.1f KiB) — a benchmarking aid, not a trained model's program\n",
              o.precision.c_str(), o.model.c_str(), o.checkpoint.empty() ? "seeded init" : o.checkpoint.c_str(),
              o.input_size.c_str(), o.out.c_str(), double(std::filesystem::file_size(o.out)) / 1024.0);
  return 0;
}

}  // namespace finch::apps
