// Whole recurrent programs side by side: the 1-layer LSTM classifier (C 9 inputs, H 128, K 6
// classes) at T 100, batch 1, through runtime::Program exactly as `finch run` executes them:
//   BM_Fp32Program         lstm + linear (ops/rnn_seq.h, the packed fp32 linear)
//   BM_DynamicInt8Program  dq_lstm + dq_linear (compile/dynamic_rnn.h)
//   BM_StaticInt8Program   quantize → qlstm (kernels::QLstm) → dequantize + linear
//                          (compile/static_rnn.h, calibrated on 8 random-normal batches)
//   BM_StaticInt8LstmKernel kernels::QLstm::run alone, for what the program adds around it
// (args: threads). With BENCH_RNN_PROGRAM_DIR set, the three programs are also written there
// (lstm_fp32.finch, lstm_dynamic.finch, lstm_static.finch) for `finch bench`.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "compile/capture.h"
#include "compile/dynamic_rnn.h"
#include "compile/passes.h"
#include "compile/static_rnn.h"
#include "framework/parallel.h"
#include "framework/random.h"
#include "kernels/qs8_lstm.h"
#include "models/series_rnn.h"
#include "runtime/executor.h"
#include "runtime/program_file.h"

namespace finch {
namespace {

constexpr int64_t kC = 9, kK = 6, kH = 128, kT = 100;

struct Setup {
  std::shared_ptr<models::RnnClassifier> model;
  runtime::Graph fp32;
  Tensor x;
};

Setup& setup() {
  static Setup s = [] {
    Setup r;
    Generator gen(1);
    r.model = std::make_shared<models::RnnClassifier>(false, kC, kK, kH, 1, false, 0.0, &gen);
    r.model->eval();
    r.x = randn({1, kC, kT}, gen);
    r.fp32 = compile::capture_graph(*r.model, r.x);
    compile::fuse_activations(r.fp32);
    compile::fold_constants(r.fp32);
    compile::remove_dead(r.fp32);
    return r;
  }();
  return s;
}

void run_program(benchmark::State& st, runtime::Graph g) {
  set_num_threads(int(st.range(0)));
  runtime::Program p(std::move(g), "bench");
  const Tensor x = setup().x;
  for (auto _ : st) benchmark::DoNotOptimize(p.run(x));
}

void BM_Fp32Program(benchmark::State& st) { run_program(st, setup().fp32); }

void BM_DynamicInt8Program(benchmark::State& st) {
  runtime::Graph g = setup().fp32;
  compile::quantize_dynamic_graph(g);
  run_program(st, std::move(g));
}

runtime::Graph static_graph() {
  runtime::Graph g = setup().fp32;
  Generator gen(2);
  std::vector<std::vector<Tensor>> calib;
  for (int i = 0; i < 8; ++i) calib.push_back({randn({1, kC, kT}, gen)});
  compile::quantize_static_lstm(g, calib);
  return g;
}

void BM_StaticInt8Program(benchmark::State& st) {
  runtime::Graph g = static_graph();
  if (g.nodes.empty() || std::none_of(g.nodes.begin(), g.nodes.end(), [](const runtime::Node& n) { return n.op == "qlstm"; }))
    return st.SkipWithError("the lstm node did not become qlstm");
  run_program(st, std::move(g));
}

void BM_StaticInt8LstmKernel(benchmark::State& st) {
  set_num_threads(int(st.range(0)));
  namespace qk = quant::kernels;
  const auto& w = setup().model->rnn->weights[0];
  const std::vector<float> x = setup().x.transpose(1, 2).contiguous().to_vector<float>();  // [T, 1, C]
  float lo = 0, hi = 0;
  for (float v : x) lo = std::min(lo, v), hi = std::max(hi, v);
  const qk::QLstm lstm(qk::qlstm_calibrate(kC, kH, 0, w.w_ih.contiguous().to_vector<float>(),
                                           w.w_hh.contiguous().to_vector<float>(), w.b_ih.contiguous().to_vector<float>(),
                                           w.b_hh.contiguous().to_vector<float>(), {}, {lo, hi, -1.0f, 1.0f, 4.0f, 0, 0}));
  const float s = (hi - lo) / 255.0f;
  std::vector<int8_t> xq(x.size()), h(static_cast<size_t>(kH)), y(static_cast<size_t>(kT * kH));
  for (size_t i = 0; i < x.size(); ++i) xq[i] = int8_t(std::clamp(std::nearbyint(x[i] / s), -128.0f, 127.0f));
  std::vector<int16_t> c(static_cast<size_t>(kH));
  for (auto _ : st) {
    std::fill(h.begin(), h.end(), 0);
    std::fill(c.begin(), c.end(), 0);
    lstm.run(kT, 1, xq.data(), nullptr, h.data(), c.data(), y.data());
    benchmark::DoNotOptimize(y.data());
  }
}

// Writes the programs when BENCH_RNN_PROGRAM_DIR is set (before the benchmarks run).
const bool kWritten = [] {
  const char* dir = std::getenv("BENCH_RNN_PROGRAM_DIR");
  if (!dir) return false;
  runtime::Graph d = setup().fp32;
  compile::quantize_dynamic_graph(d);
  runtime::write_program(setup().fp32, std::string(dir) + "/lstm_fp32.finch");
  runtime::write_program(d, std::string(dir) + "/lstm_dynamic.finch");
  runtime::write_program(static_graph(), std::string(dir) + "/lstm_static.finch");
  return true;
}();

BENCHMARK(BM_Fp32Program)->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_DynamicInt8Program)->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_StaticInt8Program)->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_StaticInt8LstmKernel)->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace finch

BENCHMARK_MAIN();
