// Private to quant/: the histogram the Histogram observer keeps, and the pure functions that pick
// a clipping range from it (percentile, MSE, KL divergence), so tests can drive them directly.
//
// Vocabulary: B bins of width w = (hi - lo) / B over [lo, hi]; bin k covers [lo + k w, lo + (k+1) w)
// (the last one includes hi); counts may be fractional after re-binning. e_k = lo + k w is the
// k-th edge, c_k = e_k + w / 2 the k-th center.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "kernels/qparams.h"

namespace finch::quant::detail {

struct Histogram {
  double lo = 0, hi = 0;
  std::vector<double> counts;
  int64_t bins() const { return int64_t(counts.size()); }
  double width() const { return (hi - lo) / double(counts.size()); }
  double total() const;
};

// Adds the n values of x (all finite, inside [h.lo, h.hi]) to h. Parallel over blocks with
// integer per-block counts, so the result does not depend on the thread count.
void histogram_add(Histogram& h, const float* x, int64_t n);

// The same mass over `bins` bins on [lo, hi] (which must contain [h.lo, h.hi]): each old bin's
// count is spread over the new bins it overlaps in proportion to the overlap (a zero-width old
// histogram is a point mass at lo). The total count is preserved.
Histogram rebin(const Histogram& h, double lo, double hi, int64_t bins);

// The histogram of |x|: same bin count over [0, max(|lo|, |hi|)]; a bin straddling 0 is split in
// proportion to its two halves.
Histogram fold_abs(const Histogram& h);

// The value below which a fraction q (0..1) of the mass lies, interpolating linearly inside bins.
double quantile(const Histogram& h, double q);

// Range [lo, hi] minimizing the expected squared error of quantizing the histogram's values with
// `spec` (rounding noise delta^2/12 for each value inside, squared distance to the clip point for
// each value outside, taken at bin centers). Affine: both ends move over bin edges (the range is
// widened to contain 0, as qparams() does). Symmetric: one threshold t over the edges of fold_abs(h),
// range [-t, t].
std::pair<double, double> mse_range(const Histogram& h, const QSpec& spec);

// TensorRT's entropy calibration on an |x| histogram: the threshold edge e_i (i from `levels` up to
// all bins) minimizing KL(P || Q), where P is bins [0, i) with the mass above folded into bin i-1
// and Q merges bins [0, i) into `levels` groups and spreads each group evenly over its non-empty bins.
// Bin 0 (the zero spike of ReLU outputs) counts as much as bin 1.
double entropy_threshold(const Histogram& abs_h, int64_t levels);

}  // namespace finch::quant::detail
