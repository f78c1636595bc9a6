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
int get_num_threads();
// True while the calling thread runs inside a parallel_for body (nested calls run inline).
bool in_parallel_region();

// Splits [begin, end) into at most get_num_threads() contiguous chunks of at least `grain`
// iterations and runs fn(chunk_begin, chunk_end) on them. The split depends only on the range,
// the grain and the thread count, so results are reproducible for a given thread count.
// While the pool runs, OpenBLAS is switched to one thread: a kernel may call cblas from inside a
// chunk without spawning OpenBLAS threads under the pool's threads. Exceptions thrown by fn are
// rethrown on the calling thread (the first one wins). Safe to call from several application
// threads: while the pool serves one of them, the others run their ranges inline.
void parallel_for(int64_t begin, int64_t end, int64_t grain,
                  const std::function<void(int64_t, int64_t)>& fn);

}  // namespace finch
