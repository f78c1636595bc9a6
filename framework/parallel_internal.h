// The pool's tuning constants and the region runner shared by parallel.cc and parallel_plan.cc.
#pragma once

#include <cstdint>
#include <functional>

namespace finch {

// Spin lengths, measured on the 2-core AVX-512 reference machine with bench/bench_parallel.cc:
// see the numbers in parallel_plan.cc. A worker that finished a region polls this long for the
// next one (layers of a program follow each other within microseconds) before it sleeps on a
// futex; the caller, once every chunk is claimed, polls for about a chunk's length before it
// sleeps. Both give the core away (sched_yield) every kPausesPerYield polls.
constexpr int64_t kWorkerSpinNs = 50000;
constexpr int64_t kCallerSpinNs = 20000;
constexpr int kPausesPerYield = 64;
constexpr int64_t kMaxChunks = 0xffff;  // the region word has 16 bits for the chunk count
// Cost-aware regions with less work than this (ns) do not wake sleeping workers (a cold futex
// wake-up is ~5-20 us here, and the woken worker may preempt the caller on a busy machine).
constexpr int64_t kWakeMinNs = 50000;
// The first window of caller-only regions after a stall (parallel.cc, note_wait); 0 disables.
constexpr int64_t kSoloWindowNs = 1000000;

namespace detail {
// Runs task(c) for c in [0, chunks) on the pool (inline when nested, when another application
// thread holds the pool, or for one chunk); rethrows the first exception. switch_blas holds
// OpenBLAS at one thread for the region. chunk_ns > 0 (the cost-aware API's estimate of one
// chunk) enables the back-off under load; 0 (the grain API: chunk times unknown) never backs off.
void run_chunks(int64_t chunks, bool switch_blas, double chunk_ns, const std::function<void(int64_t)>& task);
}  // namespace detail

}  // namespace finch
