// Histogram maintenance (binning, re-binning, folding) and the range searches of the Histogram
// observer: quantile, MSE over bin edges, TensorRT KL-divergence threshold.
#include "quant/histogram.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "framework/error.h"
#include "framework/parallel.h"

namespace finch::quant::detail {

double Histogram::total() const { return std::accumulate(counts.begin(), counts.end(), 0.0); }

void histogram_add(Histogram& h, const float* x, int64_t n) {
  const int64_t B = h.bins();
  const double span = h.hi - h.lo;
  if (span <= 0) {  // degenerate range: every value equals lo
    h.counts[0] += double(n);
    return;
  }
  // Bin index in double: float (x - lo) could overflow for ranges near ±FLT_MAX.
  const double inv = double(B) / span, lo = h.lo;
  constexpr int64_t kBlock = 1 << 16;
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  std::vector<uint32_t> local(size_t(blocks * B), 0);  // one integer histogram per block: exact
  parallel_for(0, blocks, 1, [&](int64_t b, int64_t e) {
    for (int64_t blk = b; blk < e; ++blk) {
      uint32_t* cnt = local.data() + blk * B;
      const int64_t end = std::min(n, (blk + 1) * kBlock);
      for (int64_t i = blk * kBlock; i < end; ++i) {
        const int64_t k = int64_t((double(x[i]) - lo) * inv);
        ++cnt[std::clamp<int64_t>(k, 0, B - 1)];
      }
    }
  });
  for (int64_t blk = 0; blk < blocks; ++blk)
    for (int64_t k = 0; k < B; ++k) h.counts[size_t(k)] += local[size_t(blk * B + k)];
}

namespace {
// Adds mass c spread uniformly over [a, b] to out (bins of width W from L).
void spread(std::vector<double>& out, double L, double W, double a, double b, double c) {
  const int64_t B = int64_t(out.size());
  auto bin_of = [&](double v) { return W > 0 ? std::clamp<int64_t>(int64_t(std::floor((v - L) / W)), 0, B - 1) : 0; };
  if (!(b > a) || W <= 0) {
    out[size_t(bin_of(a))] += c;
    return;
  }
  int64_t k0 = bin_of(a), k1 = bin_of(b);
  if (k1 > k0 && L + double(k1) * W >= b) --k1;  // b on an edge: the bin above gets nothing
  double given = 0;
  for (int64_t k = k0; k < k1; ++k) {
    const double part = c * std::max(0.0, std::min(b, L + double(k + 1) * W) - std::max(a, L + double(k) * W)) / (b - a);
    out[size_t(k)] += part;
    given += part;
  }
  out[size_t(k1)] += std::max(0.0, c - given);  // the last piece takes the remainder: mass is conserved
}
}  // namespace

Histogram rebin(const Histogram& h, double lo, double hi, int64_t bins) {
  Histogram r{lo, hi, std::vector<double>(size_t(bins), 0.0)};
  const double w = h.width(), W = r.width();
  for (int64_t j = 0; j < h.bins(); ++j) {
    const double c = h.counts[size_t(j)];
    if (c == 0) continue;
    const double a = h.lo + double(j) * w;
    spread(r.counts, lo, W, a, a + w, c);
  }
  return r;
}

Histogram fold_abs(const Histogram& h) {
  const double M = std::max(std::fabs(h.lo), std::fabs(h.hi));
  Histogram r{0.0, M, std::vector<double>(h.counts.size(), 0.0)};
  const double w = h.width(), W = r.width();
  for (int64_t j = 0; j < h.bins(); ++j) {
    const double c = h.counts[size_t(j)];
    if (c == 0) continue;
    const double a = h.lo + double(j) * w, b = a + w;
    if (a >= 0) {
      spread(r.counts, 0.0, W, a, b, c);
    } else if (b <= 0) {
      spread(r.counts, 0.0, W, -b, -a, c);
    } else {  // straddles 0: each side keeps its share
      spread(r.counts, 0.0, W, 0.0, -a, c * (-a) / w);
      spread(r.counts, 0.0, W, 0.0, b, c * b / w);
    }
  }
  return r;
}

double quantile(const Histogram& h, double q) {
  const double N = h.total(), target = q * N, w = h.width();
  double cum = 0;
  for (int64_t k = 0; k < h.bins(); ++k) {
    const double c = h.counts[size_t(k)];
    if (c > 0 && cum + c >= target) return h.lo + w * (double(k) + std::clamp((target - cum) / c, 0.0, 1.0));
    cum += c;
  }
  return h.hi;
}

namespace {
// Prefix sums of h_k, h_k c_k, h_k c_k^2 (index k holds the sums over bins [0, k)), so that the
// squared clipping error of all bins below or above an edge to any point p is O(1):
// sum h (p - c)^2 = p^2 S0 - 2 p S1 + S2.
struct Moments {
  std::vector<double> s0, s1, s2;
  explicit Moments(const Histogram& h) : s0(h.counts.size() + 1), s1(s0.size()), s2(s0.size()) {
    const double w = h.width();
    for (size_t k = 0; k < h.counts.size(); ++k) {
      const double c = h.lo + (double(k) + 0.5) * w, n = h.counts[k];
      s0[k + 1] = s0[k] + n;
      s1[k + 1] = s1[k] + n * c;
      s2[k + 1] = s2[k] + n * c * c;
    }
  }
  // Squared distance to p of all the mass in bins [a, b).
  double sq(size_t a, size_t b, double p) const {
    return std::max(0.0, p * p * (s0[b] - s0[a]) - 2 * p * (s1[b] - s1[a]) + (s2[b] - s2[a]));
  }
};
}  // namespace

std::pair<double, double> mse_range(const Histogram& h, const QSpec& spec) {
  const QRange qr = qrange(spec);
  const int64_t B = h.bins();
  if (spec.symmetric) {
    const Histogram a = fold_abs(h);
    const Moments m(a);
    const double steps = double((qr.qmax - qr.qmin) / 2), w = a.width();
    double best = std::numeric_limits<double>::infinity(), best_t = a.hi;
    for (int64_t j = 1; j <= B; ++j) {
      const double t = double(j) * w, s = t / steps;
      const double err = m.s0[size_t(j)] * s * s / 12 + m.sq(size_t(j), size_t(B), t);
      if (err < best) best = err, best_t = t;
    }
    return {-best_t, best_t};
  }
  // Affine: lower edge index i (only edges <= 0 matter once the range is widened to contain 0),
  // upper edge index j (edges >= 0).
  const Moments m(h);
  const double w = h.width(), steps = double(qr.qmax - qr.qmin);
  const int64_t i_max = h.lo >= 0 || w <= 0 ? 0 : std::clamp<int64_t>(int64_t(std::floor(-h.lo / w)), 0, B);
  const int64_t j_min = h.hi <= 0 || w <= 0 ? B : std::clamp<int64_t>(int64_t(std::ceil(-h.lo / w)), 0, B);
  auto edge = [&](int64_t k) { return k == B ? h.hi : h.lo + double(k) * w; };
  auto err = [&](int64_t i, int64_t j) {
    const double lo = std::min(edge(i), 0.0), hi = std::max(edge(j), 0.0), s = (hi - lo) / steps;
    const double inside = m.s0[size_t(j)] - m.s0[size_t(i)];
    return inside * s * s / 12 + m.sq(0, size_t(i), lo) + m.sq(size_t(j), size_t(B), hi);
  };
  // Exhaustive over edge pairs up to ~2^18 of them; beyond (the default 2048 bins around 0 give
  // ~2^20) a pass over every stride-th edge, then a full-resolution pass around the best pair:
  // the error is smooth in both ends, and this keeps a search near a millisecond.
  const int64_t ni = i_max + 1, nj = B - j_min + 1;
  int64_t stride = 1;
  while (double(ni / stride + 1) * double(nj / stride + 1) > double(1 << 18)) stride *= 2;
  double best = std::numeric_limits<double>::infinity();
  int64_t bi = 0, bj = B;
  auto search = [&](int64_t i0, int64_t i1, int64_t j0, int64_t j1, int64_t st) {
    for (int64_t i = i0; i <= i1; i += st)
      for (int64_t j = j1; j >= j0; j -= st) {
        if (j <= i && !(i == j && edge(i) == 0)) continue;
        const double e = err(i, j);
        if (e < best) best = e, bi = i, bj = j;
      }
  };
  search(0, i_max, j_min, B, stride);
  if (stride > 1)
    search(std::max<int64_t>(0, bi - stride), std::min(i_max, bi + stride), std::max(j_min, bj - stride),
           std::min(B, bj + stride), 1);
  return {edge(bi), edge(bj)};
}

double entropy_threshold(const Histogram& abs_h, int64_t levels) {
  const int64_t B = abs_h.bins();
  // The zero spike of ReLU outputs (and of padding) sits in bin 0; left in, P is dominated by it
  // and the search happily clips everything else. Bin 0 takes bin 1's count, as NVIDIA's
  // pytorch-quantization entropy calibrator does.
  std::vector<double> hist = abs_h.counts;
  if (B > 1) hist[0] = hist[1];
  double N = 0;
  for (double c : hist) N += c;
  if (N <= 0) return abs_h.hi;
  // Everything per candidate i is O(levels) from prefix sums: KL(P || Q) = sum p log p - sum p log q,
  // and q is constant over a group, so the second sum is sum over groups of P_g log q_g.
  std::vector<double> S(size_t(B) + 1, 0.0), nz(S.size(), 0.0), plogp(S.size(), 0.0);
  for (int64_t k = 0; k < B; ++k) {
    const double c = hist[size_t(k)], p = c / N;
    S[size_t(k + 1)] = S[size_t(k)] + c;
    nz[size_t(k + 1)] = nz[size_t(k)] + (c != 0);
    plogp[size_t(k + 1)] = plogp[size_t(k)] + (p > 0 ? p * std::log(p) : 0.0);
  }
  double best = std::numeric_limits<double>::infinity();
  int64_t best_i = B;
  for (int64_t i = std::min(levels, B); i <= B; ++i) {
    const double outliers = S[size_t(B)] - S[size_t(i)];
    // P: bins [0, i) with the outliers folded into bin i-1. Q: bins [0, i) (without the
    // outliers) merged into `levels` groups (bin k in group k * levels / i, so group g is
    // [ceil(g i / levels), ceil((g+1) i / levels))), each group's mass spread evenly over the
    // bins where P is non-zero, normalized.
    const double q_total = S[size_t(i)];
    if (q_total <= 0) continue;
    const double last = (hist[size_t(i - 1)] + outliers) / N;
    double kl = plogp[size_t(i - 1)] + (last > 0 ? last * std::log(last) : 0.0);
    const int64_t groups = std::min(levels, i);
    for (int64_t g = 0; g < groups && std::isfinite(kl); ++g) {
      const int64_t a = (g * i + groups - 1) / groups, b = ((g + 1) * i + groups - 1) / groups;
      const bool has_last = b == i;
      const double mass = S[size_t(b)] - S[size_t(a)];
      const double P = (mass + (has_last ? outliers : 0.0)) / N;
      if (P == 0) continue;
      double nonzero = nz[size_t(b)] - nz[size_t(a)];
      if (has_last && hist[size_t(i - 1)] == 0 && outliers > 0) nonzero += 1;
      if (mass == 0) {
        kl = std::numeric_limits<double>::infinity();  // P has mass where Q has none
        break;
      }
      kl -= P * std::log(mass / nonzero / q_total);
    }
    if (kl < best) best = kl, best_i = i;
  }
  return best_i == B ? abs_h.hi : abs_h.lo + double(best_i) * abs_h.width();
}

}  // namespace finch::quant::detail
