// Reductions: planning (merge dims into kept/reduced groups), the blocked row/column steps,
// max/argmax, var, their backward kernels and the scalar references.
//
// Accuracy: f32 sums are blocked. A row step sums blocks of kRowBlock elements in f32 (four
// vector accumulators, so each lane adds at most kRowBlock/32 terms) and adds the block sums in
// f64; a column step sums at most kColBlock rows in f32 and adds those partials in f64. The error
// is then bounded by the block length, not by the tensor size (a naive f32 loop over 16M ones
// stops at 16777216). The blocks are fixed by the sizes alone, so the result does not depend on
// the thread count at all. var runs the same plan twice (mean, then Σ (x − mean)² with the
// centering fused into the innermost step), so it is as blocked and as deterministic.
#include "ops/reduce.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "framework/parallel.h"
#include "ops/shape.h"

namespace finch::ops {

namespace {

constexpr int64_t kRowBlock = 4096;
constexpr int64_t kColBlock = 256;
constexpr int64_t kColChunk = 1024;  // output columns per task (accumulators stay in L1)

void check_float(const Tensor& x, const char* op) {
  if (x.dtype() != DType::f32 && x.dtype() != DType::f64)
    fail(op, ": expected an F32 or F64 tensor, got ", dtype_name(x.dtype()));
}

// Groups of the (contiguous) input: size and whether the group is reduced. Size-1 dims are
// dropped and adjacent dims of the same kind merged.
struct Group {
  int64_t size;
  bool reduced;
};

std::vector<Group> plan_groups(const Shape& shape, const std::vector<int64_t>& dims) {
  std::vector<Group> g;
  for (int64_t d = 0; d < int64_t(shape.size()); ++d) {
    if (shape[size_t(d)] == 1) continue;
    const bool red = std::binary_search(dims.begin(), dims.end(), d);
    if (!g.empty() && g.back().reduced == red)
      g.back().size *= shape[size_t(d)];
    else
      g.push_back({shape[size_t(d)], red});
  }
  return g;
}

template <typename T>
T row_sum(const T* x, int64_t n) {
  if constexpr (std::is_same_v<T, float>) {
    return row_sum_f32(x, n);
  } else {
    T s = 0;
    for (int64_t i = 0; i < n; ++i) s += x[i];
    return s;
  }
}

template <typename T>
void col_sum(const T* x, int64_t rows, int64_t inner, int64_t ld, T* out) {
  if constexpr (std::is_same_v<T, float>) {
    col_sum_f32(x, rows, inner, ld, out, false);
  } else {
    for (int64_t k = 0; k < inner; ++k) out[k] = 0;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t k = 0; k < inner; ++k) out[k] += x[r * ld + k];
  }
}

template <typename T>
T row_sqdev(const T* x, int64_t n, T m) {
  if constexpr (std::is_same_v<T, float>) {
    return row_sqdev_f32(x, n, m);
  } else {
    T s = 0;
    for (int64_t i = 0; i < n; ++i) s += (x[i] - m) * (x[i] - m);
    return s;
  }
}

template <typename T>
void col_sqdev(const T* x, int64_t rows, int64_t inner, int64_t ld, const T* m, T* out) {
  if constexpr (std::is_same_v<T, float>) {
    col_sqdev_f32(x, rows, inner, ld, m, out);
  } else {
    for (int64_t k = 0; k < inner; ++k) out[k] = 0;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t k = 0; k < inner; ++k) out[k] += (x[r * ld + k] - m[k]) * (x[r * ld + k] - m[k]);
  }
}

// Centering for the variance's second pass: when `m` is set, the steps sum (x − m)² instead
// of x, with m[kept[o] · inner + k] the mean that element (o, ·, k) belongs to.
template <typename T>
struct Center {
  const T* m = nullptr;
  const int64_t* kept = nullptr;
};

// y[o] = Σ_i x[o·n + i] for o < outer.
template <typename T>
void row_step(const T* x, int64_t outer, int64_t n, T* y, Center<T> c = {}) {
  const int64_t nb = (n + kRowBlock - 1) / kRowBlock;
  auto block = [&](int64_t o, int64_t i0, int64_t len) {
    return c.m ? row_sqdev(x + o * n + i0, len, c.m[c.kept[o]]) : row_sum(x + o * n + i0, len);
  };
  if (nb <= 1 && c.m) {
    parallel_for(0, outer, std::max<int64_t>(1, 16384 / std::max<int64_t>(n, 1)),
                 [&](int64_t b, int64_t e) {
                   for (int64_t o = b; o < e; ++o) y[o] = block(o, 0, n);
                 });
    return;
  }
  if (nb <= 1) {
    parallel_for(0, outer, std::max<int64_t>(1, 16384 / std::max<int64_t>(n, 1)),
                 [&](int64_t b, int64_t e) {
                   if constexpr (std::is_same_v<T, float>) {
                     row_sums_f32(x + b * n, e - b, n, y + b);
                   } else {
                     for (int64_t o = b; o < e; ++o) y[o] = row_sum(x + o * n, n);
                   }
                 });
    return;
  }
  std::vector<double> part(size_t(outer * nb));
  parallel_for(0, outer * nb, 1, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      const int64_t o = t / nb, blk = t % nb;
      const int64_t i0 = blk * kRowBlock, len = std::min(kRowBlock, n - i0);
      part[size_t(t)] = double(block(o, i0, len));
    }
  });
  for (int64_t o = 0; o < outer; ++o) {
    double s = 0;
    for (int64_t blk = 0; blk < nb; ++blk) s += part[size_t(o * nb + blk)];
    y[o] = T(s);
  }
}

// y[o, k] = Σ_r x[o, r, k] for x [outer, r, inner].
template <typename T>
void col_step(const T* x, int64_t outer, int64_t r, int64_t inner, T* y, Center<T> c = {}) {
  const int64_t nrb = std::max<int64_t>(1, (r + kColBlock - 1) / kColBlock);
  const int64_t nic = (inner + kColChunk - 1) / kColChunk;
  const int64_t tasks = outer * nrb * nic;
  std::vector<T> part;
  if (nrb > 1) part.resize(size_t(outer * nrb * inner));
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, std::min(r, kColBlock) * std::min(inner, kColChunk)));
  parallel_for(0, tasks, grain, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      const int64_t ic = t % nic, rb = (t / nic) % nrb, o = t / (nic * nrb);
      const int64_t k0 = ic * kColChunk, kn = std::min(kColChunk, inner - k0);
      const int64_t r0 = rb * kColBlock, rn = std::min(kColBlock, r - r0);
      T* dst = nrb > 1 ? part.data() + (o * nrb + rb) * inner + k0 : y + o * inner + k0;
      if (c.m)
        col_sqdev(x + (o * r + r0) * inner + k0, rn, kn, inner, c.m + c.kept[o] * inner + k0, dst);
      else
        col_sum(x + (o * r + r0) * inner + k0, rn, kn, inner, dst);
    }
  });
  if (nrb > 1) {
    parallel_for(0, outer * inner, 4096, [&](int64_t b, int64_t e) {
      for (int64_t ok = b; ok < e; ++ok) {
        const int64_t o = ok / inner, k = ok % inner;
        double s = 0;
        for (int64_t rb = 0; rb < nrb; ++rb) s += double(part[size_t((o * nrb + rb) * inner + k)]);
        y[ok] = T(s);
      }
    });
  }
}

// Σ over the planned groups, innermost reduced group first; `out` has the kept elements in
// order (numel = product of kept groups).
// For each o over groups [0, j): its index among the kept elements of those groups.
std::vector<int64_t> kept_index(const std::vector<Group>& g, int64_t j) {
  int64_t outer = 1;
  for (int64_t i = 0; i < j; ++i) outer *= g[size_t(i)].size;
  std::vector<int64_t> out(static_cast<size_t>(outer));
  for (int64_t o = 0; o < outer; ++o) {
    int64_t rem = o, k = 0, mul = 1;
    for (int64_t i = j - 1; i >= 0; --i) {
      const int64_t c = rem % g[size_t(i)].size;
      rem /= g[size_t(i)].size;
      if (!g[size_t(i)].reduced) {
        k += c * mul;
        mul *= g[size_t(i)].size;
      }
    }
    out[size_t(o)] = k;
  }
  return out;
}

// With `mean` (the kept-shaped mean), the first (innermost) step sums squared deviations; the
// later steps then add those partial sums like any sum.
template <typename T>
void sum_planned(const T* x, std::vector<Group> g, T* out, const T* mean = nullptr) {
  std::vector<T> a, b;
  std::vector<int64_t> kept;
  const T* cur = x;
  for (;;) {
    int64_t j = -1;
    for (int64_t i = int64_t(g.size()) - 1; i >= 0; --i)
      if (g[size_t(i)].reduced) { j = i; break; }
    int64_t outer = 1, inner = 1;
    for (int64_t i = 0; i < j; ++i) outer *= g[size_t(i)].size;
    for (int64_t i = j + 1; i < int64_t(g.size()); ++i) inner *= g[size_t(i)].size;
    if (j < 0) {  // nothing (left) to reduce: copy through
      if (cur != out) std::copy(cur, cur + outer * inner, out);
      return;
    }
    bool more = false;
    for (int64_t i = 0; i < j; ++i) more |= g[size_t(i)].reduced;
    T* dst = out;
    if (more) {
      std::vector<T>& buf = (cur == a.data()) ? b : a;
      buf.assign(size_t(outer * inner), T(0));
      dst = buf.data();
    }
    Center<T> c;
    if (mean && cur == x) {
      kept = kept_index(g, j);
      c = {mean, kept.data()};
    }
    if (inner == 1)
      row_step(cur, outer, g[size_t(j)].size, dst, c);
    else
      col_step(cur, outer, g[size_t(j)].size, inner, dst, c);
    if (!more) return;
    std::vector<Group> ng(g.begin(), g.begin() + j);
    if (inner > 1) ng.push_back({inner, false});
    g = std::move(ng);
    cur = dst;
  }
}

// For an input made contiguous: [outer, r, inner] around one dim.
void split_at(const Shape& s, int64_t dim, int64_t& outer, int64_t& r, int64_t& inner) {
  outer = 1;
  inner = 1;
  for (int64_t i = 0; i < dim; ++i) outer *= s[size_t(i)];
  for (int64_t i = dim + 1; i < int64_t(s.size()); ++i) inner *= s[size_t(i)];
  r = s[size_t(dim)];
}

// Offset of each input element's output element, for the references.
int64_t out_offset(const Shape& idx, const Shape& keep_strides) {
  int64_t off = 0;
  for (size_t d = 0; d < idx.size(); ++d) off += idx[d] * keep_strides[d];
  return off;
}

// Strides into a keepdim-shaped contiguous output, with 0 on the reduced dims.
Shape keep_strides_for(const Shape& in, const std::vector<int64_t>& dims) {
  Shape ks = reduced_shape(in, dims, true);
  Shape st = contiguous_strides(ks);
  for (int64_t d : dims) st[size_t(d)] = 0;
  return st;
}

}  // namespace

std::vector<int64_t> normalize_dims(const std::vector<int64_t>& dims, int64_t ndim, const char* op) {
  std::vector<int64_t> out;
  if (dims.empty()) {
    for (int64_t d = 0; d < ndim; ++d) out.push_back(d);
    return out;
  }
  for (int64_t d : dims) out.push_back(ndim == 0 && (d == 0 || d == -1) ? 0 : wrap_dim(d, ndim, op));
  std::sort(out.begin(), out.end());
  for (size_t i = 1; i < out.size(); ++i)
    if (out[i] == out[i - 1]) fail(op, ": dim ", out[i], " appears more than once in the dims");
  if (ndim == 0) out.clear();
  return out;
}

Shape reduced_shape(const Shape& in, const std::vector<int64_t>& dims, bool keepdim) {
  Shape out;
  for (int64_t d = 0; d < int64_t(in.size()); ++d) {
    const bool red = std::binary_search(dims.begin(), dims.end(), d);
    if (!red)
      out.push_back(in[size_t(d)]);
    else if (keepdim)
      out.push_back(1);
  }
  return out;
}

int64_t reduced_count(const Shape& in, const std::vector<int64_t>& dims) {
  int64_t n = 1;
  for (int64_t d : dims) n *= in[size_t(d)];
  return n;
}

Tensor sum(const Tensor& x, const std::vector<int64_t>& dims_in, bool keepdim) {
  check_float(x, "sum");
  const auto dims = normalize_dims(dims_in, x.dim(), "sum");
  Tensor out = empty(reduced_shape(x.shape(), dims, keepdim), x.dtype());
  if (out.numel() == 0) return out;
  if (x.numel() == 0) return out.zero_();
  const Tensor xc = x.contiguous();
  visit_dtype(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>)
      sum_planned(xc.data<T>(), plan_groups(x.shape(), dims), out.data<T>());
  });
  return out;
}

Tensor mean(const Tensor& x, const std::vector<int64_t>& dims_in, bool keepdim) {
  check_float(x, "mean");
  const auto dims = normalize_dims(dims_in, x.dim(), "mean");
  Tensor out = sum(x, dims, keepdim);
  const int64_t n = reduced_count(x.shape(), dims);
  const double inv = n == 0 ? std::numeric_limits<double>::quiet_NaN() : 1.0 / double(n);
  visit_dtype(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
      T* p = out.data<T>();
      for (int64_t i = 0; i < out.numel(); ++i) p[i] = n == 0 ? T(inv) : T(p[i] * T(inv));
    }
  });
  return out;
}

std::pair<Tensor, Tensor> max(const Tensor& x, int64_t dim_in, bool keepdim) {
  check_float(x, "max");
  const int64_t dim = x.dim() == 0 ? 0 : wrap_dim(dim_in, x.dim(), "max");
  const Shape xs = x.dim() == 0 ? Shape{1} : x.shape();
  if (xs[size_t(dim)] == 0)
    fail("max: expected a non-empty dim ", dim_in, ", got shape ", shape_str(x.shape()));
  const std::vector<int64_t> dims = x.dim() == 0 ? std::vector<int64_t>{} : std::vector<int64_t>{dim};
  const Shape os = reduced_shape(x.shape(), dims, keepdim);
  Tensor vals = empty(os, x.dtype()), idx = empty(os, DType::i64);
  if (vals.numel() == 0) return {vals, idx};
  const Tensor xc = x.contiguous();
  int64_t outer, r, inner;
  split_at(xs, dim, outer, r, inner);
  visit_dtype(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
      const T* px = xc.data<T>();
      T* pv = vals.data<T>();
      int64_t* pi = idx.data<int64_t>();
      // NaN is the largest and the first NaN sticks (torch.max propagates NaN).
      auto better = [](T v, T best) { return v > best || (std::isnan(v) && !std::isnan(best)); };
      parallel_for(0, outer, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, r * inner)),
                   [&](int64_t b, int64_t e) {
        if constexpr (std::is_same_v<T, float>) {
          if (inner == 1) {  // the contiguous row case (argmax of logits): Highway
            row_max_f32(px + b * r, e - b, r, pv + b, pi + b);
            return;
          }
        }
        for (int64_t o = b; o < e; ++o) {
          const T* src = px + o * r * inner;
          T* bv = pv + o * inner;
          int64_t* bi = pi + o * inner;
          for (int64_t k = 0; k < inner; ++k) { bv[k] = src[k]; bi[k] = 0; }
          for (int64_t j = 1; j < r; ++j) {
            const T* row = src + j * inner;
            for (int64_t k = 0; k < inner; ++k)
              if (better(row[k], bv[k])) { bv[k] = row[k]; bi[k] = j; }
          }
        }
      });
    }
  });
  return {vals, idx};
}

Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) {
  if (x.dtype() != DType::f32 && x.dtype() != DType::f64)
    fail("argmax: expected an F32 or F64 tensor, got ", dtype_name(x.dtype()));
  return max(x, dim, keepdim).second;
}

Tensor var(const Tensor& x, const std::vector<int64_t>& dims_in, int64_t correction, bool keepdim) {
  check_float(x, "var");
  const auto dims = normalize_dims(dims_in, x.dim(), "var");
  Tensor out = empty(reduced_shape(x.shape(), dims, keepdim), x.dtype());
  if (out.numel() == 0) return out;
  const int64_t n = reduced_count(x.shape(), dims);
  const double denom = double(std::max<int64_t>(0, n - correction));
  // Two passes, both through the planned sums: the mean, then Σ (x − mean)² with the centering
  // fused into the innermost step. The one-pass E[x²] − E[x]² cancels catastrophically when
  // |mean| >> std. n <= correction gives inf/nan, as torch.
  const std::vector<Group> g = plan_groups(x.shape(), dims);
  const bool any_reduced = std::any_of(g.begin(), g.end(), [](const Group& e) { return e.reduced; });
  if (n == 0 || !any_reduced) return out.fill_(n == 0 ? std::nan("") : 0.0 / denom);
  const Tensor m = mean(x, dims, true);
  const Tensor xc = x.detach().contiguous();
  visit_dtype(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
      T* po = out.data<T>();
      sum_planned(xc.data<T>(), g, po, m.data<T>());
      const T inv = T(1.0 / denom);
      for (int64_t i = 0; i < out.numel(); ++i) po[i] = denom == 0 ? T(po[i] / T(0)) : T(po[i] * inv);
    }
  });
  return out;
}

// --- backward kernels ---

Tensor reduce_backward(const Tensor& dy, const Shape& in_shape, const std::vector<int64_t>& dims_in,
                       bool keepdim, double scale) {
  const auto dims = normalize_dims(dims_in, int64_t(in_shape.size()), "sum backward");
  const Shape ks = reduced_shape(in_shape, dims, true);
  (void)keepdim;
  Tensor dx = empty(in_shape, dy.dtype());
  if (dx.numel() == 0) return dx;
  // dy viewed with the reduced dims kept as 1 (built directly: Tensor::view rejects a 0-d
  // source), then broadcast by the strided copy.
  const Tensor dyc = dy.detach().contiguous();
  FINCH_CHECK(dyc.numel() == shape_numel(ks), "reduce_backward: dy of shape ", shape_str(dy.shape()),
              " does not match the reduced shape ", shape_str(ks));
  strided_copy(dx, Tensor(dyc.storage(), dyc.dtype(), ks, contiguous_strides(ks), dyc.offset()).expand(in_shape));
  if (scale != 1.0) {
    visit_dtype(dx.dtype(), [&](auto tag) {
      using T = decltype(tag);
      if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
        T* p = dx.data<T>();
        const T s = T(scale);
        parallel_for(0, dx.numel(), 1 << 15, [&](int64_t b, int64_t e) {
          for (int64_t i = b; i < e; ++i) p[i] *= s;
        });
      }
    });
  }
  return dx;
}

Tensor max_backward(const Tensor& dy, const Tensor& indices, const Shape& in_shape, int64_t dim_in,
                    bool keepdim) {
  (void)keepdim;
  const Shape xs = in_shape.empty() ? Shape{1} : in_shape;
  const int64_t dim = in_shape.empty() ? 0 : wrap_dim(dim_in, int64_t(in_shape.size()), "max backward");
  Tensor dx = zeros(in_shape, dy.dtype());
  if (dx.numel() == 0) return dx;
  const Tensor dyc = dy.detach().contiguous(), ic = indices.contiguous();
  int64_t outer, r, inner;
  split_at(xs, dim, outer, r, inner);
  visit_dtype(dx.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
      T* pdx = dx.data<T>();
      const T* pdy = dyc.data<T>();
      const int64_t* pi = ic.data<int64_t>();
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t k = 0; k < inner; ++k)
          pdx[(o * r + pi[o * inner + k]) * inner + k] = pdy[o * inner + k];
    }
  });
  return dx;
}

Tensor var_backward(const Tensor& dy, const Tensor& x, const std::vector<int64_t>& dims_in,
                    int64_t correction, bool keepdim) {
  const auto dims = normalize_dims(dims_in, x.dim(), "var backward");
  const int64_t n = reduced_count(x.shape(), dims);
  const double denom = double(std::max<int64_t>(0, n - correction));
  Tensor m = mean(x, dims, true);
  Tensor dxe = reduce_backward(dy, x.shape(), dims, keepdim, 2.0 / denom);  // 2·dy/(n-c), expanded
  Tensor me = empty(x.shape(), x.dtype());
  strided_copy(me, m.expand(x.shape()));
  const Tensor xc = x.detach().contiguous();
  visit_dtype(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
      T* p = dxe.data<T>();
      const T* px = xc.data<T>();
      const T* pm = me.data<T>();
      parallel_for(0, x.numel(), 1 << 15, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) p[i] *= px[i] - pm[i];
      });
    }
  });
  return dxe;
}

// --- references ---

Tensor sum_reference(const Tensor& x, const std::vector<int64_t>& dims_in, bool keepdim) {
  // x [any shape]; out = reduced_shape(x, dims, keepdim); each element accumulated in f64.
  const auto dims = normalize_dims(dims_in, x.dim(), "sum_reference");
  const Shape ks = reduced_shape(x.shape(), dims, true);
  std::vector<double> acc(size_t(shape_numel(ks)), 0.0);
  const Shape st = keep_strides_for(x.shape(), dims);
  const auto v = x.to_vector<double>();
  for_each_index(x.shape(), [&](int64_t i, const Shape& idx) { acc[size_t(out_offset(idx, st))] += v[size_t(i)]; });
  Tensor out = from_vector<double>(acc, ks).to(x.dtype());
  return out.reshape(reduced_shape(x.shape(), dims, keepdim)).contiguous();
}

Tensor var_reference(const Tensor& x, const std::vector<int64_t>& dims_in, int64_t correction,
                     bool keepdim) {
  const auto dims = normalize_dims(dims_in, x.dim(), "var_reference");
  const Shape ks = reduced_shape(x.shape(), dims, true);
  const int64_t n = reduced_count(x.shape(), dims);
  const size_t m = size_t(shape_numel(ks));
  std::vector<double> s(m, 0.0), ss(m, 0.0);
  const Shape st = keep_strides_for(x.shape(), dims);
  const auto v = x.to_vector<double>();
  for_each_index(x.shape(), [&](int64_t i, const Shape& idx) { s[size_t(out_offset(idx, st))] += v[size_t(i)]; });
  for (auto& e : s) e /= double(n);
  for_each_index(x.shape(), [&](int64_t i, const Shape& idx) {
    const size_t o = size_t(out_offset(idx, st));
    ss[o] += (v[size_t(i)] - s[o]) * (v[size_t(i)] - s[o]);
  });
  for (auto& e : ss) e /= double(std::max<int64_t>(0, n - correction));
  return from_vector<double>(ss, ks).to(x.dtype()).reshape(reduced_shape(x.shape(), dims, keepdim)).contiguous();
}

std::pair<Tensor, Tensor> max_reference(const Tensor& x, int64_t dim_in, bool keepdim) {
  const int64_t dim = wrap_dim(dim_in, x.dim(), "max_reference");
  const std::vector<int64_t> dims{dim};
  const Shape ks = reduced_shape(x.shape(), dims, true);
  const size_t m = size_t(shape_numel(ks));
  std::vector<double> best(m, 0.0);
  std::vector<int64_t> arg(m, -1);
  const Shape st = keep_strides_for(x.shape(), dims);
  const auto v = x.to_vector<double>();
  for_each_index(x.shape(), [&](int64_t i, const Shape& idx) {
    const size_t o = size_t(out_offset(idx, st));
    const double e = v[size_t(i)];
    if (arg[o] < 0 || e > best[o] || (std::isnan(e) && !std::isnan(best[o]))) {
      best[o] = e;
      arg[o] = idx[size_t(dim)];
    }
  });
  const Shape os = reduced_shape(x.shape(), dims, keepdim);
  return {from_vector<double>(best, ks).to(x.dtype()).reshape(os).contiguous(),
          from_vector<int64_t>(arg, ks).reshape(os).contiguous()};
}

}  // namespace finch::ops
