// The pool's cost model: how many threads and chunks a piece of work pays for, and the
// cost-aware 1-D and 2-D parallel_for built on it.
#include <algorithm>
#include <cmath>

#include "framework/parallel.h"
#include "framework/parallel_internal.h"
#include "framework/parallel_split.h"

namespace finch {

namespace {

// Measured with build/bin/bench_parallel (Release) on the reference machine, a 2-core AMD EPYC
// VM with AVX-512 VNNI shared with other jobs (load average 4-5 during the runs), medians of 3:
//   BM_RegionEmpty/2 (publish, the caller claims both empty chunks, join):  0.12-0.25 us
//   BM_OpenBlasSwitch (openblas_set_num_threads(1) and back to 2):          0.014 us
//   BM_RateI8Conv (one thread, CPU time): 1x1 convs 142-158 int8 MACs/ns, 3x3 conv 106
//   BM_RateDwI8: depthwise 3x3 19-42 MACs/ns (stride 2 and small planes at the low end)
//   BM_RateBytesAdd: int8 add 9.8-10.3 bytes/ns
//   BM_RateBytesF32Add, BM_RateBytesCopy: fp32 add 88-108 bytes/ns, memcpy 88-103 (12544 and
//     401408 floats; CPU time, load average 9 during the run)
//   bench_f32_conv (one thread, CPU time): fp32 GEMM tiles 49-56 MACs/ns on 1x1 convs, 27-33
//     on stride-2 3x3 convs through im2col tiles
//   bench_f32_dwconv: fp32 depthwise 1.5-8.6 MACs/ns (stride 2 and small planes at the low end)
// The rates are rounded down a little (the model should rather split a layer slightly too
// small than leave a big one on one thread).
// A hot fork/join (the worker spinning) is a handful of cache-line transfers, ~0.5-1 us; a cold
// one (worker asleep) a futex wake-up, ~5-20 us on this VM, during which the caller keeps
// claiming chunks itself. Measured again in session 9 with the machine at load 9-15 (other
// builds and benchmarks; the runs' autogroup at nice -19 so the pool's two threads mostly had the
// cores), medians of 3: BM_RegionEmpty/2 0.15 us; BM_RegionTwoChunks/2 (two chunks of 2 or 10 us)
// 4.0 and 13.1 us, i.e. ~2-3 us over one chunk; BM_RegionAfterGap (two 5 us chunks) 7.5-8.2 us
// after gaps of 5-40 us (worker spinning), 18-23 us after 100 us-2 ms (asleep), and inside a
// HotScope 7.9, 8.1, 13.7 us after 5 us, 100 us, 2 ms; BM_WakeLatency (futex wake to the worker
// running its chunk) median 59 us, 11 of 200 over 300 us — under that load, not a quiet figure.
// A second thread pays only when its share is well above that:
// kMinThreadNs is the least work per thread (a layer is split from 8 us up), kMinChunkNs the
// least work per chunk (a claim is one contended CAS, ~0.1 us), and up to kChunksPerThread
// chunks per thread, so a worker the OS deschedules mid-region holds back a small chunk only.
constexpr double kI8MacsPerNs = 120.0;
constexpr double kDwI8MacsPerNs = 25.0;
constexpr double kF32MacsPerNs = 40.0;
constexpr double kDwF32MacsPerNs = 4.0;
constexpr double kBytesPerNs = 10.0;
constexpr double kStreamBytesPerNs = 80.0;
constexpr double kMinThreadNs = 4000.0;
constexpr double kMinChunkNs = 2000.0;
constexpr int64_t kChunksPerThread = 4;

// Balanced contiguous split of [0, n) into `parts`: the first n % parts get one more.
inline std::pair<int64_t, int64_t> part_range(int64_t n, int64_t parts, int64_t p) {
  const int64_t base = n / parts, extra = n % parts;
  const int64_t b = p * base + std::min(p, extra);
  return {b, b + base + (p < extra ? 1 : 0)};
}

double total_ns(int64_t iters, Work per_iter) { return double(iters) * std::max(per_iter.ns, 0.0); }

// How many threads `total` ns of work in `iters` pieces pays for (1 = the caller alone).
int64_t threads_for(double total, int64_t iters, int threads) {
  if (iters <= 1 || threads <= 1 || !(total >= 2 * kMinThreadNs)) return 1;  // !(>=) also catches NaN
  return std::min<int64_t>({threads, iters, int64_t(total / kMinThreadNs)});
}

}  // namespace

Work Work::macs_i8(double n) { return {n / kI8MacsPerNs}; }
Work Work::macs_dw_i8(double n) { return {n / kDwI8MacsPerNs}; }
Work Work::macs_f32(double n) { return {n / kF32MacsPerNs}; }
Work Work::macs_dw_f32(double n) { return {n / kDwF32MacsPerNs}; }
Work Work::bytes(double n) { return {n / kBytesPerNs}; }
Work Work::bytes_stream(double n) { return {n / kStreamBytesPerNs}; }

int64_t plan_chunks(int64_t iters, Work per_iter, int threads) {
  const double total = total_ns(iters, per_iter);
  const int64_t t = threads_for(total, iters, threads);
  if (t <= 1) return 1;
  const int64_t by_size = int64_t(std::min(total / kMinChunkNs, double(kMaxChunks)));
  return std::min({iters, std::clamp(by_size, t, t * kChunksPerThread), kMaxChunks});
}

Split2d plan_2d(int64_t m, int64_t n, Work per_cell, int threads) {
  if (m <= 0 || n <= 0) return {};
  const int64_t chunks = plan_chunks(m * n, per_cell, threads);
  if (chunks <= 1) return {};
  if (m >= chunks) return {chunks, 1};
  // Each column part packs its rows again, so columns are cut only as far as the threads need:
  // with at least one row per thread, the rows alone; otherwise every row on its own and the
  // columns cut so each thread has a rectangle.
  const int64_t t = threads_for(total_ns(m * n, per_cell), m * n, threads);
  if (m >= t) return {m, 1};
  return {m, std::min(n, (t + m - 1) / m)};
}

Split2d plan_bands(int64_t m, int64_t n, Work per_cell, int threads) {
  if (m <= 0 || n <= 0) return {};
  const int64_t chunks = plan_chunks(m * n, per_cell, threads);
  if (chunks <= 1) return {};
  const int64_t t = threads_for(total_ns(m * n, per_cell), m * n, threads);
  const int64_t bands = std::min(m, t);
  return {bands, std::clamp<int64_t>(chunks / bands, 1, n)};
}

void parallel_for(int64_t begin, int64_t end, Work per_iter, const std::function<void(int64_t, int64_t)>& fn) {
  const int64_t n = end - begin;
  if (n <= 0) return;
  const int64_t chunks = plan_chunks(n, per_iter, get_num_threads());
  if (chunks <= 1) {
    fn(begin, end);
    return;
  }
  detail::run_chunks(chunks, /*switch_blas=*/false, std::max(1.0, total_ns(n, per_iter) / double(chunks)), [&](int64_t c) {
    const auto [b, e] = part_range(n, chunks, c);
    fn(begin + b, begin + e);
  });
}

void parallel_for_2d(int64_t m, int64_t n, Work per_cell,
                     const std::function<void(int64_t, int64_t, int64_t, int64_t)>& fn) {
  if (m <= 0 || n <= 0) return;
  parallel_for_split(m, n, plan_2d(m, n, per_cell, get_num_threads()), per_cell, fn);
}

void parallel_for_split(int64_t m, int64_t n, Split2d s, Work per_cell,
                        const std::function<void(int64_t, int64_t, int64_t, int64_t)>& fn) {
  if (m <= 0 || n <= 0) return;
  s.m_parts = std::clamp<int64_t>(s.m_parts, 1, m);
  s.n_parts = std::clamp<int64_t>(s.n_parts, 1, n);
  if (s.m_parts * s.n_parts <= 1) {
    fn(0, m, 0, n);
    return;
  }
  // Chunk c is row part c / n_parts, column part c % n_parts.
  const int64_t chunks = s.m_parts * s.n_parts;
  detail::run_chunks(chunks, /*switch_blas=*/false, std::max(1.0, total_ns(m * n, per_cell) / double(chunks)), [&](int64_t c) {
    const auto [m0, m1] = part_range(m, s.m_parts, c / s.n_parts);
    const auto [n0, n1] = part_range(n, s.n_parts, c % s.n_parts);
    fn(m0, m1, n0, n1);
  });
}

}  // namespace finch
