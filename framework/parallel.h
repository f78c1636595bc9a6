// The one global thread pool. Every kernel parallelizes through parallel_for; set_num_threads(N)
// governs the pool and OpenBLAS together so nothing oversubscribes the cores.
#pragma once

#include <cstdint>
#include <functional>

namespace finch {

// Sets the pool size (the calling thread counts as one worker) and OpenBLAS's thread count.
// N <= 0 means "all hardware threads"; N above max_threads() is capped there (with a note on
// stderr), since more threads than that only slow every kernel down.
void set_num_threads(int n);
int max_threads();  // 4 × the hardware threads
// The threads the calling thread's regions may use: the pool's size, or less inside a ThreadLimit.
int get_num_threads();
// True while the calling thread runs inside a parallel_for body (nested calls run inline).
bool in_parallel_region();

// Splits [begin, end) into at most get_num_threads() contiguous chunks of at least `grain`
// iterations and runs fn(chunk_begin, chunk_end) on them. The split depends only on the range,
// the grain and the thread count, so results are reproducible for a given thread count.
// While the pool runs, OpenBLAS is held at one thread: a kernel may call cblas from inside a
// chunk without spawning OpenBLAS threads under the pool's threads. Exceptions thrown by fn are
// rethrown on the calling thread (the first one wins). Safe to call from several application
// threads: while the pool serves one of them, the others run their ranges inline.
void parallel_for(int64_t begin, int64_t end, int64_t grain,
                  const std::function<void(int64_t, int64_t)>& fn);

// Wakes the pool's sleeping workers so they are spinning, ready for the regions that follow
// (cost-aware regions too small to pay for a futex wake-up use only spinning workers, so a run
// of small layers that starts after an idle pause would otherwise stay on the caller; HotScope
// calls it). Cheap when the workers already spin; they go back to sleep after their usual spin
// if no region comes.
void wake_workers();

// A program run (runtime::Program::execute holds one): wakes the workers like wake_workers() and
// keeps them spinning (yielding) until the scope ends instead of sleeping after their usual spin,
// so every region of the run finds them awake. Not while the pool backs off under load: then
// they sleep as usual. Nests and may be held by several application threads at once.
class HotScope {
 public:
  HotScope();
  ~HotScope();
  HotScope(const HotScope&) = delete;
  HotScope& operator=(const HotScope&) = delete;
};

// Caps the threads the calling thread's parallel regions use at n (at least 1) while the scope
// lives: get_num_threads() returns at most n there, so every split planned inside is planned for
// n threads, and n = 1 runs every region on the caller. The pool keeps its size (no resize, no
// OpenBLAS change: an OpenBLAS call made outside any region is not capped). Nests (the smaller
// cap wins). A program run uses it per node (runtime/thread_choice.h): a layer whose split does
// not pay on this machine runs on the caller alone. Kernels whose results do not depend on the
// thread count (every int8 and fp32 program kernel) give identical outputs under any cap.
class ThreadLimit {
 public:
  explicit ThreadLimit(int n);
  ~ThreadLimit();
  ThreadLimit(const ThreadLimit&) = delete;
  ThreadLimit& operator=(const ThreadLimit&) = delete;

 private:
  int saved_;
};

// ---- Cost-aware splitting -------------------------------------------------------------------
// The caller says how much work one iteration (or one tile) is, in units it can count; the pool
// turns that into time with rates measured on the reference machine (parallel_plan.cc,
// bench/bench_parallel.cc) and uses as many threads as the work pays for: a layer too small to
// win back a fork/join runs on the caller alone, a big one is cut into a few more chunks than
// threads so a descheduled worker holds back at most a small chunk.
struct Work {
  double ns = 0;  // estimated single-thread time
  static Work nanoseconds(double n) { return {n}; }
  static Work macs_i8(double n);   // int8 multiply-adds in a packed GEMM tile (VNNI / sdot)
  static Work macs_dw_i8(double n);  // int8 multiply-adds in a depthwise conv (no reduction dim)
  static Work macs_f32(double n);  // fp32 multiply-adds in a packed GEMM tile
  static Work macs_dw_f32(double n);  // fp32 multiply-adds in a depthwise conv
  static Work bytes(double n);     // bytes streamed by an int8 elementwise pass (read + written)
  // Bytes read + written by a pass that only moves them or adds them up (a copy, padding, an fp32
  // add): memory speed, about 9× what an int8 pass with its requantization gets through.
  static Work bytes_stream(double n);
  Work operator+(Work o) const { return {ns + o.ns}; }
  Work operator*(double k) const { return {ns * k}; }
};

// The split parallel_for(begin, end, Work, fn) uses: the chunk count for `iters` iterations of
// `per_iter` each at `threads` threads (1 = run on the caller). A pure function, so chunk
// boundaries — and results — depend only on the range, the work and the thread count.
int64_t plan_chunks(int64_t iters, Work per_iter, int threads);

// Cost-aware 1-D split: plan_chunks(end - begin, per_iter, get_num_threads()) balanced contiguous
// chunks. The body must not call OpenBLAS (OpenBLAS is not switched for these regions — the
// switch costs a lock per call and int8/fp16/own-fp32 kernels never need it).
void parallel_for(int64_t begin, int64_t end, Work per_iter,
                  const std::function<void(int64_t, int64_t)>& fn);

// A 2-D grid split into m_parts × n_parts rectangles of balanced contiguous ranges.
struct Split2d {
  int64_t m_parts = 1, n_parts = 1;
};
// Splits rows first (for a GEMM: pixel tiles, which are packed once per row) and columns
// (output-channel panels) only when the rows alone give too few chunks, so a layer with one
// pixel tile still puts every thread to work. A pure function like plan_chunks.
Split2d plan_2d(int64_t m, int64_t n, Work per_cell, int threads);

// Runs fn(m0, m1, n0, n1) over the rectangles of plan_2d(m, n, per_cell, get_num_threads()).
// Same contract as the cost-aware parallel_for (no OpenBLAS inside).
void parallel_for_2d(int64_t m, int64_t n, Work per_cell,
                     const std::function<void(int64_t, int64_t, int64_t, int64_t)>& fn);

}  // namespace finch
