// The pool's cost model: how many threads and chunks a piece of work pays for, and the
// cost-aware 1-D and 2-D parallel_for built on it.
#include <algorithm>
#include <cmath>

#include "framework/parallel.h"
#include "framework/parallel_internal.h"

namespace finch {

namespace {

// Measured with bench/bench_parallel.cc (Release, 2 threads) on the reference machine: 2-core
// AMD EPYC (Zen 4, AVX-512 VNNI) VM, shared with other jobs, so these are medians of noisy runs.
//   BM_RegionEmpty (back-to-back regions, the worker still spinning):  ~1.5-3 us per region
//   BM_RegionAfterGap/200us (the worker asleep, futex wake-up):        ~10-40 us
//   BM_OpenBlasSwitch (openblas_set_num_threads(1) and back):          ~0.05 us
//   int8 GEMM tiles (bench_qs8_gemm, 1 thread):   ~60 int8 MACs/ns; depthwise ~8 MACs/ns
//   elementwise int8 passes:                      ~8 bytes/ns
// A second thread pays only when its share of the work is well above the fork/join it costs:
// kMinThreadNs is the least work per thread (about 4 hot fork/joins, so a layer gains at least
// ~2x what it risks); kMinChunkNs the least work per chunk (a chunk claim is one contended CAS,
// ~0.1-0.2 us); up to kChunksPerThread chunks per thread, so a worker the OS deschedules
// mid-region holds back at most 1/kChunksPerThread of its share.
constexpr double kI8MacsPerNs = 60.0;
constexpr double kDwI8MacsPerNs = 8.0;
constexpr double kF32MacsPerNs = 30.0;
constexpr double kBytesPerNs = 8.0;
constexpr double kMinThreadNs = 8000.0;
constexpr double kMinChunkNs = 4000.0;
constexpr int64_t kChunksPerThread = 4;

// Balanced contiguous split of [0, n) into `parts`: the first n % parts get one more.
inline std::pair<int64_t, int64_t> part_range(int64_t n, int64_t parts, int64_t p) {
  const int64_t base = n / parts, extra = n % parts;
  const int64_t b = p * base + std::min(p, extra);
  return {b, b + base + (p < extra ? 1 : 0)};
}

double total_ns(int64_t iters, Work per_iter) { return double(iters) * std::max(per_iter.ns, 0.0); }

}  // namespace

Work Work::macs_i8(double n) { return {n / kI8MacsPerNs}; }
Work Work::macs_dw_i8(double n) { return {n / kDwI8MacsPerNs}; }
Work Work::macs_f32(double n) { return {n / kF32MacsPerNs}; }
Work Work::bytes(double n) { return {n / kBytesPerNs}; }

int64_t plan_chunks(int64_t iters, Work per_iter, int threads) {
  if (iters <= 1 || threads <= 1) return 1;
  const double total = total_ns(iters, per_iter);
  if (!(total >= 2 * kMinThreadNs)) return 1;  // also catches NaN
  const int64_t t = std::min<int64_t>({threads, iters, int64_t(total / kMinThreadNs)});
  if (t <= 1) return 1;
  const int64_t by_size = int64_t(std::min(total / kMinChunkNs, double(kMaxChunks)));
  return std::min({iters, std::clamp(by_size, t, t * kChunksPerThread), kMaxChunks});
}

Split2d plan_2d(int64_t m, int64_t n, Work per_cell, int threads) {
  if (m <= 0 || n <= 0) return {};
  const int64_t chunks = plan_chunks(m * n, per_cell, threads);
  if (chunks <= 1) return {};
  if (m >= chunks) return {chunks, 1};
  // Too few rows: every row on its own, and the columns cut so the chunk count is reached.
  return {m, std::min(n, (chunks + m - 1) / m)};
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
  const Split2d s = plan_2d(m, n, per_cell, get_num_threads());
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
