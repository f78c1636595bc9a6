// The int8 depthwise convolution (kernels/qs8_dwconv.h) on MobileNetV2-like 3×3 layers
// (96 ch 14×14 stride 1, 144 ch 28×28 stride 2, padding 1, batch 1) against the scalar reference
// kernel and against finch's fp32 depthwise conv on the same shape, then every other MobileNetV2
// depthwise shape against fp32; qs8_add of [16, 28, 28]
// against reference::qadd. One thread: these measure the kernels, not the pool.
#include <benchmark/benchmark.h>

#include <random>

#include "framework/parallel.h"
#include "framework/random.h"
#include "ops/conv.h"
#include "kernels/qs8_dwconv.h"
#include "kernels/qs8_eltwise.h"
#include "kernels/reference.h"

namespace {

using namespace finch;
namespace qk = quant::kernels;
namespace qr = quant::reference;

struct DwLayer {
  Tensor x, w, bias, xf, wf, bf;
  std::vector<quant::FixedPointMultiplier> m;
  ops::Conv2dParams p;
};

DwLayer layer(int64_t C, int64_t HW, int64_t stride) {
  std::mt19937 rng(1);
  std::uniform_int_distribution<int32_t> code(-128, 127), b(-5000, 5000);
  DwLayer l;
  std::vector<int32_t> xv(size_t(C * HW * HW)), wv(size_t(C * 9)), bv(static_cast<size_t>(C));
  for (auto& v : xv) v = code(rng);
  for (auto& v : wv) v = code(rng);
  for (auto& v : bv) v = b(rng);
  l.x = from_vector(xv, {1, C, HW, HW}).to(DType::i8);
  l.w = from_vector(wv, {C, 1, 3, 3}).to(DType::i8);
  l.bias = from_vector(bv, {C});
  l.xf = l.x.to(DType::f32);
  l.wf = l.w.to(DType::f32);
  l.bf = l.bias.to(DType::f32);
  l.m = quant::quantize_multipliers(std::vector<double>(size_t(C), 0.0013));
  l.p = ops::Conv2dParams{stride, stride, 1, 1, 1, 1, C};
  return l;
}

void BM_Qs8DwConv(benchmark::State& st, int64_t C, int64_t HW, int64_t s) {
  set_num_threads(1);
  const DwLayer l = layer(C, HW, s);
  const qk::QDepthwiseConv2d op(l.w, l.bias, l.m, l.p, DType::i8, -3, 5, -128, 127, DType::i8);
  for (auto _ : st) benchmark::DoNotOptimize(op.run(l.x).raw_data());
}
void BM_RefDwConv(benchmark::State& st, int64_t C, int64_t HW, int64_t s) {
  set_num_threads(1);
  const DwLayer l = layer(C, HW, s);
  const Tensor rq = qr::rq_tensor(l.m);
  for (auto _ : st)
    benchmark::DoNotOptimize(qr::qconv2d(l.x, -3, l.w, l.bias, rq, l.p, 5, -128, 127, DType::i8).raw_data());
}
void BM_F32DwConv(benchmark::State& st, int64_t C, int64_t HW, int64_t s) {
  set_num_threads(1);
  const DwLayer l = layer(C, HW, s);
  for (auto _ : st) benchmark::DoNotOptimize(ops::conv2d(l.xf, l.wf, l.bf, l.p).raw_data());
}

void add_inputs(Tensor& a, Tensor& b) {
  std::mt19937 rng(2);
  std::uniform_int_distribution<int32_t> code(-128, 127);
  std::vector<int32_t> av(16 * 28 * 28), bv(av.size());
  for (auto& v : av) v = code(rng);
  for (auto& v : bv) v = code(rng);
  a = from_vector(av, {16, 28, 28}).to(DType::i8);
  b = from_vector(bv, {16, 28, 28}).to(DType::i8);
}
void BM_Qs8Add(benchmark::State& st) {
  set_num_threads(1);
  Tensor a, b;
  add_inputs(a, b);
  for (auto _ : st)
    benchmark::DoNotOptimize(qk::qs8_add(a, 0.02f, 3, b, 0.03f, -7, 0.04f, 1, -128, 127, DType::i8).raw_data());
}
void BM_RefAdd(benchmark::State& st) {
  set_num_threads(1);
  Tensor a, b;
  add_inputs(a, b);
  for (auto _ : st)
    benchmark::DoNotOptimize(qr::qadd(a, 0.02f, 3, b, 0.03f, -7, 0.04f, 1, -128, 127, DType::i8).raw_data());
}

}  // namespace

BENCHMARK_CAPTURE(BM_Qs8DwConv, c96_14x14_s1, 96, 14, 1);
BENCHMARK_CAPTURE(BM_RefDwConv, c96_14x14_s1, 96, 14, 1);
BENCHMARK_CAPTURE(BM_F32DwConv, c96_14x14_s1, 96, 14, 1);
BENCHMARK_CAPTURE(BM_Qs8DwConv, c144_28x28_s2, 144, 28, 2);
BENCHMARK_CAPTURE(BM_RefDwConv, c144_28x28_s2, 144, 28, 2);
BENCHMARK_CAPTURE(BM_F32DwConv, c144_28x28_s2, 144, 28, 2);
// The rest of MobileNetV2's depthwise layers (int8 and fp32 only: the reference is ~15× slower).
BENCHMARK_CAPTURE(BM_Qs8DwConv, c32_112x112_s1, 32, 112, 1);
BENCHMARK_CAPTURE(BM_F32DwConv, c32_112x112_s1, 32, 112, 1);
BENCHMARK_CAPTURE(BM_Qs8DwConv, c96_112x112_s2, 96, 112, 2);
BENCHMARK_CAPTURE(BM_F32DwConv, c96_112x112_s2, 96, 112, 2);
BENCHMARK_CAPTURE(BM_Qs8DwConv, c144_56x56_s1, 144, 56, 1);
BENCHMARK_CAPTURE(BM_F32DwConv, c144_56x56_s1, 144, 56, 1);
BENCHMARK_CAPTURE(BM_Qs8DwConv, c192_28x28_s1, 192, 28, 1);
BENCHMARK_CAPTURE(BM_F32DwConv, c192_28x28_s1, 192, 28, 1);
BENCHMARK_CAPTURE(BM_Qs8DwConv, c576_14x14_s1, 576, 14, 1);
BENCHMARK_CAPTURE(BM_F32DwConv, c576_14x14_s1, 576, 14, 1);
BENCHMARK_CAPTURE(BM_Qs8DwConv, c576_14x14_s2, 576, 14, 2);
BENCHMARK_CAPTURE(BM_F32DwConv, c576_14x14_s2, 576, 14, 2);
BENCHMARK_CAPTURE(BM_Qs8DwConv, c960_7x7_s1, 960, 7, 1);
BENCHMARK_CAPTURE(BM_F32DwConv, c960_7x7_s1, 960, 7, 1);
// MobileNetV2's last planes at a 28×28 input (bench/int8_speed.py's CIFAR-style model).
BENCHMARK_CAPTURE(BM_Qs8DwConv, c960_4x4_s1, 960, 4, 1);
BENCHMARK_CAPTURE(BM_F32DwConv, c960_4x4_s1, 960, 4, 1);
BENCHMARK(BM_Qs8Add);
BENCHMARK(BM_RefAdd);

BENCHMARK_MAIN();
