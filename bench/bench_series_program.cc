// Batch-1 latency of the conv series models as programs, fp32 against int8, side by side in one
// run: FCN on GunPoint's shape (1 × 150, 2 classes, Wang et al.'s filters 128-256-128) and the
// smartwatch HAR CNN (6 × 100, 6 classes). Each program is built the way `finch quantize`
// builds it (capture → BN fold → ReLU fusion → [prepare/calibrate/convert → lower] → constant
// folding), written to $FINCH_BENCH_PROGRAMS/<model>_<precision>.finch when that is set (for
// `finch bench`), read back, and timed with Program::run on one thread (as `finch bench
// --threads 1`). Weights are random with trained-like BN statistics: speed does not depend on them.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>

#include "compile/capture.h"
#include "compile/passes.h"
#include "framework/grad_mode.h"
#include "framework/parallel.h"
#include "framework/random.h"
#include "models/series_spec.h"
#include "quant/prepare.h"
#include "quant/qconfig.h"
#include "runtime/executor.h"
#include "runtime/program_file.h"

namespace finch {
namespace {

struct Shape3 {
  int64_t channels, length, classes;
};

Shape3 shape_of(const std::string& model) {
  if (model == "fcn") return {1, 150, 2};
  return {6, 100, 6};  // har_cnn
}

runtime::Graph build(const std::string& model, bool int8) {
  const Shape3 s = shape_of(model);
  Generator gen(11);
  models::SeriesSpec spec;
  spec.name = model;
  spec.in_channels = s.channels;
  spec.num_classes = s.classes;
  nn::ModulePtr m = models::create_series(spec, &gen);
  {
    NoGradGuard ng;
    m->train();
    for (int i = 0; i < 3; ++i) m->forward(randn({16, s.channels, s.length}, gen));
    m->eval();
  }
  const Tensor example = randn({1, s.channels, s.length}, gen);
  runtime::Graph g;
  if (!int8) {
    g = compile::capture_graph(*m, example);
    compile::fold_batch_norm(g);
    compile::fuse_activations(g);
  } else {
    quant::PrepareOptions po;
    po.qconfig = quant::qconfig_preset("int8");
    auto q = quant::prepare(*m, example, po, false);
    {
      NoGradGuard ng;
      for (int i = 0; i < 8; ++i) m->forward(randn({16, s.channels, s.length}, gen));
    }
    quant::convert(*q);
    q->enable_observers(false);
    g = compile::capture_graph(*m, example);
    compile::lower_quantized(g);
  }
  compile::fold_constants(g);
  compile::remove_dead(g);
  g.meta = {{"model", model}, {"precision", int8 ? "int8" : "fp32"}};
  return g;
}

// FINCH_BENCH_PROFILE=1: where a batch-1 run spends its time, per op (200 runs, one thread).
void profile(runtime::Program& p, const std::string& key, const std::string& model) {
  set_num_threads(1);
  const Shape3 s = shape_of(model);
  Generator gen(3);
  const Tensor x = randn({1, s.channels, s.length}, gen);
  p.set_profiling(true);
  for (int i = 0; i < 200; ++i) p.run(x);
  p.set_profiling(false);
  std::map<std::string, std::pair<double, int>> by_op;
  for (size_t i = 0; i < p.graph().nodes.size(); ++i) {
    auto& e = by_op[p.graph().nodes[i].op];
    e.first += p.node_seconds()[i] / double(p.profiled_runs()) * 1e6;
    e.second += 1;
  }
  std::fprintf(stderr, "%s:", key.c_str());
  for (const auto& [op, e] : by_op) std::fprintf(stderr, " %s %.1f us (%d)", op.c_str(), e.first, e.second);
  std::fprintf(stderr, "\n");
}

runtime::Program& program(const std::string& model, bool int8) {
  static std::map<std::string, std::unique_ptr<runtime::Program>> cache;
  const std::string key = model + (int8 ? "_int8" : "_fp32");
  auto& p = cache[key];
  if (!p) {
    runtime::Graph g = build(model, int8);
    if (const char* dir = std::getenv("FINCH_BENCH_PROGRAMS"); dir && *dir) {
      const std::string path = std::string(dir) + "/" + key + ".finch";
      runtime::write_program(g, path);
      g = runtime::read_program(path);
    }
    p = std::make_unique<runtime::Program>(std::move(g), key);
    if (const char* prof = std::getenv("FINCH_BENCH_PROFILE"); prof && *prof == '1') profile(*p, key, model);
  }
  return *p;
}

void run(benchmark::State& st, const std::string& model, bool int8) {
  set_num_threads(1);
  runtime::Program& p = program(model, int8);
  const Shape3 s = shape_of(model);
  Generator gen(3);
  const Tensor x = randn({1, s.channels, s.length}, gen);
  for (auto _ : st) benchmark::DoNotOptimize(p.run(x));
}

void BM_FcnGunPoint_fp32(benchmark::State& st) { run(st, "fcn", false); }
void BM_FcnGunPoint_int8(benchmark::State& st) { run(st, "fcn", true); }
void BM_HarCnn_fp32(benchmark::State& st) { run(st, "har_cnn", false); }
void BM_HarCnn_int8(benchmark::State& st) { run(st, "har_cnn", true); }

// fp32 and int8 rows alternate, so both see the same machine state.
BENCHMARK(BM_FcnGunPoint_fp32)->Unit(benchmark::kMicrosecond)->MinTime(0.5);
BENCHMARK(BM_FcnGunPoint_int8)->Unit(benchmark::kMicrosecond)->MinTime(0.5);
BENCHMARK(BM_HarCnn_fp32)->Unit(benchmark::kMicrosecond)->MinTime(0.5);
BENCHMARK(BM_HarCnn_int8)->Unit(benchmark::kMicrosecond)->MinTime(0.5);

}  // namespace
}  // namespace finch

BENCHMARK_MAIN();
