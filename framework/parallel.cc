// The pool behind parallel_for: each thread first claims the chunks of its own lane (a static
// contiguous share of the region), then steals from the back of the others' lanes, so a late or
// descheduled worker holds back only the chunk it has already taken.
#include "framework/parallel.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "framework/parallel_internal.h"
#include "framework/parallel_split.h"

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

extern "C" void openblas_set_num_threads(int);

namespace finch {

namespace {

thread_local bool t_in_region = false;
thread_local int t_cap = 0;              // ThreadLimit's cap on this thread's regions; 0: none
thread_local int64_t t_pool_regions = 0;  // detail::thread_pool_regions()

// The counters behind detail::pool_stats().
struct Counters {
  std::atomic<int64_t> regions{0}, inline_regions{0}, solo_regions{0}, shared_regions{0}, chunks{0},
      worker_chunks{0}, waits{0}, wait_ns{0}, stalls{0}, absences{0};
};
Counters g_stats;
inline void count(std::atomic<int64_t>& c, int64_t n) { c.fetch_add(n, std::memory_order_relaxed); }

// Backing off under load. When the caller has to wait for a worker far longer than a chunk
// takes, the worker was descheduled holding a chunk: the machine has fewer free cores than
// threads. The next cost-aware regions then run on the caller alone (same chunks, in order, so
// results do not change) for a window that doubles with each stall in a row (1 ms up to 32 ms)
// and resets after a region without one; the idle workers stop spinning and sleep, leaving the
// cores to whoever needs them.
std::atomic<int64_t> g_solo_until_ns{0};
std::atomic<int> g_stalls{0};

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

bool backing_off() {
  return now_ns() < g_solo_until_ns.load(std::memory_order_relaxed);
}

// Program runs in progress (HotScope): while there is one and the pool is not backing off, a
// worker that finished its spin keeps spinning instead of sleeping.
std::atomic<int> g_hot{0};
bool keep_spinning() {
  return g_hot.load(std::memory_order_relaxed) > 0 && !backing_off();
}

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// Sleeping on a 32-bit word until it changes from `seen`, and waking one sleeper: a private
// futex on Linux (what a condition variable costs at best), C++20 atomic wait elsewhere. Callers
// re-check their condition in a loop, so spurious returns are harmless.
void sleep_while(std::atomic<uint32_t>& word, uint32_t seen) {
#if defined(__linux__)
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAIT_PRIVATE, seen, nullptr, nullptr, 0);
#else
  word.wait(seen);
#endif
}
void wake_one(std::atomic<uint32_t>& word) {
#if defined(__linux__)
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
#else
  word.notify_one();
#endif
}

// Waits up to budget_ns for ready() by polling, giving the core away (sched_yield) between short
// bursts of pauses: a wake-up through the kernel costs tens of microseconds, more than most
// layers' chunks, so back-to-back regions want a spinning worker — but a spinner must not keep
// the core from another runnable thread (an OpenBLAS worker, another process). With nothing else
// runnable sched_yield returns at once; otherwise the other thread runs. Measured in
// bench/bench_parallel.cc (BM_RegionAfterGap): see kWorkerSpinNs.
template <class Ready>
bool spin_until(const Ready& ready, int64_t budget_ns) {
  if (budget_ns <= 0) return ready();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::nanoseconds(budget_ns);
  for (;;) {
    for (int i = 0; i < kPausesPerYield; ++i) {
      if (ready()) return true;
      cpu_relax();
    }
    if (std::chrono::steady_clock::now() >= deadline) return ready();
    std::this_thread::yield();
  }
}

// One parallel region's error, on the caller's stack (the first exception a chunk throws wins).
struct Region {
  std::mutex error_mu;
  std::exception_ptr error;

  void run(const detail::ChunkFn& task, int64_t chunk) {
    try {
      task(chunk);
    } catch (...) {
      std::lock_guard g(error_mu);
      if (!error) error = std::current_exception();
    }
  }
};

// The region word: generation (32 bits) | 0 (16) | chunk count (16), and per thread a lane word:
// generation | first unclaimed chunk (16) | end of the lane (16). Lane i starts as the i-th of
// `threads` balanced contiguous shares of the chunks; its owner claims from the front and the
// other threads steal from the back, each claim one CAS on the lane that also checks the
// generation, so a claim can only succeed while its region is live: no worker ever runs a chunk
// of a region that has ended, and the caller never waits for a worker that holds nothing.
// Why lanes and not one shared next-chunk counter: with both threads running, chunk c goes to
// the same thread in every region, so a layer split by pixels finds the rows the previous layer
// split the same way wrote in its own core's cache (with one counter which thread got which
// chunk was a race, and half of every activation crossed between the cores), and the threads
// do not contend on one cache line for every chunk.
constexpr uint64_t pack(uint64_t gen, uint64_t lo, uint64_t hi) { return gen << 32 | lo << 16 | hi; }
constexpr uint32_t gen_of(uint64_t s) { return uint32_t(s >> 32); }
constexpr int64_t lo_of(uint64_t s) { return int64_t(s >> 16 & 0xffff); }
constexpr int64_t hi_of(uint64_t s) { return int64_t(s & 0xffff); }
constexpr int64_t count_of(uint64_t s) { return hi_of(s); }

// Why the fork/join is laid out as it is: on the 2-core VM a cache line written on one core costs
// the other 50-250 ns to read (a ping-pong round trip measured 93-530 ns, by where the vCPUs
// sit), and a worker's start is a chain of such reads, each address known only from the one
// before. So everything a worker
// needs to run a chunk — the generation, the chunk count and the chunk function — sits in one
// line (one transfer), the function is a pointer pair rather than a std::function (whose heap
// block and captures were two more hops), and each worker counts its finished chunks on a line of
// its own that only it writes (a shared counter cost every worker chunk a transfer, and the
// caller's own chunks an atomic add each); the caller adds them up only when its lanes are empty.
class Pool {
 public:
  ~Pool() { resize(1); }

  void resize(int n) {
    stop_.store(true);
    publish(0, detail::ChunkFn());
    for (int i = 0; i < int(workers_.size()); ++i) wake(i, /*always=*/true);
    for (auto& t : workers_) t.join();
    workers_.clear();
    stop_.store(false);
    slots_ = std::make_unique<Slot[]>(size_t(std::max(n - 1, 1)));
    lanes_ = std::make_unique<Lane[]>(size_t(std::max(n, 1)));
    threads_ = std::max(n, 1);
    worker_done_ = 0;
    // The generation a worker starts from is taken here, not when its thread first runs: a
    // thread that starts late must still see the stop of a resize that came before it ran.
    const uint32_t seen = gen_of(head_.state.load());
    for (int i = 1; i < n; ++i) workers_.emplace_back([this, i, seen] { loop(i, slots_[size_t(i - 1)], seen); });
  }

  // Wakes every sleeping worker (a no-op for spinning ones).
  void wake_sleeping() {
    for (int i = 0; i < int(workers_.size()); ++i) wake(i, false);
  }

  // Runs task(c) for c in [0, chunks) on the caller plus the workers; blocks until all are done.
  // Sleeping workers are woken only when wake_sleepers: a futex wake-up costs more than a small
  // region gains (and the woken thread may preempt the caller), so small regions use only the
  // workers that are still spinning and leave the rest to the caller. Returns how long the caller
  // waited for the workers' last chunks past its spin (ns, 0 when the spin sufficed) and how many
  // chunks the workers ran; counts the region in the stats.
  // `invited`: a worker was awake (spinning) when the region was published, so it would have
  // joined within a microsecond or two had it had a core. (A worker woken from its futex for the
  // region does not count: on the loaded VM the wake-up alone takes ~60 us at the median, longer
  // than many regions, and counting those made every back-off window end in the next one — the
  // workers sleep while the pool backs off.)
  struct Outcome {
    int64_t slept_ns = 0, worker_chunks = 0;
    bool invited = false;
  };
  Outcome run(int64_t chunks, bool wake_sleepers, const detail::ChunkFn& task) {
    Region r;
    head_.region.store(&r, std::memory_order_relaxed);
    const uint32_t gen = publish(chunks, task);  // releases the head, r and the lanes to claimers
    const int wanted = int(std::min<int64_t>(int64_t(workers_.size()), chunks - 1));
    bool invited = false;
    for (int i = 0; i < wanted && !invited; ++i) invited = !slots_[size_t(i)].sleeping.load(std::memory_order_relaxed);
    if (wake_sleepers)
      for (int i = 0; i < wanted; ++i) wake(i, false);
    t_in_region = true;
    int64_t mine = 0;
    for (int64_t c; claim(0, gen, c);) {
      r.run(task, c);
      ++mine;
    }
    t_in_region = false;
    // Only chunks a worker has claimed are left: it is running them, so spin for about a chunk,
    // then sleep, which also frees this core for the worker if the OS had parked it here.
    const int64_t target = worker_done_ + (chunks - mine);
    auto done = [&] {
      int64_t sum = 0;
      for (int i = 0; i < int(workers_.size()); ++i) sum += slots_[size_t(i)].done.load();
      return sum == target;
    };
    int64_t slept_ns = 0;
    if (mine < chunks && !spin_until(done, kCallerSpinNs)) {
      const auto t0 = std::chrono::steady_clock::now();
      while (!done()) {
        const uint32_t d = done_word_.load();
        caller_sleeping_.store(true);
        if (!done()) sleep_while(done_word_, d);
        caller_sleeping_.store(false);
      }
      slept_ns = std::max<int64_t>(1, (std::chrono::steady_clock::now() - t0).count());
    }
    worker_done_ = target;
    count(g_stats.chunks, chunks);
    count(g_stats.worker_chunks, chunks - mine);
    if (mine < chunks) count(g_stats.shared_regions, 1);
    if (slept_ns > 0) count(g_stats.waits, 1), count(g_stats.wait_ns, slept_ns);
    if (r.error) std::rethrow_exception(r.error);
    return {slept_ns, chunks - mine, invited};
  }

 private:
  // Per worker: its wake-up word (futex) and whether it sleeps on it, on a cache line of its own,
  // and on the next line the chunks it has finished since the pool started (only it writes).
  struct alignas(64) Slot {
    std::atomic<uint32_t> wake{0};
    std::atomic<bool> sleeping{false};
    alignas(64) std::atomic<int64_t> done{0};
  };
  // Per thread (0 = the caller) its lane word, on a cache line of its own.
  struct alignas(64) Lane {
    std::atomic<uint64_t> word{0};
  };
  // The region's head: what a worker reads to join it, in one line the caller writes per region.
  struct alignas(64) Head {
    std::atomic<uint64_t> state{0};  // generation | 0 | chunk count
    std::atomic<const void*> obj{nullptr};
    std::atomic<detail::ChunkFn::Call> call{nullptr};
    std::atomic<Region*> region{nullptr};
  };

  // Starts a region of `chunks` chunks (0: the stop of a resize): deals the lanes, then bumps
  // the generation in the region word. Returns the new generation.
  uint32_t publish(int64_t chunks, const detail::ChunkFn& task) {
    const uint32_t gen = gen_of(head_.state.load(std::memory_order_relaxed)) + 1;
    // The function first: a claim (acquire on a lane word) then also sees it.
    head_.obj.store(task.obj, std::memory_order_relaxed);
    head_.call.store(task.call, std::memory_order_relaxed);
    for (int64_t i = 0; i < threads_; ++i) {
      const auto [b, e] = detail::lane_range(std::max<int64_t>(chunks, 1), threads_, i);
      lanes_[size_t(i)].word.store(pack(gen, uint64_t(chunks ? b : 0), uint64_t(chunks ? e : 0)),
                                   std::memory_order_release);
    }
    head_.state.store(pack(gen, 0, uint64_t(chunks)));  // seq_cst: ordered before the sleeping checks
    return gen;
  }

  // Wakes worker i if it sleeps (or unconditionally when stopping). The Dekker pair — the
  // publish above / `sleeping` stored before the worker re-reads the state — means either the
  // caller sees the flag or the worker sees the new region.
  void wake(int i, bool always) {
    Slot& s = slots_[size_t(i)];
    if (always || s.sleeping.load()) {
      s.wake.fetch_add(1);
      wake_one(s.wake);
    }
  }

  // Claims a chunk of region `gen` for thread `self` (0 = the caller): the front of its own lane,
  // else the back of another's (the next threads' first, so two thieves rarely meet).
  bool claim(int self, uint32_t gen, int64_t& chunk) {
    {
      std::atomic<uint64_t>& w = lanes_[size_t(self)].word;
      uint64_t s = w.load(std::memory_order_acquire);
      while (gen_of(s) == gen && lo_of(s) < hi_of(s))
        if (w.compare_exchange_weak(s, s + (uint64_t(1) << 16), std::memory_order_acq_rel)) {
          chunk = lo_of(s);
          return true;
        }
    }
    for (int k = 1; k < threads_; ++k) {
      std::atomic<uint64_t>& w = lanes_[size_t((self + k) % threads_)].word;
      uint64_t s = w.load(std::memory_order_acquire);
      while (gen_of(s) == gen && lo_of(s) < hi_of(s))
        if (w.compare_exchange_weak(s, s - 1, std::memory_order_acq_rel)) {
          chunk = hi_of(s) - 1;
          return true;
        }
    }
    return false;
  }

  void loop(int self, Slot& slot, uint32_t seen) {
    for (;;) {
      // stop_ is part of the condition, not only the generation: a worker that took the stop's
      // generation as `seen` on its way out of the previous region (resize publishes it right
      // after that region ends) would otherwise sleep through the stop, and resize's join hang
      // (seen under qemu-aarch64, about one run in six).
      auto ready = [&] { return stop_.load() || gen_of(head_.state.load(std::memory_order_relaxed)) != seen; };
      if (!spin_until(ready, kWorkerSpinNs)) {
        if (keep_spinning()) continue;
        // Sleep until a region or wake_workers() wakes it, then spin again (at once done if
        // a region is there).
        const uint32_t w = slot.wake.load();
        slot.sleeping.store(true);
        if (gen_of(head_.state.load()) == seen && !stop_.load()) sleep_while(slot.wake, w);
        slot.sleeping.store(false);
        continue;
      }
      if (stop_.load()) return;
      seen = gen_of(head_.state.load());
      t_in_region = true;
      for (int64_t c; claim(self, seen, c);) {
        // The claim pins the region (it cannot end before this chunk is counted), so the head
        // still describes it; after the count below it may be gone, so touch only the pool.
        const detail::ChunkFn task(head_.obj.load(std::memory_order_relaxed),
                                   head_.call.load(std::memory_order_relaxed));
        head_.region.load(std::memory_order_relaxed)->run(task, c);
        slot.done.fetch_add(1);  // seq_cst: ordered before the caller_sleeping_ check (Dekker)
        if (caller_sleeping_.load()) {
          done_word_.fetch_add(1);
          wake_one(done_word_);
        }
      }
      t_in_region = false;
    }
  }

  Head head_;
  alignas(64) std::atomic<uint32_t> done_word_{0};
  std::atomic<bool> caller_sleeping_{false};
  std::atomic<bool> stop_{false};
  std::unique_ptr<Slot[]> slots_ = std::make_unique<Slot[]>(1);
  std::unique_ptr<Lane[]> lanes_ = std::make_unique<Lane[]>(1);
  int threads_ = 1;          // the caller and the workers
  int64_t worker_done_ = 0;  // the workers' finished chunks summed, as of the last region's end
  std::vector<std::thread> workers_;
};

Pool& pool() {
  static Pool p;
  return p;
}

std::mutex g_config_mu;
std::mutex g_region_mu;  // held while the pool runs a region
std::atomic<int> g_num_threads{0};  // 0: not configured yet

int default_threads() {
  const unsigned hw = std::thread::hardware_concurrency();
  return hw ? int(hw) : 1;
}

}  // namespace

int max_threads() { return 4 * default_threads(); }

void set_num_threads(int n) {
  if (n <= 0) n = default_threads();
  // Past a few threads per hardware thread every parallel_for only adds wake-ups and context
  // switches (--threads 10000 made one 28×28 image take a minute): cap, and say so once.
  if (n > max_threads()) {
    static int noted = 0;
    if (noted != n)
      std::fprintf(stderr, "finch: %d threads capped at %d (4 per hardware thread; this machine has %d)\n", n,
                   max_threads(), default_threads());
    noted = n;
    n = max_threads();
  }
  std::lock_guard lock(g_config_mu);
  if (n == g_num_threads.load()) return;
  // Not while a region runs on the pool (another application thread's): wait for it.
  std::lock_guard region(g_region_mu);
  pool().resize(n);
  g_num_threads.store(n);
  openblas_set_num_threads(n);
}

int get_num_threads() {
  int n = g_num_threads.load(std::memory_order_relaxed);
  if (n <= 0) {
    set_num_threads(0);
    n = g_num_threads.load();
  }
  return t_cap > 0 ? std::min(n, t_cap) : n;
}

ThreadLimit::ThreadLimit(int n) : saved_(t_cap) {
  n = std::max(n, 1);
  t_cap = saved_ > 0 ? std::min(saved_, n) : n;
}
ThreadLimit::~ThreadLimit() { t_cap = saved_; }

bool in_parallel_region() { return t_in_region; }

HotScope::HotScope() {
  g_hot.fetch_add(1);
  // Backing off under load: the workers stay asleep (woken, they would only spin and sleep again).
  if (!backing_off()) wake_workers();
}
HotScope::~HotScope() { g_hot.fetch_sub(1); }

void wake_workers() {
  if (t_in_region || g_num_threads.load(std::memory_order_relaxed) <= 1) return;
  std::unique_lock busy(g_region_mu, std::try_to_lock);  // the pool's workers are busy anyway
  if (busy.owns_lock()) pool().wake_sleeping();
}

namespace {

// Regions in a row whose workers ran nothing although the region lasted long enough for a
// worker on a core of its own to join (kAbsentRegionNs; a spinning worker starts within a few
// microseconds, a woken one within ~60 us at the median on the loaded VM).
std::atomic<int> g_absent{0};

void note_region(const Pool::Outcome& o, double chunk_ns, int64_t chunks, int64_t region_ns) {
  const bool stalled =
      o.slept_ns > 0 && double(o.slept_ns) >= std::max(double(kCallerSpinNs), 2 * chunk_ns);
  // The workers are absent (descheduled: another process holds their core) when several long
  // regions in a row ran on the caller alone: the pool then backs off as after a stall, so the
  // caller stops publishing regions the workers cannot join (and a worker that joins late, then
  // is preempted holding a chunk, does not stall the caller) and the idle workers sleep. Only
  // regions a worker was spinning for count (chunks > 1, long enough): a sleeping worker's miss
  // says nothing about whether it would get a core.
  bool absent = false;
  if (o.worker_chunks > 0 || !o.invited || double(region_ns) < kAbsentRegionNs || chunks < 2) {
    if (g_absent.load(std::memory_order_relaxed) != 0) g_absent.store(0, std::memory_order_relaxed);
  } else if (g_absent.fetch_add(1, std::memory_order_relaxed) + 1 >= kAbsentRegions) {
    g_absent.store(0, std::memory_order_relaxed);
    absent = true;
    count(g_stats.absences, 1);
  }
  if (!stalled && !absent) {
    if (o.worker_chunks > 0 && g_stalls.load(std::memory_order_relaxed) != 0)
      g_stalls.store(0, std::memory_order_relaxed);
    return;
  }
  if (stalled) count(g_stats.stalls, 1);
  const int stalls = std::min(g_stalls.load(std::memory_order_relaxed) + 1, 6);
  g_stalls.store(stalls, std::memory_order_relaxed);
  g_solo_until_ns.store(now_ns() + (kSoloWindowNs << (stalls - 1)), std::memory_order_relaxed);
}

}  // namespace

namespace detail {

PoolStats pool_stats() {
  PoolStats s;
  s.regions = g_stats.regions.load(), s.inline_regions = g_stats.inline_regions.load();
  s.solo_regions = g_stats.solo_regions.load(), s.shared_regions = g_stats.shared_regions.load();
  s.chunks = g_stats.chunks.load(), s.worker_chunks = g_stats.worker_chunks.load();
  s.waits = g_stats.waits.load(), s.wait_ns = g_stats.wait_ns.load(), s.stalls = g_stats.stalls.load();
  s.absences = g_stats.absences.load();
  return s;
}

int64_t thread_pool_regions() { return t_pool_regions; }

void reset_pool_stats() {
  for (auto* c : {&g_stats.regions, &g_stats.inline_regions, &g_stats.solo_regions, &g_stats.shared_regions,
                  &g_stats.chunks, &g_stats.worker_chunks, &g_stats.waits, &g_stats.wait_ns, &g_stats.stalls,
                  &g_stats.absences})
    c->store(0);
}

void run_chunks(int64_t chunks, bool switch_blas, double chunk_ns, const ChunkFn& task) {
  // One region at a time: a second application thread (a data-loader worker, say) that calls
  // parallel_for while the pool is busy runs its chunks inline instead of corrupting the pool.
  // (A nested call never tries the lock: its thread may be the one holding it.)
  std::unique_lock<std::mutex> busy;
  const bool solo = chunk_ns > 0 && kSoloWindowNs > 0 && backing_off();
  if (!t_in_region && !solo && chunks > 1 && chunks <= kMaxChunks)
    busy = std::unique_lock(g_region_mu, std::try_to_lock);
  if (chunks > 1) count(g_stats.regions, 1);
  if (!busy.owns_lock()) {
    if (chunks > 1) count(g_stats.inline_regions, 1), count(g_stats.solo_regions, solo ? 1 : 0);
    const bool outer = !t_in_region;
    t_in_region = true;
    try {
      for (int64_t c = 0; c < chunks; ++c) task(c);
    } catch (...) {
      if (outer) t_in_region = false;
      throw;
    }
    if (outer) t_in_region = false;
    return;
  }
  ++t_pool_regions;
  if (!switch_blas) {
    const bool wake = chunk_ns <= 0 || chunk_ns * double(chunks) >= double(kWakeMinNs);
    const int64_t t0 = chunk_ns > 0 ? now_ns() : 0;
    const Pool::Outcome o = pool().run(chunks, wake, task);
    if (chunk_ns > 0) note_region(o, chunk_ns, chunks, now_ns() - t0);
    return;
  }
  const int threads = g_num_threads.load();
  openblas_set_num_threads(1);
  try {
    pool().run(chunks, /*wake_sleepers=*/true, task);
  } catch (...) {
    openblas_set_num_threads(threads);
    throw;
  }
  openblas_set_num_threads(threads);
}

}  // namespace detail

void parallel_for(int64_t begin, int64_t end, int64_t grain,
                  const std::function<void(int64_t, int64_t)>& fn) {
  const int64_t n = end - begin;
  if (n <= 0) return;
  if (grain < 1) grain = 1;
  const int threads = get_num_threads();
  const int64_t chunks = std::min<int64_t>(threads, (n + grain - 1) / grain);
  if (chunks <= 1 || t_in_region) {
    fn(begin, end);
    return;
  }
  // Balanced static split: the first n % chunks chunks get one extra iteration.
  const int64_t base = n / chunks, extra = n % chunks;
  detail::run_chunks(chunks, /*switch_blas=*/true, /*chunk_ns=*/0, [&](int64_t c) {
    const int64_t b = begin + c * base + std::min(c, extra);
    fn(b, b + base + (c < extra ? 1 : 0));
  });
}

}  // namespace finch
