// Benchmarks for the norm/loss family, forward + backward through the autograd API (what a
// training step pays) and through ops/ directly: batch norm (training) on [64, 64, 32, 32],
// layer norm on [4096, 768], cross entropy on [256, 1000]. The PyTorch side is
// bench/bench_norm_torch.py; run both with the same thread count and compare.
//   build/bin/bench_norm --benchmark_filter=Autograd
#include <benchmark/benchmark.h>

#include "autograd/engine.h"
#include "autograd/functional.h"
#include "framework/parallel.h"
#include "framework/random.h"
#include "ops/loss.h"
#include "ops/norm.h"

namespace finch {
namespace {

Tensor rnd(const Shape& s, uint64_t seed) {
  Generator g(seed);
  return randn(s, g);
}

void BM_BatchNormTrainAutograd(benchmark::State& st) {
  set_num_threads(int(st.range(0)));
  Tensor x = rnd({64, 64, 32, 32}, 1).set_requires_grad(true);
  Tensor w = ones({64}).set_requires_grad(true), b = zeros({64}).set_requires_grad(true);
  Tensor rm = zeros({64}), rv = ones({64});
  const Tensor dy = rnd({64, 64, 32, 32}, 2);
  for (auto _ : st) {
    x.set_grad(Tensor()), w.set_grad(Tensor()), b.set_grad(Tensor());
    Tensor y = batch_norm(x, rm, rv, w, b, true);
    backward(y, dy);
    benchmark::DoNotOptimize(x.grad().raw_data());
  }
}

void BM_BatchNormTrainOps(benchmark::State& st) {
  set_num_threads(int(st.range(0)));
  const Tensor x = rnd({64, 64, 32, 32}, 1), dy = rnd({64, 64, 32, 32}, 2);
  const Tensor w = ones({64}), b = zeros({64});
  Tensor rm = zeros({64}), rv = ones({64});
  for (auto _ : st) {
    auto r = ops::batch_norm(x, rm, rv, w, b, true, 0.1, 1e-5);
    auto g = ops::batch_norm_backward(dy, x, w, r.save_mean, r.save_invstd, true);
    benchmark::DoNotOptimize(g.dx.raw_data());
  }
}

void BM_LayerNormAutograd(benchmark::State& st) {
  set_num_threads(int(st.range(0)));
  Tensor x = rnd({4096, 768}, 3).set_requires_grad(true);
  Tensor w = ones({768}).set_requires_grad(true), b = zeros({768}).set_requires_grad(true);
  const Tensor dy = rnd({4096, 768}, 4);
  for (auto _ : st) {
    x.set_grad(Tensor()), w.set_grad(Tensor()), b.set_grad(Tensor());
    Tensor y = layer_norm(x, {768}, w, b);
    backward(y, dy);
    benchmark::DoNotOptimize(x.grad().raw_data());
  }
}

void BM_LayerNormOps(benchmark::State& st) {
  set_num_threads(int(st.range(0)));
  const Tensor x = rnd({4096, 768}, 3), dy = rnd({4096, 768}, 4);
  const Tensor w = ones({768}), b = zeros({768});
  for (auto _ : st) {
    auto r = ops::layer_norm(x, {768}, w, b, 1e-5);
    auto g = ops::layer_norm_backward(dy, x, {768}, w, r.mean, r.rstd);
    benchmark::DoNotOptimize(g.dx.raw_data());
  }
}

void BM_CrossEntropyAutograd(benchmark::State& st) {
  set_num_threads(int(st.range(0)));
  Tensor x = rnd({256, 1000}, 5).set_requires_grad(true);
  Generator g(6);
  const Tensor t = randint(0, 1000, {256}, g);
  for (auto _ : st) {
    x.set_grad(Tensor());
    Tensor loss = cross_entropy(x, t);
    backward(loss);
    benchmark::DoNotOptimize(x.grad().raw_data());
  }
}

void BM_CrossEntropyOps(benchmark::State& st) {
  set_num_threads(int(st.range(0)));
  const Tensor x = rnd({256, 1000}, 5);
  Generator g(6);
  const Tensor t = randint(0, 1000, {256}, g);
  const Tensor one = scalar_tensor(1.0);
  for (auto _ : st) {
    auto r = ops::cross_entropy(x, t, ops::Reduction::mean, -100, 0.0);
    Tensor dx = ops::cross_entropy_backward(one, x, t, r.lse, r.count, ops::Reduction::mean,
                                            -100, 0.0);
    benchmark::DoNotOptimize(dx.raw_data());
  }
}

BENCHMARK(BM_BatchNormTrainAutograd)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_BatchNormTrainOps)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_LayerNormAutograd)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_LayerNormOps)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_CrossEntropyAutograd)->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_CrossEntropyOps)->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace
}  // namespace finch

BENCHMARK_MAIN();
