// Dense vs low-rank-factorized layers (compress/lowrank.h), fp32 on one thread: a Linear
// 768→3072 (BERT-base's FFN up-projection) as x·Aᵀ·Bᵀ with A [r, 768], B [3072, r] at ranks
// 64…384, for 1 row (batch-1 latency) and 128 rows (a sequence); and a 3×3 conv 64→64 on 16×16
// (ResNet-20's middle stage) and a 1×1 conv 96→24 on 16×16 (a MobileNetV2 projection) against a
// k×k conv with r filters then a 1×1 conv. The dense layer is Arg(0) = 0. Rank r saves FLOPs when
// r·(in + out) < in·out; whether that is time depends on the GEMM shapes staying efficient.
//   build/bin/bench_lowrank --benchmark_filter=Linear   (compare each rank's CPU time with rank 0)
#include <benchmark/benchmark.h>

#include "framework/parallel.h"
#include "framework/random.h"
#include "ops/conv.h"
#include "ops/matmul.h"

namespace {

using namespace finch;

void linear_768_3072(benchmark::State& st, int64_t rows) {
  set_num_threads(1);
  const int64_t r = st.range(0), in = 768, out = 3072;
  Generator gen(1);
  const Tensor x = randn({rows, in}, gen), w = randn({out, in}, gen), b = randn({out}, gen);
  const Tensor a = r ? randn({r, in}, gen) : Tensor(), bb = r ? randn({out, r}, gen) : Tensor();
  for (auto _ : st) {
    Tensor y = r ? ops::linear(ops::linear(x, a, Tensor()), bb, b) : ops::linear(x, w, b);
    benchmark::DoNotOptimize(y.data<float>());
  }
  st.counters["flop_ratio"] = r ? double(r * (in + out)) / double(in * out) : 1.0;
}

void BM_Linear768x3072_Rows1(benchmark::State& st) { linear_768_3072(st, 1); }
void BM_Linear768x3072_Rows128(benchmark::State& st) { linear_768_3072(st, 128); }

// conv C→OC k×k (padding k/2) on [1, C, 16, 16], or its rank-r pair.
void conv_pair(benchmark::State& st, int64_t c, int64_t oc, int64_t k) {
  set_num_threads(1);
  const int64_t r = st.range(0);
  Generator gen(2);
  const Tensor x = randn({1, c, 16, 16}, gen), w = randn({oc, c, k, k}, gen), b = randn({oc}, gen);
  const Tensor a = r ? randn({r, c, k, k}, gen) : Tensor(), bb = r ? randn({oc, r, 1, 1}, gen) : Tensor();
  Conv2dParams p;
  p.ph = p.pw = k / 2;
  for (auto _ : st) {
    Tensor y = r ? ops::conv2d(ops::conv2d(x, a, Tensor(), p), bb, b, Conv2dParams{}) : ops::conv2d(x, w, b, p);
    benchmark::DoNotOptimize(y.data<float>());
  }
  st.counters["flop_ratio"] = r ? double(r * (c * k * k + oc)) / double(oc * c * k * k) : 1.0;
}

void BM_Conv3x3_64to64_16x16(benchmark::State& st) { conv_pair(st, 64, 64, 3); }
void BM_Conv1x1_96to24_16x16(benchmark::State& st) { conv_pair(st, 96, 24, 1); }

BENCHMARK(BM_Linear768x3072_Rows1)->Arg(0)->Arg(64)->Arg(128)->Arg(192)->Arg(256)->Arg(384)
    ->Unit(benchmark::kMicrosecond)->MeasureProcessCPUTime();
BENCHMARK(BM_Linear768x3072_Rows128)->Arg(0)->Arg(64)->Arg(128)->Arg(192)->Arg(256)->Arg(384)
    ->Unit(benchmark::kMicrosecond)->MeasureProcessCPUTime();
BENCHMARK(BM_Conv3x3_64to64_16x16)->Arg(0)->Arg(16)->Arg(32)->Arg(48)
    ->Unit(benchmark::kMicrosecond)->MeasureProcessCPUTime();
BENCHMARK(BM_Conv1x1_96to24_16x16)->Arg(0)->Arg(6)->Arg(12)->Arg(18)
    ->Unit(benchmark::kMicrosecond)->MeasureProcessCPUTime();

}  // namespace

BENCHMARK_MAIN();
