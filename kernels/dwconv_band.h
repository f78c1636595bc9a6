// Splitting a depthwise conv by bands of output rows (the fp32 and int8 operators): which input
// rows a band reads, and the driver that runs the bands of a plan_bands split.
//
// Why rows and not channels (docs/threads.md): the 1×1 convs around a depthwise conv split by
// pixels, so with the pool's lanes thread i writes the i-th share of every channel's rows. A
// depthwise conv split by channels then reads half of its input from the other core and writes
// half of its output for the other core to read; split by bands of rows it reads (up to a halo
// of KH − 1 rows) what its own thread wrote, and the next 1×1 conv reads what it wrote.
#pragma once

#include <algorithm>
#include <cstdint>

#include "framework/parallel_split.h"

namespace finch::quant::kernels {

// Output rows [oh0, oh1) of a plane read input rows [ih0, ih0 + H) with `ph` rows of zero
// padding above them; rows past ih0 + H are padding too (or not read). H < 1: the band reads
// only padding.
struct DwBand {
  int64_t ih0, H, ph;
};
inline DwBand dw_band(int64_t H, int64_t KH, int64_t sh, int64_t ph, int64_t dh, int64_t oh0, int64_t oh1) {
  const int64_t first = oh0 * sh - ph, last = (oh1 - 1) * sh - ph + (KH - 1) * dh + 1;
  const int64_t ih0 = std::max<int64_t>(0, first), ih1 = std::min(H, last);
  return {ih0, ih1 - ih0, ih0 - first};
}

// The grid an operator splits: `cols` columns of `col_channels` channels each (1 for the
// per-plane kernels, a block for the channels-last ones; the last may hold fewer), and the work
// of one (output row, column) cell.
struct DwGrid {
  int64_t cols = 1, col_channels = 1;
  Work per_cell;
  bool channels_last = false;
};

// How run_dw_bands splits the rows × columns grid of N images of OH output rows (a pure function
// of the geometry, the work and the thread count, like plan_chunks):
//  - whole: one chunk, on the calling thread;
//  - columns: parallel_for over the columns alone (`columns` chunks), every chunk all rows: a layer
//    of one output row, or where some band would read only padding, which the kernels' band
//    arguments cannot express;
//  - bands: parallel_for_split(N·OH, cols, split), one band of rows per thread.
struct DwSplit {
  enum Mode { whole, columns, bands } mode = whole;
  Split2d split;        // bands
  int64_t column_chunks = 1;  // columns: the chunk count
};
inline DwSplit dw_split(int64_t N, int64_t OH, int64_t H, int64_t KH, int64_t sh, int64_t ph, int64_t dh,
                        int64_t cols, Work per_cell, int threads) {
  const int64_t rows = N * OH;
  DwSplit d;
  d.split = plan_bands(rows, cols, per_cell, threads);
  if (d.split.m_parts * d.split.n_parts <= 1) return d;
  bool ok = d.split.m_parts > 1;
  for (int64_t b = 0; ok && b < d.split.m_parts; ++b) {
    // Row part b as parallel_for_split cuts it, then its pieces within each image.
    const int64_t r0 = b * (rows / d.split.m_parts) + std::min(b, rows % d.split.m_parts);
    const int64_t r1 = r0 + rows / d.split.m_parts + (b < rows % d.split.m_parts ? 1 : 0);
    for (int64_t r = r0; ok && r < r1; r += std::max<int64_t>(1, std::min(r1 - r, OH - r % OH))) {
      const int64_t oh0 = r % OH, oh1 = std::min(OH, oh0 + (r1 - r));
      ok = dw_band(H, KH, sh, ph, dh, oh0, oh1).H >= 1;
    }
  }
  if (ok) {
    d.mode = DwSplit::bands;
    return d;
  }
  d.column_chunks = plan_chunks(cols, per_cell * double(rows), threads);
  d.mode = d.column_chunks > 1 ? DwSplit::columns : DwSplit::whole;
  return d;
}

// Runs a depthwise conv over the grid as dw_split(..., get_num_threads()) says. The rows of the
// grid are the N·OH output rows; a band that crosses images is cut at the image boundary.
// band(n, oh0, oh1, col0, col1) gets each piece of a band; whole(col0, col1) all rows of all
// images.
template <class Band, class Whole>
void run_dw_bands(int64_t N, int64_t OH, int64_t H, int64_t KH, int64_t sh, int64_t ph, int64_t dh, int64_t cols,
                  Work per_cell, const Band& band, const Whole& whole) {
  const DwSplit d = dw_split(N, OH, H, KH, sh, ph, dh, cols, per_cell, get_num_threads());
  if (d.mode == DwSplit::whole) {
    whole(0, cols);
  } else if (d.mode == DwSplit::columns) {
    parallel_for(0, cols, per_cell * double(N * OH), [&](int64_t c0, int64_t c1) { whole(c0, c1); });
  } else {
    parallel_for_split(N * OH, cols, d.split, per_cell, [&](int64_t r0, int64_t r1, int64_t c0, int64_t c1) {
      for (int64_t r = r0; r < r1;) {
        const int64_t n = r / OH, oh0 = r % OH, oh1 = std::min(OH, oh0 + (r1 - r));
        band(n, oh0, oh1, c0, c1);
        r += oh1 - oh0;
      }
    });
  }
}

}  // namespace finch::quant::kernels
