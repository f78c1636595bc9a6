// OwnRows: the bookkeeping of a copy that each thread makes of the input rows its own tiles read,
// inside a conv's thread region (the int8 indirect conv's word planes, kernels/qs8_conv_igemm.cc;
// the fp32 convs' padded planes, kernels/f32_conv.cc).
//
// Why inside the region, each thread its own rows: a copy made before the region by one thread
// (or split by channels in a pass of its own) writes, in every call, cache lines the other core
// read in the call before, and the other core then reads the copy back: each store waits for its
// line to come back first, 50-250 ns a line on the 2-core VM (docs/threads.md: the fp32 Winograd
// pad went from 3.9 µs at one thread to ~19 µs at two that way). A thread that copies the rows
// of its own tiles, halo rows included, writes lines only it reads. Halo rows are copied by both
// threads, which costs less than the round trips.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>

namespace finch::quant::kernels {

// A number per conv call, process-wide: a thread's rows from an earlier call (of this conv or of
// any other that shares the thread's buffer) never pass for this call's. Taken by the caller
// before the region; the workers only compare it.
inline uint64_t next_rows_call() {
  static std::atomic<uint64_t> calls{0};
  return calls.fetch_add(1, std::memory_order_relaxed) + 1;
}

// Which rows lo .. hi−1 of one piece of the input (key: an image, an (image, group)) one thread's
// buffer holds for one call. A thread keeps one piece at a time (its chunks are contiguous, so it
// meets the pieces in order, and returns to one only after stealing).
struct OwnRows {
  uint64_t call = 0;
  int64_t key = -1, lo = 0, hi = 0;

  // Makes rows [r0, r1) valid: reset() first where (call, key) is new, then fill(a, b) for each
  // missing range [a, b) only. A range that does not touch the valid rows replaces them. fill
  // must write its rows only (never past b: the rows after may be valid).
  template <class Reset, class Fill>
  void cover(uint64_t c, int64_t k, int64_t r0, int64_t r1, Reset&& reset, Fill&& fill) {
    if (call != c || key != k) {
      reset();
      call = c, key = k, lo = hi = 0;
    }
    if (r0 >= r1) return;
    if (lo == hi || r1 < lo || r0 > hi) {
      fill(r0, r1);
      lo = r0, hi = r1;
      return;
    }
    if (r0 < lo) fill(r0, lo);
    if (r1 > hi) fill(hi, r1);
    lo = std::min(lo, r0), hi = std::max(hi, r1);
  }
};

}  // namespace finch::quant::kernels
