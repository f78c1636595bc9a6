// The pool's tuning constants and the region runner shared by parallel.cc and parallel_plan.cc.
#pragma once

#include <cstdint>
#include <functional>
#include <type_traits>

namespace finch {

// Spin lengths. A worker that finished a region polls this long for the next one (the layers of
// a program follow each other within microseconds; a futex wake-up costs ~5-20 us on the 2-core
// reference VM) before it sleeps on a futex; the caller, once every chunk is claimed, polls for
// a few chunks' length before it sleeps. Both give the core away (sched_yield) every
// kPausesPerYield polls (~1.5 us), so a spin never keeps another runnable thread off the core.
// bench_parallel's BM_RegionAfterGap is the curve to re-tune them with; on the shared machine
// (load 5-6, a second busy thread got ~0.35 core) it was flat and could not settle the length.
constexpr int64_t kWorkerSpinNs = 50000;
constexpr int64_t kCallerSpinNs = 20000;
constexpr int kPausesPerYield = 64;
constexpr int64_t kMaxChunks = 0xffff;  // the region word has 16 bits for the chunk count
// Cost-aware regions with less work than this (ns) do not wake sleeping workers (a cold futex
// wake-up is ~5-20 us here, and the woken worker may preempt the caller on a busy machine).
// Once a worker slept, a run of 25-40 us layers (ResNet-20 at 28x28) stayed on the caller until
// a bigger region came: bench_f32_conv at 2 threads, quiet machine, with 0 here 16->16 28x28
// 37.6 -> 30.7 us and 32->64 s2 42.2 -> 29.4 us; but with 16000, 32->32 14x14 went 35 -> 60 us
// (the caller then waits on a late worker). So the threshold stays, and a program run holds a
// HotScope instead: its workers do not sleep between layers, only while the pool backs off
// under load, and then a small region is right not to wake them.
constexpr int64_t kWakeMinNs = 50000;
// The first window of caller-only regions after a stall (parallel.cc, note_region); 0 disables.
constexpr int64_t kSoloWindowNs = 1000000;
// Absent workers: this many cost-aware regions in a row of at least kAbsentRegionNs each that
// the workers ran no chunk of start a back-off window too. With a busy process pinned to the
// second core the worker there ran 1-9 of ~200 chunks per MobileNet v1 run (bench_threads), so
// 2 threads paid the regions' publishing and the occasional stall for nothing.
constexpr int kAbsentRegions = 8;
constexpr double kAbsentRegionNs = 20000;

namespace detail {
// A chunk body by reference: a pointer to the callable and a function that calls it (no
// std::function: no heap block, one hop less for a worker to reach the code). The callable must
// outlive the call that takes the ChunkFn (a lambda passed as the argument does).
struct ChunkFn {
  using Call = void (*)(const void*, int64_t);
  const void* obj = nullptr;
  Call call = nullptr;
  ChunkFn() = default;
  ChunkFn(const void* o, Call c) : obj(o), call(c) {}
  template <class F, class = std::enable_if_t<!std::is_same_v<std::decay_t<F>, ChunkFn>>>
  ChunkFn(const F& f)  // NOLINT(google-explicit-constructor): the lambda at the call site
      : obj(&f), call([](const void* o, int64_t c) { (*static_cast<const F*>(o))(c); }) {}
  void operator()(int64_t c) const { call(obj, c); }
};

// Runs task(c) for c in [0, chunks) on the pool (inline when nested, when another application
// thread holds the pool, or for one chunk); rethrows the first exception. switch_blas holds
// OpenBLAS at one thread for the region. chunk_ns > 0 (the cost-aware API's estimate of one
// chunk) enables the back-off under load; 0 (the grain API: chunk times unknown) never backs off.
void run_chunks(int64_t chunks, bool switch_blas, double chunk_ns, const ChunkFn& task);

// What the pool did since the last reset_pool_stats() (bench/bench_threads.cc prints it): the
// counters are relaxed atomics the calling thread bumps once per region, so they cost nothing
// measurable and stay on in release builds.
struct PoolStats {
  int64_t regions = 0;         // regions of more than one chunk (the cost-aware and grain APIs)
  int64_t inline_regions = 0;  // ... run on the caller alone: nested, pool busy, or backing off
  int64_t solo_regions = 0;    // ... of those, because the pool was backing off under load
  int64_t shared_regions = 0;  // ... run on the pool where a worker ran at least one chunk
  int64_t chunks = 0, worker_chunks = 0;  // chunks of the pool's regions, and those workers ran
  int64_t waits = 0, wait_ns = 0;  // the caller slept for a worker's last chunk: how often, how long
  int64_t stalls = 0;             // waits long enough to start a back-off window
  int64_t absences = 0;           // runs of kAbsentRegions regions the workers missed (also back off)
};
PoolStats pool_stats();
void reset_pool_stats();
// Regions of more than one chunk the calling thread has run on the pool (a worker took part or
// could have), since the thread started: a program compares it before and after a node to learn
// whether the node splits at all (runtime/thread_choice.h). A thread-local count, free to read.
int64_t thread_pool_regions();
}  // namespace detail

}  // namespace finch
