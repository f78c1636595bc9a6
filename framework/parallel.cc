// A fixed pool of worker threads, woken per parallel_for; the caller runs chunk 0 itself.
#include "framework/parallel.h"

#include <atomic>
#include <cstdio>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

extern "C" void openblas_set_num_threads(int);

namespace finch {

namespace {

thread_local bool t_in_region = false;

// Spinning briefly before sleeping: a condition-variable wake-up costs tens of microseconds
// (far more on a loaded machine), longer than many kernels' chunks, so back-to-back
// parallel_for calls (one per layer) would otherwise mostly run on the caller alone. OpenMP
// runtimes spin for the same reason. ~4000 pauses is about 50 us before a worker sleeps.
constexpr int kSpinIterations = 4000;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

class Pool {
 public:
  ~Pool() { resize(1); }

  int size() const { return size_; }

  void resize(int n) {
    {
      std::lock_guard lock(mu_);
      stop_.store(true);
      generation_.fetch_add(1);
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
    workers_.clear();
    stop_.store(false);
    size_ = n;
    for (int i = 1; i < n; ++i) workers_.emplace_back([this] { loop(); });
  }

  // Runs task(i) for i in [0, chunks) on the caller plus the workers; blocks until all are done.
  void run(int chunks, const std::function<void(int)>& task) {
    std::exception_ptr error;
    std::mutex error_mu;
    const std::function<void(int)> guarded = [&](int i) {
      try {
        task(i);
      } catch (...) {
        std::lock_guard g(error_mu);
        if (!error) error = std::current_exception();
      }
    };
    {
      std::lock_guard lock(mu_);
      task_ = &guarded;
      chunks_ = chunks;
      next_.store(1);
      pending_.store(chunks - 1);
      generation_.fetch_add(1);
    }
    cv_.notify_all();
    t_in_region = true;
    guarded(0);
    // The caller also takes leftover chunks so a slow wake-up never idles the caller.
    for (int i; (i = next_.fetch_add(1)) < chunks;) finish(guarded, i);
    t_in_region = false;
    // Wait for the chunks and for every worker that picked up this task to let go of it, so no
    // straggler can touch `task` after it goes out of scope.
    auto done = [&] { return pending_.load() == 0 && active_.load() == 0; };
    for (int spin = 0; spin < kSpinIterations && !done(); ++spin) cpu_relax();
    std::unique_lock lock(mu_);
    done_cv_.wait(lock, done);
    task_ = nullptr;
    if (error) std::rethrow_exception(error);
  }

 private:
  // Decrements a counter; whoever brings the last one to zero wakes the caller. Notifying
  // under the lock means the caller cannot miss it between checking and sleeping.
  void release_one(std::atomic<int>& counter) {
    if (counter.fetch_sub(1) == 1) {
      std::lock_guard lock(mu_);
      done_cv_.notify_one();
    }
  }

  void finish(const std::function<void(int)>& task, int i) {
    task(i);
    release_one(pending_);
  }

  void loop() {
    uint64_t seen = 0;
    for (;;) {
      for (int spin = 0; spin < kSpinIterations && generation_.load() == seen; ++spin) cpu_relax();
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return generation_.load() != seen; });
      if (stop_.load()) return;
      seen = generation_.load();
      const std::function<void(int)>* task = task_;
      const int chunks = chunks_;
      if (!task) continue;
      active_.fetch_add(1);
      lock.unlock();
      t_in_region = true;
      for (int i; (i = next_.fetch_add(1)) < chunks;) finish(*task, i);
      t_in_region = false;
      release_one(active_);
    }
  }

  std::mutex mu_;
  std::condition_variable cv_, done_cv_;
  std::vector<std::thread> workers_;
  const std::function<void(int)>* task_ = nullptr;  // guarded by mu_
  int chunks_ = 0;                                  // guarded by mu_
  std::atomic<int> pending_{0};  // chunks not yet finished (chunk 0 is the caller's own)
  std::atomic<int> active_{0};   // workers currently holding task_
  std::atomic<int> next_{0};
  std::atomic<uint64_t> generation_{0};
  std::atomic<bool> stop_{false};
  int size_ = 1;
};

Pool& pool() {
  static Pool p;
  return p;
}

std::mutex g_config_mu;
std::mutex g_region_mu;  // held while the pool runs a region
int g_num_threads = 0;  // 0: not configured yet

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
  if (n == g_num_threads) return;
  g_num_threads = n;
  pool().resize(n);
  openblas_set_num_threads(n);
}

int get_num_threads() {
  {
    std::lock_guard lock(g_config_mu);
    if (g_num_threads > 0) return g_num_threads;
  }
  set_num_threads(0);
  return g_num_threads;
}

bool in_parallel_region() { return t_in_region; }

void parallel_for(int64_t begin, int64_t end, int64_t grain,
                  const std::function<void(int64_t, int64_t)>& fn) {
  const int64_t n = end - begin;
  if (n <= 0) return;
  if (grain < 1) grain = 1;
  const int threads = get_num_threads();
  int64_t chunks = std::min<int64_t>(threads, (n + grain - 1) / grain);
  if (chunks <= 1 || t_in_region) {
    fn(begin, end);
    return;
  }
  // Balanced static split: the first n % chunks chunks get one extra iteration.
  const int64_t base = n / chunks, extra = n % chunks;
  auto chunk_range = [&](int64_t c) {
    const int64_t b = begin + c * base + std::min(c, extra);
    return std::pair{b, b + base + (c < extra ? 1 : 0)};
  };
  // One region at a time: a second application thread (a data-loader worker, say) that calls
  // parallel_for while the pool is busy runs its range inline instead of corrupting the pool.
  std::unique_lock busy(g_region_mu, std::try_to_lock);
  if (!busy.owns_lock()) {
    fn(begin, end);
    return;
  }
  openblas_set_num_threads(1);
  try {
    pool().run(int(chunks), [&](int c) {
      auto [b, e] = chunk_range(c);
      fn(b, e);
    });
  } catch (...) {
    openblas_set_num_threads(threads);
    throw;
  }
  openblas_set_num_threads(threads);
}

}  // namespace finch
