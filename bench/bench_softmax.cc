// Softmax / log_softmax forward and backward on attention-like rows [256·12, 128] and classifier
// rows [64, 1000], a softmax over a non-last dim, and the bias-gradient reduction sum over
// {0, 2, 3} of [64, 64, 32, 32]. The argument is the thread count.
// Compare with bench/bench_softmax_torch.py (same shapes, torch.set_num_threads(same)).
#include <benchmark/benchmark.h>

#include "framework/parallel.h"
#include "framework/random.h"
#include "ops/reduce.h"
#include "ops/softmax.h"

namespace {

using finch::Tensor;

Tensor input(const finch::Shape& s) {
  finch::Generator g(42);
  return finch::randn(s, g);
}

void softmax_fwd(benchmark::State& st, finch::Shape shape, int64_t dim, bool log) {
  finch::set_num_threads(int(st.range(0)));
  const Tensor x = input(shape);
  for (auto _ : st) {
    Tensor y = log ? finch::ops::log_softmax(x, dim) : finch::ops::softmax(x, dim);
    benchmark::DoNotOptimize(y.raw_data());
  }
  st.SetBytesProcessed(int64_t(st.iterations()) * int64_t(x.nbytes()) * 2);
}

void softmax_bwd(benchmark::State& st, finch::Shape shape, int64_t dim, bool log) {
  finch::set_num_threads(int(st.range(0)));
  const Tensor x = input(shape);
  const Tensor y = log ? finch::ops::log_softmax(x, dim) : finch::ops::softmax(x, dim);
  const Tensor dy = input(shape);
  for (auto _ : st) {
    Tensor dx = log ? finch::ops::log_softmax_backward(dy, y, dim) : finch::ops::softmax_backward(dy, y, dim);
    benchmark::DoNotOptimize(dx.raw_data());
  }
  st.SetBytesProcessed(int64_t(st.iterations()) * int64_t(x.nbytes()) * 3);
}

void sum_nhw(benchmark::State& st) {
  finch::set_num_threads(int(st.range(0)));
  const Tensor x = input({64, 64, 32, 32});
  for (auto _ : st) {
    Tensor y = finch::ops::sum(x, {0, 2, 3});
    benchmark::DoNotOptimize(y.raw_data());
  }
  st.SetBytesProcessed(int64_t(st.iterations()) * int64_t(x.nbytes()));
}

void sum_last(benchmark::State& st) {
  finch::set_num_threads(int(st.range(0)));
  const Tensor x = input({3072, 768});
  for (auto _ : st) {
    Tensor y = finch::ops::sum(x, {-1});
    benchmark::DoNotOptimize(y.raw_data());
  }
  st.SetBytesProcessed(int64_t(st.iterations()) * int64_t(x.nbytes()));
}

}  // namespace

BENCHMARK_CAPTURE(softmax_fwd, attn_3072x128, finch::Shape{3072, 128}, -1, false)->Arg(1)->Arg(2);
BENCHMARK_CAPTURE(softmax_bwd, attn_3072x128, finch::Shape{3072, 128}, -1, false)->Arg(1)->Arg(2);
BENCHMARK_CAPTURE(softmax_fwd, cls_64x1000, finch::Shape{64, 1000}, -1, false)->Arg(1)->Arg(2);
BENCHMARK_CAPTURE(softmax_bwd, cls_64x1000, finch::Shape{64, 1000}, -1, false)->Arg(1)->Arg(2);
BENCHMARK_CAPTURE(softmax_fwd, log_cls_64x1000, finch::Shape{64, 1000}, -1, true)->Arg(1)->Arg(2);
BENCHMARK_CAPTURE(softmax_bwd, log_cls_64x1000, finch::Shape{64, 1000}, -1, true)->Arg(1)->Arg(2);
BENCHMARK_CAPTURE(softmax_fwd, dim1_32x128x96, finch::Shape{32, 128, 96}, 1, false)->Arg(1)->Arg(2);
BENCHMARK_CAPTURE(softmax_bwd, dim1_32x128x96, finch::Shape{32, 128, 96}, 1, false)->Arg(1)->Arg(2);
BENCHMARK(sum_nhw)->Arg(1)->Arg(2);
BENCHMARK(sum_last)->Arg(1)->Arg(2);

BENCHMARK_MAIN();
