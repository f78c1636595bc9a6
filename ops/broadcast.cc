// Broadcast shapes, the coalesced strided loop behind every broadcasting kernel, and sum_to.
#include "ops/broadcast.h"

#include <algorithm>

#include "framework/parallel.h"
#include "ops/elementwise.h"

namespace finch::ops {

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  const size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    // i counts from the end: dim -(i+1).
    const int64_t da = i < a.size() ? a[a.size() - 1 - i] : 1;
    const int64_t db = i < b.size() ? b[b.size() - 1 - i] : 1;
    if (da != db && da != 1 && db != 1)
      fail(op, ": shapes ", shape_str(a), " and ", shape_str(b), " cannot be broadcast (dim -",
           i + 1, ": ", da, " vs ", db, ")");
    out[n - 1 - i] = da == 1 ? db : da;
  }
  return out;
}

Shape broadcast_strides(const Tensor& t, const Shape& out) {
  const Shape& s = t.shape();
  const Shape& st = t.strides();
  FINCH_DCHECK(s.size() <= out.size(), "broadcast_strides: rank ", s.size(), " > ", out.size());
  Shape r(out.size(), 0);
  const size_t lead = out.size() - s.size();
  for (size_t d = 0; d < s.size(); ++d) r[lead + d] = s[d] == 1 ? 0 : st[d];
  return r;
}

StridedLoop make_strided_loop(const Shape& out, const std::vector<Shape>& operand_strides) {
  StridedLoop L;
  L.numel = shape_numel(out);
  const size_t k = operand_strides.size();
  FINCH_CHECK(k >= 1 && k <= 4, "make_strided_loop: ", k, " operands (1 to 4 supported)");
  L.strides.assign(k, Shape());
  for (size_t d = 0; d < out.size(); ++d) {
    if (out[d] == 1) continue;
    bool merge = !L.shape.empty();
    for (size_t j = 0; j < k && merge; ++j)
      merge = L.strides[j].back() == operand_strides[j][d] * out[d];
    if (merge) {
      L.shape.back() *= out[d];
      for (size_t j = 0; j < k; ++j) L.strides[j].back() = operand_strides[j][d];
    } else {
      L.shape.push_back(out[d]);
      for (size_t j = 0; j < k; ++j) L.strides[j].push_back(operand_strides[j][d]);
    }
  }
  if (L.shape.empty()) {  // 0-d or all ones: one element
    L.shape.push_back(1);
    for (size_t j = 0; j < k; ++j) L.strides[j].push_back(0);
  }
  return L;
}

void for_each_row(const StridedLoop& L, int64_t grain, const RowFn& row) {
  if (L.numel == 0) return;
  const size_t nd = L.shape.size(), k = L.strides.size();
  const int64_t inner = L.shape[nd - 1];
  parallel_for(0, L.numel, std::max<int64_t>(grain, 1), [&](int64_t begin, int64_t end) {
    // Decode the chunk's start into a multi-index, then walk rows with an odometer.
    Shape idx(nd, 0);
    int64_t rem = begin;
    for (size_t d = nd; d-- > 0;) {
      idx[d] = rem % L.shape[d];
      rem /= L.shape[d];
    }
    int64_t off[4] = {0, 0, 0, 0}, in[4] = {0, 0, 0, 0};
    for (size_t j = 0; j < k; ++j) {
      for (size_t d = 0; d < nd; ++d) off[j] += idx[d] * L.strides[j][d];
      in[j] = L.strides[j][nd - 1];
    }
    int64_t pos = begin;
    while (pos < end) {
      const int64_t n = std::min(inner - idx[nd - 1], end - pos);
      row(n, off, in);
      pos += n;
      if (pos >= end) break;
      // Advance: the inner run ended (n reached the row end), carry into the outer dims.
      for (size_t j = 0; j < k; ++j) off[j] -= idx[nd - 1] * L.strides[j][nd - 1];
      idx[nd - 1] = 0;
      for (size_t d = nd - 1; d-- > 0;) {
        for (size_t j = 0; j < k; ++j) off[j] += L.strides[j][d];
        if (++idx[d] < L.shape[d]) break;
        for (size_t j = 0; j < k; ++j) off[j] -= idx[d] * L.strides[j][d];
        idx[d] = 0;
      }
    }
  });
}

// ---------------------------------------------------------------------------------------------
// sum_to

Tensor sum_to_reference(const Tensor& g, const Shape& shape) {
  Tensor out = zeros(shape, g.dtype());
  const Shape ost = broadcast_strides(out, g.shape());
  std::vector<double> acc(size_t(out.numel()), 0.0);
  const auto gv = g.to_vector<double>();
  for_each_index(g.shape(), [&](int64_t i, const Shape& idx) {
    int64_t o = 0;
    for (size_t d = 0; d < idx.size(); ++d) o += idx[d] * ost[d];
    acc[size_t(o)] += gv[size_t(i)];
  });
  visit_dtype(g.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
      T* p = out.data<T>();
      for (size_t i = 0; i < acc.size(); ++i) p[i] = T(acc[i]);
    }
  });
  return out;
}

namespace {

// Sum of a contiguous run, in double.
double run_sum(const float* p, int64_t n) { return kernels::sum_f32(p, n); }
double run_sum(const double* p, int64_t n) {
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) s0 += p[i], s1 += p[i + 1], s2 += p[i + 2], s3 += p[i + 3];
  for (; i < n; ++i) s0 += p[i];
  return (s0 + s1) + (s2 + s3);
}
void run_accumulate(double* acc, const float* p, int64_t n) { kernels::accumulate_f32(acc, p, n); }
void run_accumulate(double* acc, const double* p, int64_t n) {
  for (int64_t i = 0; i < n; ++i) acc[i] += p[i];
}

// The coalesced reduction pattern: dims alternate between kept (K) and reduced (R).
struct Pattern {
  Shape size, stride;  // contiguous strides of g after coalescing
  std::vector<bool> reduced;
};

// Offset of linear index `lin` over the dims listed in `dims` (row-major among them).
int64_t decode(int64_t lin, const std::vector<size_t>& dims, const Pattern& p) {
  int64_t off = 0;
  for (size_t j = dims.size(); j-- > 0;) {
    const size_t d = dims[j];
    off += (lin % p.size[d]) * p.stride[d];
    lin /= p.size[d];
  }
  return off;
}

template <typename T>
void sum_to_impl(const T* g, const Pattern& p, T* out) {
  const size_t nd = p.size.size();
  std::vector<size_t> kdims, rdims;
  for (size_t d = 0; d < nd; ++d) (p.reduced[d] ? rdims : kdims).push_back(d);
  int64_t K = 1, R = 1;
  for (size_t d : kdims) K *= p.size[d];
  for (size_t d : rdims) R *= p.size[d];
  const int threads = get_num_threads();

  if (p.reduced[nd - 1]) {
    // Innermost run is summed: out[k] = Σ_r Σ_i g[base(k) + off(r) + i].
    const int64_t run = p.size[nd - 1];
    std::vector<size_t> outer_r(rdims.begin(), rdims.end() - 1);
    const int64_t RO = R / run;
    if (K < threads && RO * run >= (int64_t(1) << 16)) {
      // Few outputs, much work each (a full sum, or [2] from [2, big]): split the r range into
      // fixed parts with partial sums combined in order, so the result depends only on the
      // thread count.
      const int64_t parts = std::min<int64_t>(threads, RO);
      std::vector<double> partial(size_t(K * parts), 0.0);
      parallel_for(0, K * parts, 1, [&](int64_t b, int64_t e) {
        for (int64_t t = b; t < e; ++t) {
          const int64_t k = t / parts, part = t % parts;
          const int64_t base = decode(k, kdims, p);
          const int64_t r0 = RO * part / parts, r1 = RO * (part + 1) / parts;
          double s = 0;
          for (int64_t r = r0; r < r1; ++r) s += run_sum(g + base + decode(r, outer_r, p), run);
          partial[size_t(t)] = s;
        }
      });
      for (int64_t k = 0; k < K; ++k) {
        double s = 0;
        for (int64_t part = 0; part < parts; ++part) s += partial[size_t(k * parts + part)];
        out[k] = T(s);
      }
      return;
    }
    // Each thread owns a range of outputs; within it the r loop is outermost so that for
    // [N, C, H·W] → [C] the reads walk g in memory order (k-contiguous blocks of rows) instead
    // of hopping C·H·W floats between rows, which defeats the hardware prefetcher.
    const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 15) / std::max<int64_t>(R, 1));
    parallel_for(0, K, grain, [&](int64_t b, int64_t e) {
      std::vector<double> acc(size_t(e - b), 0.0);
      std::vector<int64_t> base(size_t(e - b));
      for (int64_t k = b; k < e; ++k) base[size_t(k - b)] = decode(k, kdims, p);
      for (int64_t r = 0; r < RO; ++r) {
        const int64_t off = decode(r, outer_r, p);
        for (int64_t k = b; k < e; ++k) acc[size_t(k - b)] += run_sum(g + base[size_t(k - b)] + off, run);
      }
      for (int64_t k = b; k < e; ++k) out[k] = T(acc[size_t(k - b)]);
    });
    return;
  }

  // Innermost run is kept: out[ko, c] = Σ_r g[base(ko) + off(r) + c]; rows are added into a
  // block of accumulators (a vector add per row, cache friendly for the bias-of-[N, C] case).
  const int64_t cols = p.size[nd - 1];
  std::vector<size_t> outer_k(kdims.begin(), kdims.end() - 1);
  const int64_t KO = K / cols;
  constexpr int64_t kBlock = 512;
  const int64_t blocks = (cols + kBlock - 1) / kBlock;
  const int64_t tasks = KO * blocks;
  const int64_t parts =
      tasks >= threads ? 1 : std::max<int64_t>(1, std::min<int64_t>(threads, R / 64));
  std::vector<double> partial(size_t(parts * K), 0.0);
  parallel_for(0, tasks * parts, 1, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      const int64_t part = t % parts, task = t / parts;
      const int64_t ko = task / blocks, blk = task % blocks;
      const int64_t c0 = blk * kBlock, n = std::min(kBlock, cols - c0);
      const int64_t base = decode(ko, outer_k, p) + c0;
      double* acc = partial.data() + part * K + ko * cols + c0;
      const int64_t r0 = R * part / parts, r1 = R * (part + 1) / parts;
      for (int64_t r = r0; r < r1; ++r) run_accumulate(acc, g + base + decode(r, rdims, p), n);
    }
  });
  for (int64_t i = 0; i < K; ++i) {
    double s = 0;
    for (int64_t part = 0; part < parts; ++part) s += partial[size_t(part * K + i)];
    out[i] = T(s);
  }
}

}  // namespace

Tensor sum_to(const Tensor& g, const Shape& shape) {
  if (g.shape() == shape) return g;
  if (shape.size() > g.shape().size() || broadcast_shapes(shape, g.shape(), "sum_to") != g.shape())
    fail("sum_to: shape ", shape_str(shape), " does not broadcast to the gradient's shape ",
         shape_str(g.shape()));
  if (g.dtype() != DType::f32 && g.dtype() != DType::f64)
    fail("sum_to: expected an F32 or F64 gradient, got ", dtype_name(g.dtype()));
  Tensor out = empty(shape, g.dtype());
  if (out.numel() == 0) return out;
  if (g.numel() == 0) return out.zero_();
  const Tensor gc = g.contiguous();
  const Shape& gs = gc.shape();
  const size_t lead = gs.size() - shape.size();
  Pattern p;
  for (size_t d = 0; d < gs.size(); ++d) {
    if (gs[d] == 1) continue;
    const bool red = d < lead || shape[d - lead] == 1;
    if (!p.size.empty() && p.reduced.back() == red) {
      p.size.back() *= gs[d];
    } else {
      p.size.push_back(gs[d]);
      p.reduced.push_back(red);
    }
  }
  if (p.size.empty() || std::none_of(p.reduced.begin(), p.reduced.end(), [](bool r) { return r; })) {
    // Only size-1 dims differ: the data is already laid out as `shape`.
    std::memcpy(out.raw_data(), gc.raw_data(), out.nbytes());
    return out;
  }
  p.stride.assign(p.size.size(), 1);
  for (size_t d = p.size.size() - 1; d-- > 0;) p.stride[d] = p.stride[d + 1] * p.size[d + 1];
  if (g.dtype() == DType::f32)
    sum_to_impl(gc.data<float>(), p, out.data<float>());
  else
    sum_to_impl(gc.data<double>(), p, out.data<double>());
  return out;
}

}  // namespace finch::ops
