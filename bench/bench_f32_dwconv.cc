// The fp32 depthwise conv of the runtime (kernels/f32_dwconv.h, F32DepthwiseConv2d) against
// ops::conv2d's depthwise path (what fp32 programs ran before) on the 3×3 depthwise layers of
// MobileNetV2-CIFAR at a 28×28 input and of MobileNet v1 α 0.5 at 224×224, batch 1, relu6 fused
// (ops::conv2d's time leaves the activation out). Counters: FLOP/s (2 per multiply-add) and B/s
// (input + output + weight bytes once per run): depthwise is memory-bound, so the bandwidth is
// the number to read. Thread count in the name (/t1, /t2).
#include <benchmark/benchmark.h>

#include <random>

#include "framework/parallel.h"
#include "kernels/f32_dwconv.h"
#include "ops/conv.h"

namespace {

using namespace finch;
namespace qk = quant::kernels;

struct Layer {
  Tensor x, w, b;
  ops::Conv2dParams p;
  double flops = 0, bytes = 0;
};

Layer layer(int64_t C, int64_t HW, int64_t s) {
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> xv(size_t(C * HW * HW)), wv(size_t(C * 9)), bv(static_cast<size_t>(C));
  for (auto& v : xv) v = u(rng);
  for (auto& v : wv) v = u(rng);
  for (auto& v : bv) v = u(rng);
  Layer l;
  l.x = from_vector(xv, {1, C, HW, HW});
  l.w = from_vector(wv, {C, 1, 3, 3});
  l.b = from_vector(bv, {C});
  l.p = ops::Conv2dParams{s, s, 1, 1, 1, 1, C};
  const int64_t O = ops::conv_out_size(HW, 3, s, 1, 1);
  l.flops = 2.0 * double(C * O * O * 9);
  l.bytes = 4.0 * double(C * HW * HW + C * O * O + C * 10);
  return l;
}

void counters(benchmark::State& st, const Layer& l) {
  st.counters["FLOP/s"] = benchmark::Counter(l.flops, benchmark::Counter::kIsIterationInvariantRate);
  st.counters["B/s"] = benchmark::Counter(l.bytes, benchmark::Counter::kIsIterationInvariantRate);
}

void BM_F32DwConv(benchmark::State& st, int64_t C, int64_t HW, int64_t s, int threads) {
  set_num_threads(threads);
  const Layer l = layer(C, HW, s);
  const qk::F32DepthwiseConv2d op(l.w, l.b, l.p, qk::F32Act::relu6);
  for (auto _ : st) benchmark::DoNotOptimize(op.run(l.x).raw_data());
  counters(st, l);
}
void BM_OpsConv2d(benchmark::State& st, int64_t C, int64_t HW, int64_t s, int threads) {
  set_num_threads(threads);
  const Layer l = layer(C, HW, s);
  for (auto _ : st) benchmark::DoNotOptimize(ops::conv2d(l.x, l.w, l.b, l.p).raw_data());
  counters(st, l);
}

}  // namespace

// Wall-clock time and rates (UseRealTime): with 2 threads the CPU time of the calling thread
// alone would overstate them.
#define FINCH_DW(name, C, HW, s)                                           \
  BENCHMARK_CAPTURE(BM_F32DwConv, name/t1, C, HW, s, 1)->UseRealTime();    \
  BENCHMARK_CAPTURE(BM_OpsConv2d, name/t1, C, HW, s, 1)->UseRealTime();    \
  BENCHMARK_CAPTURE(BM_F32DwConv, name/t2, C, HW, s, 2)->UseRealTime();    \
  BENCHMARK_CAPTURE(BM_OpsConv2d, name/t2, C, HW, s, 2)->UseRealTime()

// MobileNetV2-CIFAR, 28×28 input.
FINCH_DW(v2_c32_28x28_s1, 32, 28, 1);
FINCH_DW(v2_c96_28x28_s1, 96, 28, 1);
FINCH_DW(v2_c144_28x28_s1, 144, 28, 1);
FINCH_DW(v2_c144_28x28_s2, 144, 28, 2);
FINCH_DW(v2_c192_14x14_s1, 192, 14, 1);
FINCH_DW(v2_c192_14x14_s2, 192, 14, 2);
FINCH_DW(v2_c384_7x7_s1, 384, 7, 1);
FINCH_DW(v2_c576_7x7_s1, 576, 7, 1);
FINCH_DW(v2_c576_7x7_s2, 576, 7, 2);
FINCH_DW(v2_c960_4x4_s1, 960, 4, 1);
FINCH_DW(v2_c960_7x7_s1, 960, 7, 1);
// MobileNet v1 α 0.5, 224×224 input.
FINCH_DW(v1_c16_112x112_s1, 16, 112, 1);
FINCH_DW(v1_c32_112x112_s2, 32, 112, 2);
FINCH_DW(v1_c64_56x56_s1, 64, 56, 1);
FINCH_DW(v1_c64_56x56_s2, 64, 56, 2);
FINCH_DW(v1_c128_28x28_s1, 128, 28, 1);
FINCH_DW(v1_c128_28x28_s2, 128, 28, 2);
FINCH_DW(v1_c256_14x14_s1, 256, 14, 1);
FINCH_DW(v1_c256_14x14_s2, 256, 14, 2);
FINCH_DW(v1_c512_7x7_s1, 512, 7, 1);

BENCHMARK_MAIN();
