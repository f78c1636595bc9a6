// The runtime's fp32 conv (kernels/f32_conv.h: packed weights, 8×NR Highway tiles) against
// ops::conv2d (im2col + OpenBLAS sgemm, or Winograd) on real layer shapes at batch 1: ResNet-20's
// 3×3 convs at a 28×28 input, MobileNetV2-CIFAR's large 1×1 convs (at 14², 7² and 4², its planes
// at a 28×28 input) and MobileNet v1 α0.5 224²'s 1×1 convs (and its stem). Each reports GFLOP/s (2 flops per multiply-add of the direct conv,
// also for the Winograd path, which does 2.25× fewer: its rate is an effective one); the context line
// gives the clock measured here (a chain of dependent integer adds, one per cycle) and the
// core's fp32 peak at that clock for 16-lane fma (2 fma/cycle on Intel AVX-512, 1 zmm fma/cycle
// — two 256-bit pipes — on AMD Zen 4).
#include <benchmark/benchmark.h>

#include <ctime>
#include <cstdio>
#include <random>
#include <string>

#include "framework/parallel.h"
#include "kernels/f32_conv.h"
#include "ops/conv.h"

namespace {

using namespace finch;
namespace qk = quant::kernels;

struct Layer {
  Tensor x, w, b;
  ops::Conv2dParams p;
  int64_t macs;
};

Layer layer(int64_t C, int64_t OC, int64_t HW, int64_t k, int64_t s) {
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(-1, 1);
  Layer l;
  l.x = empty({1, C, HW, HW}, DType::f32);
  l.w = empty({OC, C, k, k}, DType::f32);
  l.b = empty({OC}, DType::f32);
  for (Tensor* t : {&l.x, &l.w, &l.b})
    for (int64_t i = 0; i < t->numel(); ++i) t->data<float>()[i] = u(rng);
  l.p = ops::Conv2dParams{s, s, k / 2, k / 2, 1, 1, 1};
  const int64_t O = ops::conv_out_size(HW, k, s, k / 2, 1);
  l.macs = OC * C * k * k * O * O;
  return l;
}

// flop/s, shown with an SI prefix ("85G" = 85 GFLOP/s).
void report(benchmark::State& st, int64_t macs) {
  st.counters["flops"] = benchmark::Counter(2.0 * double(macs), benchmark::Counter::kIsIterationInvariantRate);
}

void BM_F32Conv(benchmark::State& st, int64_t C, int64_t OC, int64_t HW, int64_t k, int64_t s) {
  set_num_threads(int(st.range(0)));
  const Layer l = layer(C, OC, HW, k, s);
  const qk::F32Conv2d op(l.w, l.b, l.p, qk::f32k::Act::relu, HW, HW);
  const HotScope hot;  // as inside a program run: the worker spins between regions
  for (auto _ : st) benchmark::DoNotOptimize(op.run(l.x).raw_data());
  report(st, l.macs);
}

void BM_OpsConv(benchmark::State& st, int64_t C, int64_t OC, int64_t HW, int64_t k, int64_t s) {
  set_num_threads(int(st.range(0)));
  const Layer l = layer(C, OC, HW, k, s);
  for (auto _ : st) benchmark::DoNotOptimize(ops::conv2d(l.x, l.w, l.b, l.p).raw_data());
  report(st, l.macs);
}

// Cycles per second from a chain of dependent adds (one cycle each on every x86 core), over the
// thread's CPU time (wall time would count the time another process holds the core).
double measure_ghz() {
#if defined(__x86_64__)
  const int64_t n = 50'000'000;
  uint64_t v = 0;
  timespec a{}, b{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
  for (int64_t i = 0; i < n; ++i)
    asm volatile("add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\t"
                 "add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0" : "+r"(v));
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
  const double sec = double(b.tv_sec - a.tv_sec) + 1e-9 * double(b.tv_nsec - a.tv_nsec);
  return 8.0 * double(n) / sec / 1e9;
#else
  return 0;
#endif
}

struct Shape5 {
  const char* name;
  int64_t C, OC, HW, k, s;
};

const Shape5 kShapes[] = {
    {"resnet20_stem_1to16_28", 1, 16, 28, 3, 1},     {"resnet20_16to16_28", 16, 16, 28, 3, 1},
    {"resnet20_16to32_s2_28", 16, 32, 28, 3, 2},     {"resnet20_32to32_14", 32, 32, 14, 3, 1},
    {"resnet20_32to64_s2_14", 32, 64, 14, 3, 2},     {"resnet20_64to64_7", 64, 64, 7, 3, 1},
    {"resnet20_1x1_16to32_s2_28", 16, 32, 28, 1, 2}, {"resnet20_1x1_32to64_s2_14", 32, 64, 14, 1, 2},
    {"mnv2_1x1_144to24_28", 144, 24, 28, 1, 1},      {"mnv2_1x1_160to960_7", 160, 960, 7, 1, 1},
    {"mnv2_1x1_960to320_7", 960, 320, 7, 1, 1},      {"mnv2_1x1_320to1280_7", 320, 1280, 7, 1, 1},
    {"mnv2_1x1_384to64_7", 384, 64, 7, 1, 1},        {"mnv2_1x1_64to384_7", 64, 384, 7, 1, 1},
    {"mnv2_1x1_160to960_4", 160, 960, 4, 1, 1},      {"mnv2_1x1_960to160_4", 960, 160, 4, 1, 1},
    {"mnv2_1x1_320to1280_4", 320, 1280, 4, 1, 1},    {"mnv2_1x1_192to32_14", 192, 32, 14, 1, 1},
    {"mnv1_stem_3to16_s2_224", 3, 16, 224, 3, 2},    {"mnv1_1x1_16to32_112", 16, 32, 112, 1, 1},
    {"mnv1_1x1_32to64_56", 32, 64, 56, 1, 1},        {"mnv1_1x1_64to64_56", 64, 64, 56, 1, 1},
    {"mnv1_1x1_64to128_28", 64, 128, 28, 1, 1},      {"mnv1_1x1_128to128_28", 128, 128, 28, 1, 1},
    {"mnv1_1x1_128to256_14", 128, 256, 14, 1, 1},    {"mnv1_1x1_256to256_14", 256, 256, 14, 1, 1},
    {"mnv1_1x1_256to512_7", 256, 512, 7, 1, 1},      {"mnv1_1x1_512to512_7", 512, 512, 7, 1, 1},
};

}  // namespace

int main(int argc, char** argv) {
  const double ghz = measure_ghz();
  char ctx[160];
  std::snprintf(ctx, sizeof ctx, "%.2f GHz; fp32 peak %.0f GFLOP/s (Zen 4: 1 zmm fma/cycle), %.0f (2 zmm fma/cycle)",
                ghz, ghz * 32, ghz * 64);
  benchmark::AddCustomContext("clock_and_peak", ctx);
  for (const Shape5& s : kShapes) {
    benchmark::RegisterBenchmark((std::string("F32Conv/") + s.name).c_str(), BM_F32Conv, s.C, s.OC, s.HW, s.k, s.s)
        ->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond)->UseRealTime();
    benchmark::RegisterBenchmark((std::string("OpsConv/") + s.name).c_str(), BM_OpsConv, s.C, s.OC, s.HW, s.k, s.s)
        ->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond)->UseRealTime();
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
