// Splits that follow the pool's lanes: a grid cut into one band of rows per thread (plan_bands)
// and the runner for any precomputed 2-D split (parallel_for_split). Implemented in
// parallel_plan.cc beside plan_2d.
#pragma once

#include <cstdint>
#include <algorithm>
#include <functional>
#include <utility>

#include "framework/parallel.h"

namespace finch {

// A split for a layer that should read and write the same rows on each thread as its neighbours
// split by pixels (a depthwise conv between 1×1 convs, docs/threads.md): m_parts = one band of
// rows per thread the work pays for, n_parts = column parts per band (up to the chunk count
// plan_chunks gives). Chunk c is band c / n_parts, so the pool's lanes (lane i: the i-th
// contiguous share of the chunks) give band i to thread i while no thread steals, and a band's
// rows are the i-th share of the rows, as a pixel split's chunks of lane i are. A pure function.
Split2d plan_bands(int64_t m, int64_t n, Work per_cell, int threads);

// Runs fn(m0, m1, n0, n1) over the rectangles of a split s of the m × n grid (from plan_2d or
// plan_bands for the calling thread's get_num_threads()); chunk c is row part c / n_parts,
// column part c % n_parts. Same contract as the cost-aware parallel_for.
void parallel_for_split(int64_t m, int64_t n, Split2d s, Work per_cell,
                        const std::function<void(int64_t, int64_t, int64_t, int64_t)>& fn);

namespace detail {
// Lane i's chunks when a region of `chunks` chunks runs on a pool of `threads` threads: the i-th
// balanced contiguous share (empty for i >= chunks). The pool deals its lanes with it
// (parallel.cc); runtime/lane_traffic.h uses it to say which thread runs which chunk when none
// steals.
inline std::pair<int64_t, int64_t> lane_range(int64_t chunks, int64_t threads, int64_t i) {
  const int64_t lanes = std::min<int64_t>(threads, chunks);
  if (i >= lanes) return {chunks, chunks};
  const int64_t b = i * (chunks / lanes) + std::min(i, chunks % lanes);
  return {b, b + chunks / lanes + (i < chunks % lanes ? 1 : 0)};
}
inline int64_t lane_of_chunk(int64_t chunks, int64_t threads, int64_t c) {
  const int64_t lanes = std::min<int64_t>(threads, chunks), base = chunks / lanes, extra = chunks % lanes;
  // The first `extra` lanes hold base + 1 chunks each.
  return c < extra * (base + 1) ? c / (base + 1) : extra + (c - extra * (base + 1)) / base;
}
}  // namespace detail

}  // namespace finch
