// The exact int8 kernels (kernels/qs8_conv.h) on one thread: the 512×512×512 GEMM (as a
// 1×1 convolution and as a linear layer), a ResNet-20-like 3×3 conv (16→16 at 28×28, pad 1), a
// MobileNet-like 1×1 conv (96→24 at 14×14) and a one-row linear (768→768, the GEMV path), with
// cblas_sgemm 512³ as the yardstick. Each reports GOPS (2 ops per multiply-add) and the share
// of the int8 peak.
//
// Peak: vpdpbusd zmm does 64 u8·i8 multiply-adds; Intel's Sapphire Rapids runs it on ports 0
// and 5, two per cycle (latency 5), so 256 ops/cycle per core. BM_VnniPeak measures what a loop
// of 20 independent vpdpbusd chains reaches; BM_Clock measures the core clock from a chain of
// dependent adds (one per cycle). pct_peak = GOPS / (256 · GHz).
#include <benchmark/benchmark.h>
#include <cblas.h>
#include <immintrin.h>

#include <ctime>
#include <random>

#include "framework/parallel.h"
#include "kernels/qs8_conv.h"
#include "kernels/qs8_eltwise.h"
#include "kernels/qs8_gemm.h"
#include "kernels/requant.h"

namespace {

using namespace finch;
using quant::kernels::QConv2d;
using quant::kernels::QLinear;

// Core clock in GHz: a chain of 10^8 dependent 64-bit imuls (latency 3 cycles on Intel cores
// since Sandy Bridge) takes 3·10^8 cycles of this thread's CPU time (not wall time: the machine
// is shared); the best of 5. (A chain of add-immediates runs faster than one per cycle on
// Golden Cove, which folds them at rename.)
double thread_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}
double clock_ghz() {
  static const double ghz = [] {
    double best = 0;
    for (int rep = 0; rep < 5; ++rep) {
      uint64_t v = 3;
      const double t0 = thread_seconds();
      for (int i = 0; i < 10000000; ++i)
        asm volatile("imul %0, %0\n\timul %0, %0\n\timul %0, %0\n\timul %0, %0\n\timul %0, %0\n\t"
                     "imul %0, %0\n\timul %0, %0\n\timul %0, %0\n\timul %0, %0\n\timul %0, %0"
                     : "+r"(v));
      best = std::max(best, 3e8 / (thread_seconds() - t0) / 1e9);
    }
    return best;
  }();
  return ghz;
}

Tensor random_codes(const Shape& s, DType t, uint32_t seed) {
  std::mt19937 rng(seed);
  Tensor x = empty(s, t);
  auto* p = static_cast<uint8_t*>(x.raw_data());
  for (int64_t i = 0; i < x.numel(); ++i) p[i] = uint8_t(rng());
  return x;
}

std::vector<quant::FixedPointMultiplier> mults(int64_t n) {
  return std::vector<quant::FixedPointMultiplier>(size_t(n), quant::quantize_multiplier(1.0 / 4096));
}

void run_conv(benchmark::State& st, int64_t C, int64_t OC, int64_t H, int64_t W, int64_t k, int64_t pad,
              int64_t stride = 1) {
  set_num_threads(1);
  const Tensor x = random_codes({1, C, H, W}, DType::u8, 1), w = random_codes({OC, C, k, k}, DType::i8, 2);
  const QConv2d conv(w, Tensor(), mults(OC), {stride, stride, pad, pad, 1, 1, 1}, DType::u8, 128, 0, -128, 127,
                     DType::i8);
  const int64_t OH = (H + 2 * pad - k) / stride + 1, OW = (W + 2 * pad - k) / stride + 1;
  for (auto _ : st) {
    Tensor y = conv.run(x);
    benchmark::DoNotOptimize(y.raw_data());
  }
  const double ops = 2.0 * double(OC * OH * OW * C * k * k);
  st.counters["GOPS"] = benchmark::Counter(ops, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::OneK::kIs1000);
  st.counters["peak_GOPS"] = 256 * clock_ghz();
}

void BM_Qs8Gemm512_Conv1x1(benchmark::State& st) { run_conv(st, 512, 512, 16, 32, 1, 0); }
void BM_QConv3x3_16x16_28(benchmark::State& st) { run_conv(st, 16, 16, 28, 28, 3, 1); }
void BM_QConv1x1_96x24_14(benchmark::State& st) { run_conv(st, 96, 24, 14, 14, 1, 0); }
// The int8 ResNet-20 (28×28 input) layers: 3×3 pad 1 at each stage, the strided 3×3 and 1×1
// downsampling convs, and the stem (1 → 16).
void BM_R20_3x3_1x16_28(benchmark::State& st) { run_conv(st, 1, 16, 28, 28, 3, 1); }
// MobileNet v1's RGB stem at 224² (3→16, 3×3 s2): the indirect conv with 3 of 4 bytes per word.
void BM_MN1_3x3s2_3x16_224(benchmark::State& st) { run_conv(st, 3, 16, 224, 224, 3, 1, 2); }
void BM_R20_3x3_32x32_14(benchmark::State& st) { run_conv(st, 32, 32, 14, 14, 3, 1); }
void BM_R20_3x3_64x64_7(benchmark::State& st) { run_conv(st, 64, 64, 7, 7, 3, 1); }
void BM_R20_3x3s2_16x32_28(benchmark::State& st) { run_conv(st, 16, 32, 28, 28, 3, 1, 2); }
void BM_R20_3x3s2_32x64_14(benchmark::State& st) { run_conv(st, 32, 64, 14, 14, 3, 1, 2); }
void BM_R20_1x1s2_16x32_28(benchmark::State& st) { run_conv(st, 16, 32, 28, 28, 1, 0, 2); }
void BM_R20_1x1s2_32x64_14(benchmark::State& st) { run_conv(st, 32, 64, 14, 14, 1, 0, 2); }
// The residual add of ResNet-20's first stage (i8 codes [1, 16, 28, 28], kernels/qs8_eltwise.h),
// alone and as the epilogue of its 3×3 conv (QConv2d::run_add, what a program runs): the f32 rule
// of reference::qadd, whose division is the costly step.
void BM_R20_Add_16x28(benchmark::State& st) {
  set_num_threads(1);
  const Tensor a = random_codes({1, 16, 28, 28}, DType::i8, 3), b = random_codes({1, 16, 28, 28}, DType::i8, 4);
  for (auto _ : st) {
    Tensor y = quant::kernels::qs8_add(a, 0.05f, 3, b, 0.07f, -2, 0.09f, 1, -128, 127, DType::i8);
    benchmark::DoNotOptimize(y.raw_data());
  }
  st.counters["Gelem/s"] = benchmark::Counter(double(a.numel()), benchmark::Counter::kIsIterationInvariantRate,
                                              benchmark::Counter::OneK::kIs1000);
}
void BM_R20_3x3Add_16x16_28(benchmark::State& st) {
  set_num_threads(1);
  const Tensor x = random_codes({1, 16, 28, 28}, DType::u8, 1), w = random_codes({16, 16, 3, 3}, DType::i8, 2);
  const Tensor r = random_codes({1, 16, 28, 28}, DType::i8, 4);
  const QConv2d conv(w, Tensor(), mults(16), {1, 1, 1, 1, 1, 1, 1}, DType::u8, 128, 0, -128, 127, DType::i8);
  quant::kernels::QAddEpilogue e;
  e.s_conv = 0.05f, e.z_conv = 0, e.s_r = 0.07f, e.z_r = -2, e.s_out = 0.09f, e.z_out = 1;
  for (auto _ : st) {
    Tensor y = conv.run_add(x, r, e);
    benchmark::DoNotOptimize(y.raw_data());
  }
}
// A conv with its residual add, fused (run_add: on AVX-512 VNNI the add is in the tiles' register
// epilogues) or as the unfused pair (run, then qs8_add over the codes): MobileNetV2's projections
// at a 28×28 input (K 96..384: the 8×32 GEMM tiles at 28² and 14², the indirect conv at 7²) and
// ResNet-20's 16-channel 3×3 conv.
void run_conv_add(benchmark::State& st, int64_t C, int64_t OC, int64_t H, int64_t W, int64_t k, bool fused) {
  set_num_threads(1);
  const int64_t pad = k / 2;
  const Tensor x = random_codes({1, C, H, W}, DType::u8, 1), w = random_codes({OC, C, k, k}, DType::i8, 2);
  const Tensor r = random_codes({1, OC, H, W}, DType::i8, 4);
  const QConv2d conv(w, Tensor(), mults(OC), {1, 1, pad, pad, 1, 1, 1}, DType::u8, 128, 0, -128, 127, DType::i8);
  quant::kernels::QAddEpilogue e;
  e.s_conv = 0.05f, e.z_conv = 0, e.s_r = 0.07f, e.z_r = -2, e.s_out = 0.09f, e.z_out = 1;
  for (auto _ : st) {
    Tensor y = fused ? conv.run_add(x, r, e)
                     : quant::kernels::qs8_add(conv.run(x), e.s_conv, e.z_conv, r, e.s_r, e.z_r, e.s_out, e.z_out,
                                               e.qmin, e.qmax, e.out_dtype);
    benchmark::DoNotOptimize(y.raw_data());
  }
}
void BM_MN2_1x1Add_144x24_28(benchmark::State& st) { run_conv_add(st, 144, 24, 28, 28, 1, true); }
void BM_MN2_1x1ThenAdd_144x24_28(benchmark::State& st) { run_conv_add(st, 144, 24, 28, 28, 1, false); }
void BM_MN2_1x1Add_192x32_14(benchmark::State& st) { run_conv_add(st, 192, 32, 14, 14, 1, true); }
void BM_MN2_1x1ThenAdd_192x32_14(benchmark::State& st) { run_conv_add(st, 192, 32, 14, 14, 1, false); }
void BM_MN2_1x1Add_384x64_7(benchmark::State& st) { run_conv_add(st, 384, 64, 7, 7, 1, true); }
void BM_MN2_1x1ThenAdd_384x64_7(benchmark::State& st) { run_conv_add(st, 384, 64, 7, 7, 1, false); }
void BM_R20_3x3ThenAdd_16x16_28(benchmark::State& st) { run_conv_add(st, 16, 16, 28, 28, 3, false); }

// MobileNetV2 pointwise convs (input sizes of a 224-pixel net at its 28, 14 and 7 stages).
void BM_MN2_1x1_16x96_28(benchmark::State& st) { run_conv(st, 16, 96, 28, 28, 1, 0); }
void BM_MN2_1x1_144x24_14(benchmark::State& st) { run_conv(st, 144, 24, 14, 14, 1, 0); }
void BM_MN2_1x1_24x144_14(benchmark::State& st) { run_conv(st, 24, 144, 14, 14, 1, 0); }
void BM_MN2_1x1_192x32_7(benchmark::State& st) { run_conv(st, 192, 32, 7, 7, 1, 0); }
void BM_MN2_1x1_576x160_7(benchmark::State& st) { run_conv(st, 576, 160, 7, 7, 1, 0); }
void BM_MN2_1x1_160x960_7(benchmark::State& st) { run_conv(st, 160, 960, 7, 7, 1, 0); }
void BM_MN2_1x1_960x1280_7(benchmark::State& st) { run_conv(st, 960, 1280, 7, 7, 1, 0); }
// MobileNetV2 at a 28×28 input (bench/int8_speed.py's model): 28×28, 7×7 and 4×4 (narrow tile) planes.
void BM_MN2_1x1_24x144_28(benchmark::State& st) { run_conv(st, 24, 144, 28, 28, 1, 0); }
void BM_MN2_1x1_96x576_7(benchmark::State& st) { run_conv(st, 96, 576, 7, 7, 1, 0); }
void BM_MN2_1x1_320x1280_4(benchmark::State& st) { run_conv(st, 320, 1280, 4, 4, 1, 0); }

// The micro-kernel and epilogue alone on 512³ (activation tiles packed beforehand): what the
// operator loses to packing and conversion is the difference to BM_Qs8Gemm512_Conv1x1.
void BM_Qs8Gemm512_TilesOnly(benchmark::State& st) {
  namespace qs8 = quant::kernels::qs8;
  const int64_t n = 512, K4 = n / 4, T = qs8::tile_pixels(), tiles = n / T;
  const Tensor w = random_codes({n, n}, DType::i8, 2), x = random_codes({n, n}, DType::u8, 1);
  const auto wp = qs8::pack_weights(static_cast<const int8_t*>(w.raw_data()), n, n);
  std::vector<uint8_t> xt(size_t(tiles * K4 * T * 4)), out(size_t(n * n));
  std::vector<const uint8_t*> rows(static_cast<size_t>(n));
  for (int64_t t = 0; t < tiles; ++t) {
    for (int64_t k = 0; k < n; ++k) rows[size_t(k)] = static_cast<const uint8_t*>(x.raw_data()) + k * n + t * T;
    qs8::interleave4_rows(rows.data(), K4, T, T, 0, xt.data() + t * K4 * T * 4);
  }
  const std::vector<qs8::RowQuant> rq(size_t(n), qs8::RowQuant{0, quant::quantize_multiplier(1.0 / 4096)});
  const qs8::OutQuant oq{0, -128, 127, false};
  for (auto _ : st)
    for (int64_t t = 0; t < tiles; ++t)
      for (int64_t b = 0; b < n / qs8::kMR; ++b)
        qs8::qu8s8_gemm_tile(wp.data() + b * K4 * qs8::kMR * 4, xt.data() + t * K4 * T * 4, K4, T, qs8::kMR, T,
                             rq.data() + b * qs8::kMR, oq, out.data() + b * qs8::kMR * n + t * T, n, 1);
  st.counters["GOPS"] = benchmark::Counter(2.0 * n * n * n, benchmark::Counter::kIsIterationInvariantRate,
                                           benchmark::Counter::OneK::kIs1000);
  st.counters["peak_GOPS"] = 256 * clock_ghz();
}

void run_linear(benchmark::State& st, int64_t rows, int64_t K, int64_t OC) {
  set_num_threads(1);
  const Tensor x = random_codes({rows, K}, DType::i8, 3), w = random_codes({OC, K}, DType::i8, 4);
  const QLinear lin(w, Tensor(), mults(OC), DType::i8, -3, 0, -128, 127, DType::i8);
  for (auto _ : st) {
    Tensor y = lin.run(x);
    benchmark::DoNotOptimize(y.raw_data());
  }
  st.counters["GOPS"] = benchmark::Counter(2.0 * double(rows * K * OC), benchmark::Counter::kIsIterationInvariantRate,
                                           benchmark::Counter::OneK::kIs1000);
  st.counters["peak_GOPS"] = 256 * clock_ghz();
}
void BM_Qs8Gemm512_Linear(benchmark::State& st) { run_linear(st, 512, 512, 512); }
void BM_Qs8Gemv_Linear768(benchmark::State& st) { run_linear(st, 1, 768, 768); }

void BM_Sgemm512(benchmark::State& st) {
  set_num_threads(1);
  const int n = 512;
  std::vector<float> a(size_t(n * n), 0.5f), b(size_t(n * n), 0.25f), c(size_t(n * n));
  for (auto _ : st) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
    benchmark::DoNotOptimize(c.data());
  }
  st.counters["GFLOPS"] = benchmark::Counter(2.0 * n * n * n, benchmark::Counter::kIsIterationInvariantRate,
                                             benchmark::Counter::OneK::kIs1000);
}

// 20 independent vpdpbusd accumulators (latency 5 × 2 per cycle needs >= 10 in flight), in
// asm so that all stay in registers.
#define FINCH_DP(r) "vpdpbusd %%zmm30, %%zmm31, %%zmm" #r "\n\t"
__attribute__((target("avx512f,avx512vnni"))) void vnni_loop(int64_t n) {
  asm volatile("vpternlogd $0xff, %%zmm31, %%zmm31, %%zmm31\n\tvmovdqa64 %%zmm31, %%zmm30\n\t" ::: "xmm30", "xmm31");
  for (int64_t i = 0; i < n; ++i)
    asm volatile(FINCH_DP(0) FINCH_DP(1) FINCH_DP(2) FINCH_DP(3) FINCH_DP(4) FINCH_DP(5) FINCH_DP(6) FINCH_DP(7)
                     FINCH_DP(8) FINCH_DP(9) FINCH_DP(10) FINCH_DP(11) FINCH_DP(12) FINCH_DP(13) FINCH_DP(14)
                         FINCH_DP(15) FINCH_DP(16) FINCH_DP(17) FINCH_DP(18) FINCH_DP(19) ::
                             : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",
                               "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "xmm18",
                               "xmm19");
}
#undef FINCH_DP

void BM_VnniPeak(benchmark::State& st) {
  if (!__builtin_cpu_supports("avx512vnni")) {
    st.SkipWithError("no AVX-512 VNNI");
    return;
  }
  for (auto _ : st) vnni_loop(100000);
  st.counters["GOPS"] = benchmark::Counter(100000.0 * 20 * 64 * 2, benchmark::Counter::kIsIterationInvariantRate,
                                           benchmark::Counter::OneK::kIs1000);
  st.counters["GHz"] = clock_ghz();
  st.counters["peak_GOPS"] = 256 * clock_ghz();
}

BENCHMARK(BM_VnniPeak)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Qs8Gemm512_Conv1x1)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Qs8Gemm512_TilesOnly)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Qs8Gemm512_Linear)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Sgemm512)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_QConv3x3_16x16_28)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_QConv1x1_96x24_14)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_R20_3x3_1x16_28)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_R20_Add_16x28)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_R20_3x3Add_16x16_28)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_R20_3x3ThenAdd_16x16_28)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_MN2_1x1Add_144x24_28)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_MN2_1x1ThenAdd_144x24_28)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_MN2_1x1Add_192x32_14)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_MN2_1x1ThenAdd_192x32_14)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_MN2_1x1Add_384x64_7)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_MN2_1x1ThenAdd_384x64_7)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_MN1_3x3s2_3x16_224)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_R20_3x3_32x32_14)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_R20_3x3_64x64_7)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_R20_3x3s2_16x32_28)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_R20_3x3s2_32x64_14)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_R20_1x1s2_16x32_28)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_R20_1x1s2_32x64_14)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_MN2_1x1_16x96_28)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_MN2_1x1_144x24_14)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_MN2_1x1_24x144_14)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_MN2_1x1_192x32_7)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_MN2_1x1_576x160_7)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_MN2_1x1_160x960_7)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_MN2_1x1_960x1280_7)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_MN2_1x1_24x144_28)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_MN2_1x1_96x576_7)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_MN2_1x1_320x1280_4)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Qs8Gemv_Linear768)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
