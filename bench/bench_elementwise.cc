// Google Benchmark for the elementwise family on a conv-sized activation [64, 64, 32, 32]:
// add/mul same-shape and with channel broadcast, relu/gelu/sigmoid forward and backward
// kernels, and sum_to's channel-bias reduction. The argument is the thread count.
// Compare with bench/bench_elementwise_torch.py (same shapes, torch.set_num_threads(same)).
// `bench_elementwise --min-of=K` skips Google Benchmark and prints, per case and thread count,
// the fastest of at least K single calls over at least 0.5 s: on a shared, noisy machine that is
// the fairest number to put beside the torch script's minimum.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "framework/parallel.h"
#include "framework/random.h"
#include "ops/activation.h"
#include "ops/broadcast.h"
#include "ops/elementwise.h"

using namespace finch;

namespace {

const Shape kAct = {64, 64, 32, 32};  // N, C, H, W
const Shape kChan = {1, 64, 1, 1};

Tensor rnd(const Shape& s, uint64_t seed) {
  Generator g(seed);
  return randn(s, g, DType::f32);
}

template <typename F>
void run(benchmark::State& state, int64_t bytes_per_iter, F&& f) {
  set_num_threads(int(state.range(0)));
  for (auto _ : state) {
    Tensor y = f();
    benchmark::DoNotOptimize(y.raw_data());
  }
  state.SetBytesProcessed(state.iterations() * bytes_per_iter);
}

const int64_t kN = 64 * 64 * 32 * 32;

void BM_add_same(benchmark::State& s) {
  const Tensor a = rnd(kAct, 1), b = rnd(kAct, 2);
  run(s, 12 * kN, [&] { return ops::add(a, b); });
}
void BM_mul_same(benchmark::State& s) {
  const Tensor a = rnd(kAct, 1), b = rnd(kAct, 2);
  run(s, 12 * kN, [&] { return ops::mul(a, b); });
}
void BM_add_channel(benchmark::State& s) {
  const Tensor a = rnd(kAct, 1), b = rnd(kChan, 2);
  run(s, 8 * kN, [&] { return ops::add(a, b); });
}
void BM_mul_channel(benchmark::State& s) {
  const Tensor a = rnd(kAct, 1), b = rnd(kChan, 2);
  run(s, 8 * kN, [&] { return ops::mul(a, b); });
}
void BM_relu_fwd(benchmark::State& s) {
  const Tensor x = rnd(kAct, 3);
  run(s, 8 * kN, [&] { return ops::relu(x); });
}
void BM_relu_bwd(benchmark::State& s) {
  const Tensor y = ops::relu(rnd(kAct, 3)), g = rnd(kAct, 4);
  run(s, 12 * kN, [&] { return ops::relu_backward(g, y); });
}
void BM_gelu_fwd(benchmark::State& s) {
  const Tensor x = rnd(kAct, 3);
  run(s, 8 * kN, [&] { return ops::gelu(x); });
}
void BM_gelu_bwd(benchmark::State& s) {
  const Tensor x = rnd(kAct, 3), g = rnd(kAct, 4);
  run(s, 12 * kN, [&] { return ops::gelu_backward(g, x); });
}
void BM_sigmoid_fwd(benchmark::State& s) {
  const Tensor x = rnd(kAct, 3);
  run(s, 8 * kN, [&] { return ops::sigmoid(x); });
}
void BM_sigmoid_bwd(benchmark::State& s) {
  const Tensor y = ops::sigmoid(rnd(kAct, 3)), g = rnd(kAct, 4);
  run(s, 12 * kN, [&] { return ops::sigmoid_backward(g, y); });
}
void BM_sum_to_channel(benchmark::State& s) {
  const Tensor g = rnd(kAct, 5);
  run(s, 4 * kN, [&] { return ops::sum_to(g, kChan); });
}

struct Case {
  const char* name;
  std::function<std::function<Tensor()>()> make;  // builds inputs, returns the timed call
};

std::vector<Case> cases() {
  auto act = [] { return rnd(kAct, 3); };
  return {
      {"add_same", [] { Tensor a = rnd(kAct, 1), b = rnd(kAct, 2); return std::function<Tensor()>([=] { return ops::add(a, b); }); }},
      {"mul_same", [] { Tensor a = rnd(kAct, 1), b = rnd(kAct, 2); return std::function<Tensor()>([=] { return ops::mul(a, b); }); }},
      {"add_channel", [] { Tensor a = rnd(kAct, 1), b = rnd(kChan, 2); return std::function<Tensor()>([=] { return ops::add(a, b); }); }},
      {"mul_channel", [] { Tensor a = rnd(kAct, 1), b = rnd(kChan, 2); return std::function<Tensor()>([=] { return ops::mul(a, b); }); }},
      {"relu_fwd", [=] { Tensor x = act(); return std::function<Tensor()>([=] { return ops::relu(x); }); }},
      {"relu_bwd", [=] { Tensor y = ops::relu(act()), g = rnd(kAct, 4); return std::function<Tensor()>([=] { return ops::relu_backward(g, y); }); }},
      {"gelu_fwd", [=] { Tensor x = act(); return std::function<Tensor()>([=] { return ops::gelu(x); }); }},
      {"gelu_bwd", [=] { Tensor x = act(), g = rnd(kAct, 4); return std::function<Tensor()>([=] { return ops::gelu_backward(g, x); }); }},
      {"sigmoid_fwd", [=] { Tensor x = act(); return std::function<Tensor()>([=] { return ops::sigmoid(x); }); }},
      {"sigmoid_bwd", [=] { Tensor y = ops::sigmoid(act()), g = rnd(kAct, 4); return std::function<Tensor()>([=] { return ops::sigmoid_backward(g, y); }); }},
      {"sum_to_channel", [] { Tensor g = rnd(kAct, 5); return std::function<Tensor()>([=] { return ops::sum_to(g, kChan); }); }},
  };
}

int min_of_mode(int k) {
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    for (const Case& c : cases()) {
      auto f = c.make();
      f();
      double best = 1e30;
      // At least k calls and at least 0.5 s, like the torch script, so both minimums come from
      // comparable numbers of samples.
      const auto start = std::chrono::steady_clock::now();
      const auto min_time = std::chrono::milliseconds(500);
      for (int i = 0; i < k || std::chrono::steady_clock::now() - start < min_time; ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        Tensor y = f();
        benchmark::DoNotOptimize(y.raw_data());
        best = std::min(best, std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
      }
      std::printf("finch %s/%d min %.1f us\n", c.name, threads, best);
      std::fflush(stdout);
    }
  }
  return 0;
}

}  // namespace

#define FINCH_BENCH(fn) BENCHMARK(fn)->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond)->UseRealTime()
FINCH_BENCH(BM_add_same);
FINCH_BENCH(BM_mul_same);
FINCH_BENCH(BM_add_channel);
FINCH_BENCH(BM_mul_channel);
FINCH_BENCH(BM_relu_fwd);
FINCH_BENCH(BM_relu_bwd);
FINCH_BENCH(BM_gelu_fwd);
FINCH_BENCH(BM_gelu_bwd);
FINCH_BENCH(BM_sigmoid_fwd);
FINCH_BENCH(BM_sigmoid_bwd);
FINCH_BENCH(BM_sum_to_channel);

int main(int argc, char** argv) {
  if (argc > 1 && std::strncmp(argv[1], "--min-of=", 9) == 0) return min_of_mode(std::stoi(argv[1] + 9));
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
