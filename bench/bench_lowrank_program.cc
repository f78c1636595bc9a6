// Batch-1 latency of MobileNetV2 (CIFAR variant, Fashion-MNIST's 1 × 28 × 28, 10 classes) as fp32
// and int8 programs, dense against rank-halved (compress::factorize, rank_fraction 0.5: every 1×1
// conv, the stem and the classifier; the depthwise convs stay), side by side in one run, one
// thread. Programs are built as `finch quantize` builds them (capture → BN fold → fusion →
// [prepare/calibrate/convert → lower] → constant folding). Random weights with trained-like BN
// statistics: speed does not depend on the values.
//   build/bin/bench_lowrank_program --benchmark_min_time=1
#include <benchmark/benchmark.h>

#include <map>
#include <memory>
#include <string>

#include "compile/capture.h"
#include "compile/passes.h"
#include "compress/lowrank.h"
#include "framework/grad_mode.h"
#include "framework/parallel.h"
#include "framework/random.h"
#include "models/factory.h"
#include "quant/prepare.h"
#include "quant/qconfig.h"
#include "runtime/executor.h"

namespace finch {
namespace {

runtime::Graph build(bool lowrank, bool int8) {
  Generator gen(11);
  models::CreateOptions co;
  co.cifar = true;
  co.gen = &gen;
  nn::ModulePtr m = models::create("mobilenetv2", 1, 10, co);
  {
    NoGradGuard ng;
    m->train();
    for (int i = 0; i < 2; ++i) m->forward(randn({8, 1, 28, 28}, gen));
    m->eval();
  }
  if (lowrank) {
    compress::LowRankOptions o;
    o.rank_fraction = 0.5;
    compress::factorize(*m, o);
  }
  const Tensor example = randn({1, 1, 28, 28}, gen);
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
      for (int i = 0; i < 4; ++i) m->forward(randn({8, 1, 28, 28}, gen));
    }
    quant::convert(*q);
    q->enable_observers(false);
    g = compile::capture_graph(*m, example);
    compile::lower_quantized(g);
  }
  compile::fold_constants(g);
  compile::remove_dead(g);
  return g;
}

runtime::Program& program(bool lowrank, bool int8) {
  static std::map<int, std::unique_ptr<runtime::Program>> cache;
  auto& p = cache[int(lowrank) * 2 + int(int8)];
  if (!p) p = std::make_unique<runtime::Program>(build(lowrank, int8), "mobilenetv2");
  return *p;
}

void run(benchmark::State& st, bool lowrank, bool int8) {
  set_num_threads(1);
  runtime::Program& p = program(lowrank, int8);
  Generator gen(3);
  const Tensor x = randn({1, 1, 28, 28}, gen);
  for (auto _ : st) benchmark::DoNotOptimize(p.run(x));
}

void BM_MobileNetV2_fp32_dense(benchmark::State& st) { run(st, false, false); }
void BM_MobileNetV2_fp32_halved(benchmark::State& st) { run(st, true, false); }
void BM_MobileNetV2_int8_dense(benchmark::State& st) { run(st, false, true); }
void BM_MobileNetV2_int8_halved(benchmark::State& st) { run(st, true, true); }

// Dense and halved rows alternate, so both see the same machine state.
BENCHMARK(BM_MobileNetV2_fp32_dense)->Unit(benchmark::kMicrosecond)->MeasureProcessCPUTime();
BENCHMARK(BM_MobileNetV2_fp32_halved)->Unit(benchmark::kMicrosecond)->MeasureProcessCPUTime();
BENCHMARK(BM_MobileNetV2_int8_dense)->Unit(benchmark::kMicrosecond)->MeasureProcessCPUTime();
BENCHMARK(BM_MobileNetV2_int8_halved)->Unit(benchmark::kMicrosecond)->MeasureProcessCPUTime();

}  // namespace
}  // namespace finch

BENCHMARK_MAIN();
