// The int8 LSTM sequence against finch's fp32 cell: batch B, T steps, IN inputs, H hidden, as
// the issue measures it (B 1, T 100, IN 32, H 128, 1 and 2 threads). Rows:
//   BM_QLstmStatic   the static int8 LSTM (kernels::QLstm::run over the whole sequence)
//   BM_QLstmDynamic  the dynamic int8 LSTM (kernels::QDynamicLstm: int8 weights, per-row dynamic
//                    activations, f32 gates)
//   BM_F32LstmCell   ops::lstm_cell once per step (f32 BLAS gemms + the fused gate pass)
//   BM_F32LstmSeq    ops::lstm_seq, the whole-sequence f32 LSTM (input GEMM once, then per step)
//   BM_QGruStatic    the static int8 GRU (kernels::QGru), same shapes
//   BM_QDynLinear    kernels::QDynamicLinear::run on one row (rows 1, K 32 / 128, OC 512: the
//                    LSTM's two per-step products), through the Tensor API
// Peers (PyTorch quantize_dynamic, ONNX Runtime DynamicQuantizeLSTM) side by side in one run:
// bench/qs8_lstm_vs_peers.py, which runs this binary too.
#include <benchmark/benchmark.h>

#include <cmath>
#include <random>

#include "framework/parallel.h"
#include "kernels/qs8_dq_lstm.h"
#include "kernels/qs8_gru.h"
#include "kernels/qs8_lstm.h"
#include "ops/lstm.h"
#include "ops/rnn_seq.h"

namespace finch {
namespace {

namespace qk = quant::kernels;

struct Weights {
  std::vector<float> w_ih, w_hh, b_ih, b_hh, x;
};

Weights make_weights(int64_t T, int64_t B, int64_t IN, int64_t H) {
  std::mt19937 rng(1);
  const float a = 1.0f / std::sqrt(float(H));
  std::uniform_real_distribution<float> u(-a, a);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  Weights w;
  for (auto* v : {&w.w_ih, &w.w_hh, &w.b_ih, &w.b_hh}) v->resize(size_t(4 * H));
  w.w_ih.resize(size_t(4 * H * IN)), w.w_hh.resize(size_t(4 * H * H));
  for (auto* v : {&w.w_ih, &w.w_hh, &w.b_ih, &w.b_hh})
    for (auto& e : *v) e = u(rng);
  w.x.resize(size_t(T * B * IN));
  for (auto& e : w.x) e = nd(rng);
  return w;
}

// args: T, B, IN, H, threads
void BM_QLstmStatic(benchmark::State& st) {
  const int64_t T = st.range(0), B = st.range(1), IN = st.range(2), H = st.range(3);
  set_num_threads(int(st.range(4)));
  const Weights w = make_weights(T, B, IN, H);
  const qk::QLstm lstm(qk::qlstm_calibrate(IN, H, 0, w.w_ih, w.w_hh, w.b_ih, w.b_hh, {},
                                           {-4.0f, 4.0f, -1.0f, 1.0f, 4.0f, 0.0f, 0.0f}));
  std::vector<int8_t> x(w.x.size()), h(size_t(B * H)), y(size_t(T * B * H));
  for (size_t i = 0; i < x.size(); ++i) x[i] = int8_t(std::clamp(std::nearbyint(w.x[i] * 32.0f), -128.0f, 127.0f));
  std::vector<int16_t> c(size_t(B * H));
  for (auto _ : st) {
    std::fill(h.begin(), h.end(), 0);
    std::fill(c.begin(), c.end(), 0);
    lstm.run(T, B, x.data(), nullptr, h.data(), c.data(), y.data());
    benchmark::DoNotOptimize(y.data());
  }
}

// The static int8 GRU on the same shapes (3 gates instead of 4).
void BM_QGruStatic(benchmark::State& st) {
  const int64_t T = st.range(0), B = st.range(1), IN = st.range(2), H = st.range(3);
  set_num_threads(int(st.range(4)));
  const Weights w = make_weights(T, B, IN, H);
  const std::vector<float> wih(w.w_ih.begin(), w.w_ih.begin() + 3 * H * IN);
  const std::vector<float> whh(w.w_hh.begin(), w.w_hh.begin() + 3 * H * H);
  const std::vector<float> bih(w.b_ih.begin(), w.b_ih.begin() + 3 * H), bhh(w.b_hh.begin(), w.b_hh.begin() + 3 * H);
  const qk::QGru gru(qk::qgru_calibrate(IN, H, wih, whh, bih, bhh, {-4.0f, 4.0f, -1.0f, 1.0f}));
  std::vector<int8_t> x(w.x.size()), h(size_t(B * H)), y(size_t(T * B * H));
  for (size_t i = 0; i < x.size(); ++i) x[i] = int8_t(std::clamp(std::nearbyint(w.x[i] * 32.0f), -128.0f, 127.0f));
  for (auto _ : st) {
    std::fill(h.begin(), h.end(), 0);
    gru.run(T, B, x.data(), nullptr, h.data(), y.data());
    benchmark::DoNotOptimize(y.data());
  }
}

void BM_QLstmDynamic(benchmark::State& st) {
  const int64_t T = st.range(0), B = st.range(1), IN = st.range(2), H = st.range(3);
  set_num_threads(int(st.range(4)));
  const Weights w = make_weights(T, B, IN, H);
  const qk::QDynamicLstm lstm(IN, H, w.w_ih, w.w_hh, w.b_ih, w.b_hh);
  std::vector<float> h(size_t(B * H)), c(size_t(B * H)), y(size_t(T * B * H));
  for (auto _ : st) {
    std::fill(h.begin(), h.end(), 0.0f);
    std::fill(c.begin(), c.end(), 0.0f);
    lstm.run(T, B, w.x.data(), nullptr, h.data(), c.data(), y.data());
    benchmark::DoNotOptimize(y.data());
  }
}

void BM_F32LstmCell(benchmark::State& st) {
  const int64_t T = st.range(0), B = st.range(1), IN = st.range(2), H = st.range(3);
  set_num_threads(int(st.range(4)));
  const Weights w = make_weights(T, B, IN, H);
  const Tensor wih = from_vector(w.w_ih, {4 * H, IN}), whh = from_vector(w.w_hh, {4 * H, H});
  const Tensor bih = from_vector(w.b_ih, {4 * H}), bhh = from_vector(w.b_hh, {4 * H});
  const Tensor x = from_vector(w.x, {T, B, IN});
  std::vector<Tensor> xs;
  for (int64_t t = 0; t < T; ++t) xs.push_back(x.select(0, t));
  for (auto _ : st) {
    Tensor h = zeros({B, H}), c = zeros({B, H});
    for (int64_t t = 0; t < T; ++t) {
      auto out = ops::lstm_cell(xs[size_t(t)], h, c, wih, whh, bih, bhh);
      h = out.h, c = out.c;
    }
    benchmark::DoNotOptimize(h.raw_data());
  }
}

// The whole-sequence float LSTM (ops::lstm_seq: one input GEMM, then h·W_hhᵀ and the fused gate
// pass per step), finch's fastest fp32 path.
void BM_F32LstmSeq(benchmark::State& st) {
  const int64_t T = st.range(0), B = st.range(1), IN = st.range(2), H = st.range(3);
  set_num_threads(int(st.range(4)));
  const Weights w = make_weights(T, B, IN, H);
  const ops::RnnWeights rw{from_vector(w.w_ih, {4 * H, IN}), from_vector(w.w_hh, {4 * H, H}),
                           from_vector(w.b_ih, {4 * H}), from_vector(w.b_hh, {4 * H}), Tensor()};
  const Tensor x = from_vector(w.x, {T, B, IN});
  for (auto _ : st) {
    auto out = ops::lstm_seq(x, Tensor(), Tensor(), rw, Tensor(), false);
    benchmark::DoNotOptimize(out.y.raw_data());
  }
}

// args: K, OC, threads
void BM_QDynLinear(benchmark::State& st) {
  const int64_t K = st.range(0), OC = st.range(1);
  set_num_threads(int(st.range(2)));
  std::mt19937 rng(2);
  std::uniform_int_distribution<int> wi(-127, 127);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<int8_t> w(static_cast<size_t>(OC * K));
  for (auto& e : w) e = int8_t(wi(rng));
  std::vector<float> s_w(static_cast<size_t>(OC)), bias(static_cast<size_t>(OC)), xv(static_cast<size_t>(K));
  for (auto& e : s_w) e = 0.01f + 0.001f * std::abs(nd(rng));
  for (auto& e : bias) e = nd(rng);
  for (auto& e : xv) e = nd(rng);
  const qk::QDynamicLinear lin(from_vector(w, {OC, K}), s_w, from_vector(bias, {OC}), "none");
  const Tensor x = from_vector(xv, {1, K});
  for (auto _ : st) {
    Tensor y = lin.run(x);
    benchmark::DoNotOptimize(y.raw_data());
  }
}

void linear_args(benchmark::internal::Benchmark* b) {
  for (int threads : {1, 2})
    for (int K : {32, 128}) b->Args({K, 512, threads});
  b->Unit(benchmark::kMicrosecond)->UseRealTime();
}

void args(benchmark::internal::Benchmark* b) {
  for (int threads : {1, 2}) b->Args({100, 1, 32, 128, threads});
  b->Unit(benchmark::kMicrosecond)->UseRealTime();
}

BENCHMARK(BM_QLstmStatic)->Apply(args);
BENCHMARK(BM_QLstmDynamic)->Apply(args);
BENCHMARK(BM_QGruStatic)->Apply(args);
BENCHMARK(BM_F32LstmCell)->Apply(args);
BENCHMARK(BM_F32LstmSeq)->Apply(args);
BENCHMARK(BM_QDynLinear)->Apply(linear_args);

}  // namespace
}  // namespace finch

BENCHMARK_MAIN();
