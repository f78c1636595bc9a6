// conv2d forward+backward on the reference layers: 3×3 64→64 on [64, 64, 32, 32] and depthwise
// 3×3 on [64, 144, 32, 32] (pad 1, bias). The argument is the thread count.
// Compare with bench/torch_conv_linear.py (torch 1.13, same thread counts).
#include <benchmark/benchmark.h>

#include "framework/parallel.h"
#include "framework/random.h"
#include "ops/conv.h"

namespace {

using namespace finch;

void run_conv(benchmark::State& st, const Shape& xs, const Shape& ws, int64_t groups, bool backward) {
  set_num_threads(int(st.range(0)));
  Generator gen(1);
  const Tensor x = randn(xs, gen), w = randn(ws, gen), b = randn({ws[0]}, gen);
  const ops::Conv2dParams p{1, 1, 1, 1, 1, 1, groups};
  const Tensor dy = randn(ops::conv2d(x, w, b, p).shape(), gen);
  for (auto _ : st) {
    Tensor y = ops::conv2d(x, w, b, p);
    benchmark::DoNotOptimize(y.data<float>());
    if (backward) {
      ops::Conv2dGrads g = ops::conv2d_backward(dy, x, w, p, true, true, true);
      benchmark::DoNotOptimize(g.dx.data<float>());
    }
  }
}

void BM_Conv3x3_64x64_FwdBwd(benchmark::State& st) {
  run_conv(st, {64, 64, 32, 32}, {64, 64, 3, 3}, 1, true);
}
void BM_Conv3x3_64x64_Fwd(benchmark::State& st) {
  run_conv(st, {64, 64, 32, 32}, {64, 64, 3, 3}, 1, false);
}
void BM_Depthwise3x3_144_FwdBwd(benchmark::State& st) {
  run_conv(st, {64, 144, 32, 32}, {144, 1, 3, 3}, 144, true);
}
void BM_Depthwise3x3_144_Fwd(benchmark::State& st) {
  run_conv(st, {64, 144, 32, 32}, {144, 1, 3, 3}, 144, false);
}

BENCHMARK(BM_Conv3x3_64x64_FwdBwd)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime()->MeasureProcessCPUTime();
BENCHMARK(BM_Conv3x3_64x64_Fwd)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime()->MeasureProcessCPUTime();
BENCHMARK(BM_Depthwise3x3_144_FwdBwd)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime()->MeasureProcessCPUTime();
BENCHMARK(BM_Depthwise3x3_144_Fwd)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime()->MeasureProcessCPUTime();

}  // namespace

BENCHMARK_MAIN();
