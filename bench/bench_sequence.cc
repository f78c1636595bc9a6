// Benchmarks for the sequence primitives through autograd (forward + backward, as training runs
// them): LSTM cell at B=64, IN=H=256 and B=1/H=128 inference; attention at [8, 12, 128, 64]
// with a key padding mask. Second argument = threads. Compare with bench_sequence_torch.py.
#include <benchmark/benchmark.h>

#include <cmath>

#include "autograd/engine.h"
#include "autograd/functional.h"
#include "framework/grad_mode.h"
#include "framework/parallel.h"
#include "framework/random.h"
#include "ops/attention.h"
#include "ops/lstm.h"

namespace finch {
namespace {

Tensor param(const Shape& s, Generator& g, double scale = 1.0) {
  Tensor t = randn(s, g);
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] *= float(scale);
  t.set_requires_grad(true);
  return t;
}

// args: B, H (= IN), threads
void BM_LstmCellTrain(benchmark::State& st) {
  const int64_t B = st.range(0), H = st.range(1);
  set_num_threads(int(st.range(2)));
  Generator g(1);
  const double w = 1.0 / std::sqrt(double(H));
  Tensor x = param({B, H}, g), h = param({B, H}, g), c = param({B, H}, g);
  Tensor w_ih = param({4 * H, H}, g, w), w_hh = param({4 * H, H}, g, w);
  Tensor b_ih = param({4 * H}, g, w), b_hh = param({4 * H}, g, w);
  const Tensor gh = randn({B, H}, g), gc = randn({B, H}, g);
  for (auto _ : st) {
    for (Tensor* t : {&x, &h, &c, &w_ih, &w_hh, &b_ih, &b_hh}) t->set_grad(Tensor());
    auto [h1, c1] = lstm_cell(x, h, c, w_ih, w_hh, b_ih, b_hh);
    backward({h1, c1}, {gh, gc});
    benchmark::DoNotOptimize(w_ih.grad().raw_data());
  }
}

// The kernels alone (ops::lstm_cell + ops::lstm_cell_backward, every gradient), without the
// autograd engine's bookkeeping (its gradient clones into the leaves' .grad etc.).
void BM_LstmCellKernels(benchmark::State& st) {
  const int64_t B = st.range(0), H = st.range(1);
  set_num_threads(int(st.range(2)));
  Generator g(1);
  const Tensor x = randn({B, H}, g), h = randn({B, H}, g), c = randn({B, H}, g);
  const Tensor w_ih = randn({4 * H, H}, g), w_hh = randn({4 * H, H}, g);
  const Tensor b_ih = randn({4 * H}, g), b_hh = randn({4 * H}, g);
  const Tensor gh = randn({B, H}, g), gc = randn({B, H}, g);
  for (auto _ : st) {
    ops::LstmCellOutput f = ops::lstm_cell(x, h, c, w_ih, w_hh, b_ih, b_hh);
    ops::LstmCellGrads d = ops::lstm_cell_backward(gh, gc, x, h, c, w_ih, w_hh, f.gates, f.tanh_c);
    benchmark::DoNotOptimize(d.dw_ih.raw_data());
  }
}

void BM_LstmCellInference(benchmark::State& st) {
  const int64_t B = st.range(0), H = st.range(1);
  set_num_threads(int(st.range(2)));
  Generator g(2);
  const double w = 1.0 / std::sqrt(double(H));
  const Tensor x = randn({B, H}, g), h = randn({B, H}, g), c = randn({B, H}, g);
  const Tensor w_ih = param({4 * H, H}, g, w).detach(), w_hh = param({4 * H, H}, g, w).detach();
  const Tensor b_ih = randn({4 * H}, g), b_hh = randn({4 * H}, g);
  NoGradGuard ng;
  for (auto _ : st) {
    auto [h1, c1] = lstm_cell(x, h, c, w_ih, w_hh, b_ih, b_hh);
    benchmark::DoNotOptimize(h1.raw_data());
  }
}

// args: B, heads, L, D, threads, train (1 = forward + backward)
void BM_Attention(benchmark::State& st) {
  const int64_t B = st.range(0), heads = st.range(1), L = st.range(2), D = st.range(3);
  set_num_threads(int(st.range(4)));
  const bool train = st.range(5) != 0;
  Generator g(3);
  Tensor q = param({B, heads, L, D}, g), k = param({B, heads, L, D}, g), v = param({B, heads, L, D}, g);
  Tensor mask = empty({B, 1, 1, L}, DType::b8);  // key padding: item b has L - 8b valid keys
  bool* m = mask.data<bool>();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t j = 0; j < L; ++j) m[b * L + j] = j < L - 8 * b;
  const Tensor dout = randn({B, heads, L, D}, g);
  for (auto _ : st) {
    if (train) {
      for (Tensor* t : {&q, &k, &v}) t->set_grad(Tensor());
      Tensor o = scaled_dot_product_attention(q, k, v, mask);
      backward(o, dout);
      benchmark::DoNotOptimize(q.grad().raw_data());
    } else {
      NoGradGuard ng;
      Tensor o = scaled_dot_product_attention(q, k, v, mask);
      benchmark::DoNotOptimize(o.raw_data());
    }
  }
}

BENCHMARK(BM_LstmCellTrain)->ArgNames({"B", "H", "threads"})->Args({64, 256, 1})->Args({64, 256, 2})->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_LstmCellKernels)->ArgNames({"B", "H", "threads"})->Args({64, 256, 1})->Args({64, 256, 2})->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_LstmCellInference)->ArgNames({"B", "H", "threads"})->Args({1, 128, 1})->Args({1, 128, 2})->Args({64, 256, 1})->Args({64, 256, 2})->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_Attention)->ArgNames({"B", "heads", "L", "D", "threads", "train"})
    ->Args({8, 12, 128, 64, 1, 1})->Args({8, 12, 128, 64, 2, 1})
    ->Args({8, 12, 128, 64, 1, 0})->Args({8, 12, 128, 64, 2, 0})
    ->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace finch

BENCHMARK_MAIN();
