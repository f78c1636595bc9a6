// The thread pool's costs and the work rates behind its cost model (framework/parallel_plan.cc):
// fork/join of an empty region (hot worker, and after a gap long enough for it to sleep), the
// OpenBLAS thread switch, and what one thread gets through per nanosecond in the int8 kernels
// the model budgets for (GEMM multiply-adds, depthwise multiply-adds, elementwise bytes).
//
//   build/bin/bench_parallel --benchmark_repetitions=5 --benchmark_report_aggregates_only
#include <benchmark/benchmark.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "framework/parallel.h"
#include "kernels/f32_eltwise.h"
#include "kernels/qs8_conv.h"
#include "kernels/qs8_dwconv.h"
#include "kernels/qs8_eltwise.h"
#include "kernels/requant.h"

extern "C" void openblas_set_num_threads(int);

namespace {

using namespace finch;
namespace qk = quant::kernels;

// Busy for about `ns` nanoseconds of wall time (the chunk body of the region benchmarks).
void busy(int64_t ns) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::nanoseconds(ns);
  while (std::chrono::steady_clock::now() < until) {
  }
}

// An empty region split in two, back to back: the caller claims both chunks before the worker
// gets to them, so this is the floor (publish, claims, join). Arg: threads.
void BM_RegionEmpty(benchmark::State& st) {
  set_num_threads(int(st.range(0)));
  for (auto _ : st) parallel_for(0, 2, Work::nanoseconds(1e6), [](int64_t b, int64_t) { benchmark::DoNotOptimize(b); });
  set_num_threads(1);
}
BENCHMARK(BM_RegionEmpty)->Arg(1)->Arg(2);

// Two chunks of Arg(1) ns each, back to back (the worker still spinning from the last region):
// at 2 threads the time minus one chunk is the hot fork/join cost a layer pays.
void BM_RegionTwoChunks(benchmark::State& st) {
  set_num_threads(int(st.range(0)));
  const int64_t ns = st.range(1);
  for (auto _ : st) parallel_for(0, 2, Work::nanoseconds(1e6), [&](int64_t, int64_t) { busy(ns); });
  set_num_threads(1);
}
BENCHMARK(BM_RegionTwoChunks)->Args({1, 2000})->Args({2, 2000})->Args({1, 10000})->Args({2, 10000});

// The same through the grain API, which also holds OpenBLAS at one thread during the region.
void BM_RegionEmptyGrainApi(benchmark::State& st) {
  set_num_threads(int(st.range(0)));
  for (auto _ : st) parallel_for(0, 2, 1, [](int64_t b, int64_t) { benchmark::DoNotOptimize(b); });
  set_num_threads(1);
}
BENCHMARK(BM_RegionEmptyGrainApi)->Arg(1)->Arg(2);

// openblas_set_num_threads(1) and back to 2, what every grain-API region pays.
void BM_OpenBlasSwitch(benchmark::State& st) {
  set_num_threads(2);
  for (auto _ : st) {
    openblas_set_num_threads(1);
    openblas_set_num_threads(2);
  }
  set_num_threads(1);
}
BENCHMARK(BM_OpenBlasSwitch);

// One 2-thread region of two 5 us chunks after an idle gap (Arg, microseconds): gaps shorter
// than the worker's spin find it polling; longer ones pay the futex wake-up (the caller then
// runs both chunks while the worker wakes: ~10 us). The region alone is timed. The curve says
// how long a spin pays: up to the gap where cold regions start.
void BM_RegionAfterGap(benchmark::State& st) {
  set_num_threads(2);
  const auto gap = std::chrono::microseconds(st.range(0));
  for (auto _ : st) {
    const auto until = std::chrono::steady_clock::now() + gap;
    while (std::chrono::steady_clock::now() < until) {
    }
    const auto t0 = std::chrono::steady_clock::now();
    parallel_for(0, 2, Work::nanoseconds(1e6), [](int64_t, int64_t) { busy(5000); });
    st.SetIterationTime(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  set_num_threads(1);
}
BENCHMARK(BM_RegionAfterGap)->UseManualTime()->Arg(5)->Arg(20)->Arg(40)->Arg(100)->Arg(300)->Arg(2000);

// The same inside a HotScope (what a program run holds): the worker keeps spinning through any
// gap, so every region should cost what the 5 us gap costs above.
void BM_RegionAfterGapHot(benchmark::State& st) {
  set_num_threads(2);
  const auto gap = std::chrono::microseconds(st.range(0));
  const HotScope hot;
  for (auto _ : st) {
    const auto until = std::chrono::steady_clock::now() + gap;
    while (std::chrono::steady_clock::now() < until) {
    }
    const auto t0 = std::chrono::steady_clock::now();
    parallel_for(0, 2, Work::nanoseconds(1e6), [](int64_t, int64_t) { busy(5000); });
    st.SetIterationTime(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  set_num_threads(1);
}
BENCHMARK(BM_RegionAfterGapHot)->UseManualTime()->Arg(5)->Arg(100)->Arg(2000);

// Wake latency: a region published to a sleeping worker (after a 2 ms idle gap), timed from the
// publish to the worker starting its chunk. The caller's own chunk lasts 300 us, so the worker
// always finds the second chunk; "missed" counts the iterations where it took longer than that.
void BM_WakeLatency(benchmark::State& st) {
  set_num_threads(2);
  int64_t missed = 0;
  for (auto _ : st) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    const std::thread::id caller = std::this_thread::get_id();
    std::atomic<int64_t> started_ns{-1};
    const auto t0 = std::chrono::steady_clock::now();
    parallel_for(0, 2, Work::nanoseconds(1e6), [&](int64_t, int64_t) {
      if (std::this_thread::get_id() != caller)
        started_ns.store((std::chrono::steady_clock::now() - t0).count());
      else
        busy(300000);
    });
    const int64_t ns = started_ns.load();
    if (ns < 0) ++missed;
    st.SetIterationTime(ns < 0 ? 300e-6 : double(ns) * 1e-9);
  }
  st.counters["missed"] = double(missed);
  set_num_threads(1);
}
BENCHMARK(BM_WakeLatency)->UseManualTime()->Iterations(200);

Tensor random_codes(const Shape& s, DType t, uint32_t seed) {
  std::mt19937 rng(seed);
  Tensor x = empty(s, t);
  auto* p = static_cast<uint8_t*>(x.raw_data());
  for (int64_t i = 0; i < x.numel(); ++i) p[i] = uint8_t(rng());
  return x;
}

void rate(benchmark::State& st, double units) {
  st.counters["units_per_ns"] =
      benchmark::Counter(units * 1e-9, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::OneK::kIs1000);
}

// int8 GEMM multiply-adds per ns on one thread, a MobileNet-sized 1×1 conv (Args: C, OC, HW) and a
// 3×3 one (the phase-plane path).
void BM_RateI8Conv(benchmark::State& st) {
  set_num_threads(1);
  const int64_t C = st.range(0), OC = st.range(1), HW = st.range(2), k = st.range(3);
  const Tensor x = random_codes({1, C, HW, HW}, DType::u8, 1), w = random_codes({OC, C, k, k}, DType::i8, 2);
  const std::vector<quant::FixedPointMultiplier> m(size_t(OC), quant::quantize_multiplier(1.0 / 4096));
  const qk::QConv2d conv(w, Tensor(), m, {1, 1, k / 2, k / 2, 1, 1, 1}, DType::u8, 128, 0, -128, 127, DType::i8);
  for (auto _ : st) benchmark::DoNotOptimize(conv.run(x).raw_data());
  rate(st, double(OC * HW * HW * C * k * k));
}
BENCHMARK(BM_RateI8Conv)->Args({64, 128, 28, 1})->Args({128, 128, 14, 1})->Args({32, 32, 14, 3});

// Depthwise 3×3 multiply-adds per ns on one thread (Args: C, HW, stride).
void BM_RateDwI8(benchmark::State& st) {
  set_num_threads(1);
  const int64_t C = st.range(0), HW = st.range(1), s = st.range(2), OHW = (HW - 1) / s + 1;
  const Tensor x = random_codes({1, C, HW, HW}, DType::i8, 3), w = random_codes({C, 1, 3, 3}, DType::i8, 4);
  const auto m = quant::quantize_multipliers(std::vector<double>(size_t(C), 0.0013));
  const qk::QDepthwiseConv2d op(w, Tensor(), m, ops::Conv2dParams{s, s, 1, 1, 1, 1, C}, DType::i8, -3, 5, -128, 127,
                                DType::i8);
  for (auto _ : st) benchmark::DoNotOptimize(op.run(x).raw_data());
  rate(st, double(C * OHW * OHW * 9));
}
BENCHMARK(BM_RateDwI8)->Args({64, 56, 1})->Args({128, 28, 2})->Args({96, 14, 1});

// Elementwise int8 add: bytes read and written per ns on one thread (Arg: elements).
void BM_RateBytesAdd(benchmark::State& st) {
  set_num_threads(1);
  const int64_t n = st.range(0);
  const Tensor a = random_codes({n}, DType::i8, 5), b = random_codes({n}, DType::i8, 6);
  for (auto _ : st)
    benchmark::DoNotOptimize(qk::qs8_add(a, 0.02f, 1, b, 0.03f, -2, 0.04f, 0, -128, 127, DType::i8).raw_data());
  rate(st, 3.0 * double(n));
}
BENCHMARK(BM_RateBytesAdd)->Arg(12544)->Arg(100352);

// The fp32 residual add (kernels/f32_eltwise.h, a pass that only streams): bytes read and
// written per ns on one thread (Arg: elements; ResNet-20's 16×28×28 and MobileNet's 32×112×112).
void BM_RateBytesF32Add(benchmark::State& st) {
  set_num_threads(1);
  const int64_t n = st.range(0);
  std::vector<float> a(static_cast<size_t>(n), 0.5f), b(static_cast<size_t>(n), -0.25f), y(static_cast<size_t>(n));
  for (auto _ : st) {
    qk::f32_add_act(a.data(), b.data(), 1.0f, qk::F32Act::relu, y.data(), n);
    benchmark::DoNotOptimize(y.data());
  }
  rate(st, 3.0 * sizeof(float) * double(n));
}
BENCHMARK(BM_RateBytesF32Add)->Arg(12544)->Arg(401408);

// A plain copy (what padding a plane is): bytes read and written per ns (Arg: floats).
void BM_RateBytesCopy(benchmark::State& st) {
  const int64_t n = st.range(0);
  std::vector<float> a(static_cast<size_t>(n), 0.5f), y(static_cast<size_t>(n));
  for (auto _ : st) {
    std::memcpy(y.data(), a.data(), size_t(n) * sizeof(float));
    benchmark::DoNotOptimize(y.data());
  }
  rate(st, 2.0 * sizeof(float) * double(n));
}
BENCHMARK(BM_RateBytesCopy)->Arg(12544)->Arg(401408);

// One int8 conv at 1 and 2 threads, wall time (Args: threads, C, OC, HW, k, stride): the
// MobileNet v1 α 0.5 224² stem (3→16, 3×3 s2, indirect conv), a 112² pointwise conv, and a
// ResNet-20 3×3 (indirect conv), MobileNetV2's 96→576 1×1 at 7² (indirect conv, weights larger
// than its input). T2/T1 of one layer, apart from a program's data movement.
void BM_LayerThreadsI8(benchmark::State& st) {
  set_num_threads(int(st.range(0)));
  const int64_t C = st.range(1), OC = st.range(2), HW = st.range(3), k = st.range(4), s = st.range(5);
  const Tensor x = random_codes({1, C, HW, HW}, DType::u8, 1), w = random_codes({OC, C, k, k}, DType::i8, 2);
  const std::vector<quant::FixedPointMultiplier> m(size_t(OC), quant::quantize_multiplier(1.0 / 4096));
  const qk::QConv2d conv(w, Tensor(), m, {s, s, k / 2, k / 2, 1, 1, 1}, DType::u8, 128, 0, -128, 127, DType::i8);
  const HotScope hot;
  for (auto _ : st) benchmark::DoNotOptimize(conv.run(x).raw_data());
  set_num_threads(1);
}
BENCHMARK(BM_LayerThreadsI8)->UseRealTime()
    ->Args({1, 3, 16, 224, 3, 2})->Args({2, 3, 16, 224, 3, 2})
    ->Args({1, 16, 32, 112, 1, 1})->Args({2, 16, 32, 112, 1, 1})
    ->Args({1, 64, 64, 56, 1, 1})->Args({2, 64, 64, 56, 1, 1})
    ->Args({1, 16, 16, 28, 3, 1})->Args({2, 16, 16, 28, 3, 1})
    ->Args({1, 96, 576, 7, 1, 1})->Args({2, 96, 576, 7, 1, 1});

// One int8 depthwise 3×3 at 1 and 2 threads, wall time (Args: threads, C, HW, stride).
void BM_LayerThreadsDwI8(benchmark::State& st) {
  set_num_threads(int(st.range(0)));
  const int64_t C = st.range(1), HW = st.range(2), s = st.range(3);
  const Tensor x = random_codes({1, C, HW, HW}, DType::i8, 3), w = random_codes({C, 1, 3, 3}, DType::i8, 4);
  const auto m = quant::quantize_multipliers(std::vector<double>(size_t(C), 0.0013));
  const qk::QDepthwiseConv2d op(w, Tensor(), m, ops::Conv2dParams{s, s, 1, 1, 1, 1, C}, DType::i8, -3, 5, -128, 127,
                                DType::i8);
  const HotScope hot;
  for (auto _ : st) benchmark::DoNotOptimize(op.run(x).raw_data());
  set_num_threads(1);
}
BENCHMARK(BM_LayerThreadsDwI8)->UseRealTime()->Args({1, 16, 112, 1})->Args({2, 16, 112, 1})
    ->Args({1, 64, 56, 1})->Args({2, 64, 56, 1});

}  // namespace

BENCHMARK_MAIN();
