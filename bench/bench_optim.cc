// Optimizer step and gradient clipping throughput: one parameter of N floats (ResNet-18 has
// 11.7M) with a gradient, as torch.optim does per step. Compare with the torch timing printed
// by the snippet in the report (same thread count).
#include <benchmark/benchmark.h>

#include <cstdlib>

#include "autograd/optim/optim.h"
#include "framework/parallel.h"
#include "framework/random.h"

using namespace finch;

namespace {

std::vector<Tensor> params_with_grads(int64_t n) {
  Generator g(1);
  Tensor p = randn({n}, g);
  p.set_requires_grad(true);
  p.set_grad(randn({n}, g));
  return {p};
}

template <typename Opt, typename Options>
void run(benchmark::State& state, const Options& o) {
  auto ps = params_with_grads(state.range(0));
  Opt opt(ps, o);
  for (auto _ : state) {
    opt.step();
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}

void BM_SGDMomentum(benchmark::State& s) { run<optim::SGD>(s, optim::SGDOptions{.lr = 0.1, .momentum = 0.9, .weight_decay = 5e-4}); }
void BM_Adam(benchmark::State& s) { run<optim::Adam>(s, optim::AdamOptions{}); }
void BM_AdamW(benchmark::State& s) { run<optim::AdamW>(s, optim::AdamOptions{.weight_decay = 1e-2}); }

void BM_ClipGradNorm(benchmark::State& state) {
  auto ps = params_with_grads(state.range(0));
  for (auto _ : state) benchmark::DoNotOptimize(optim::clip_grad_norm_(ps, 1e9));
  state.SetItemsProcessed(state.iterations() * state.range(0));
}

}  // namespace

BENCHMARK(BM_SGDMomentum)->Arg(1 << 20)->Arg(11'700'000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Adam)->Arg(1 << 20)->Arg(11'700'000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_AdamW)->Arg(1 << 20)->Arg(11'700'000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ClipGradNorm)->Arg(1 << 20)->Arg(11'700'000)->Unit(benchmark::kMillisecond);

int main(int argc, char** argv) {
  // FINCH_BENCH_THREADS=N (default 2, this machine's core count); compare with torch at the same N.
  const char* env = std::getenv("FINCH_BENCH_THREADS");
  finch::set_num_threads(env ? std::atoi(env) : 2);
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  return 0;
}
