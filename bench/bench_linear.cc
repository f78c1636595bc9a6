// linear forward+backward on the reference layer: 1024→1024 on 256 rows (bias). The argument
// is the thread count. Compare with bench/torch_conv_linear.py.
#include <benchmark/benchmark.h>

#include "framework/parallel.h"
#include "framework/random.h"
#include "ops/matmul.h"

namespace {

using namespace finch;

void run_linear(benchmark::State& st, bool backward) {
  set_num_threads(int(st.range(0)));
  Generator gen(1);
  const Tensor x = randn({256, 1024}, gen), w = randn({1024, 1024}, gen), b = randn({1024}, gen);
  const Tensor dy = randn({256, 1024}, gen);
  for (auto _ : st) {
    Tensor y = ops::linear(x, w, b);
    benchmark::DoNotOptimize(y.data<float>());
    if (backward) {
      ops::LinearGrads g = ops::linear_backward(dy, x, w, true, true, true);
      benchmark::DoNotOptimize(g.dx.data<float>());
    }
  }
}

void BM_Linear1024_256_FwdBwd(benchmark::State& st) { run_linear(st, true); }
void BM_Linear1024_256_Fwd(benchmark::State& st) { run_linear(st, false); }

BENCHMARK(BM_Linear1024_256_FwdBwd)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime()->MeasureProcessCPUTime();
BENCHMARK(BM_Linear1024_256_Fwd)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime()->MeasureProcessCPUTime();

}  // namespace

BENCHMARK_MAIN();
