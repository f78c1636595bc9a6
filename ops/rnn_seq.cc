// What the LSTM and GRU sequence kernels share: lengths validation and the longest-first batch
// order, batch permutations, input checks, and the all-steps input projection and its gradients.
#include <algorithm>
#include <cstring>
#include <numeric>

#include "framework/parallel.h"
#include "ops/gemm.h"
#include "ops/rnn_seq.h"

namespace finch::ops {

SeqOrder seq_order(const char* who, const Tensor& lengths, int64_t T, int64_t B) {
  SeqOrder o;
  o.order.resize(size_t(B));
  std::iota(o.order.begin(), o.order.end(), int64_t(0));
  if (!lengths.defined()) {
    o.active.assign(size_t(T), B);
    return o;
  }
  if (lengths.dtype() != DType::i64 || lengths.dim() != 1 || lengths.size(0) != B)
    fail(who, ": expected lengths to be an I64 tensor of shape [", B, "] (one per sample), found ",
         dtype_name(lengths.dtype()), " ", shape_str(lengths.shape()));
  const std::vector<int64_t> len = lengths.to_vector<int64_t>();
  for (int64_t b = 0; b < B; ++b)
    if (len[size_t(b)] < 1 || len[size_t(b)] > T)
      fail(who, ": expected every length in 1..", T, " (the padded sequence length), found ",
           len[size_t(b)], " for sample ", b);
  // Stable: equal lengths keep their order, so an already sorted batch needs no permutation.
  std::stable_sort(o.order.begin(), o.order.end(),
                   [&](int64_t a, int64_t b) { return len[size_t(a)] > len[size_t(b)]; });
  for (int64_t b = 0; b < B; ++b) o.identity &= o.order[size_t(b)] == b;
  o.active.assign(size_t(T), 0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < len[size_t(b)]; ++t) ++o.active[size_t(t)];
  return o;
}

namespace rnn_detail {

Tensor permute_batch(const Tensor& t, const SeqOrder& o, bool inverse) {
  if (o.identity) return t.contiguous();
  const Tensor src = t.contiguous();
  const int64_t T = src.size(0), B = src.size(1), F = src.size(2);
  Tensor dst = empty(src.shape(), src.dtype());
  const size_t row = size_t(F) * dtype_size(src.dtype());
  const char* s = static_cast<const char*>(src.raw_data());
  char* d = static_cast<char*>(dst.raw_data());
  for (int64_t ti = 0; ti < T; ++ti)
    for (int64_t r = 0; r < B; ++r) {
      const int64_t orig = o.order[size_t(r)];
      const int64_t from = inverse ? r : orig, to = inverse ? orig : r;
      std::memcpy(d + size_t(ti * B + to) * row, s + size_t(ti * B + from) * row, row);
    }
  return dst;
}

Tensor permute_rows(const Tensor& t, const SeqOrder& o, bool inverse) {
  return permute_batch(t.unsqueeze(0), o, inverse).squeeze(0);
}

Tensor sorted_input(const Tensor& x, const SeqOrder& o, bool has_lengths) {
  Tensor xs = permute_batch(x, o, false);
  if (!has_lengths) return xs;
  if (o.identity) xs = xs.clone();
  const int64_t T = xs.size(0), B = xs.size(1);
  const size_t row = size_t(xs.size(2)) * dtype_size(xs.dtype());
  char* p = static_cast<char*>(xs.raw_data());
  for (int64_t t = 0; t < T; ++t)
    std::memset(p + size_t(t * B + o.active[size_t(t)]) * row, 0,
                size_t(B - o.active[size_t(t)]) * row);
  return xs;
}

Tensor sorted_state(const Tensor& t, const SeqOrder& o, const Shape& shape, DType dt) {
  if (!t.defined()) return zeros(shape, dt);
  const Tensor s = permute_rows(t, o, false);
  return o.identity ? s.clone() : s;
}

SeqDims check_seq(const char* who, const Tensor& x, const Tensor& h0, const Tensor& c0,
                  const RnnWeights& w, int64_t k) {
  if (!x.defined() || !w.w_ih.defined() || !w.w_hh.defined())
    fail(who, ": expected x, w_ih and w_hh to be defined tensors");
  if (x.dim() != 3 || x.size(0) < 1 || x.size(1) < 1)
    fail(who, ": expected x of shape [T, B, IN] with T, B >= 1, found ", shape_str(x.shape()));
  const DType dt = x.dtype();
  if (dt != DType::f32 && dt != DType::f64)
    fail(who, ": expected F32 or F64 tensors, found x of dtype ", dtype_name(dt));
  if (w.w_ih.dim() != 2 || w.w_ih.size(0) % k != 0 || w.w_ih.size(0) == 0)
    fail(who, ": expected w_ih of shape [", k, "·H, IN], found ", shape_str(w.w_ih.shape()));
  SeqDims d{x.size(0), x.size(1), x.size(2), w.w_ih.size(0) / k, 0, w.w_ih.size(0)};
  d.P = w.w_hr.defined() ? w.w_hr.size(0) : d.H;
  auto check = [&](const char* what, const Tensor& t, const Shape& want) {
    if (!t.defined()) return;
    if (t.shape() != want)
      fail(who, ": expected ", what, " of shape ", shape_str(want), ", found ", shape_str(t.shape()));
    if (t.dtype() != dt)
      fail(who, ": expected ", what, " of dtype ", dtype_name(dt), " like x, found ",
           dtype_name(t.dtype()));
  };
  check("w_ih", w.w_ih, {d.G, d.IN});
  check("w_hr", w.w_hr, {d.P, d.H});
  check("w_hh", w.w_hh, {d.G, d.P});
  check("b_ih", w.b_ih, {d.G});
  check("b_hh", w.b_hh, {d.G});
  check("h0", h0, {d.B, d.P});
  check("c0", c0, {d.B, d.H});
  return d;
}

Tensor input_projection(const Tensor& x_sorted, const RnnWeights& w, bool with_b_hh) {
  const int64_t R = x_sorted.size(0) * x_sorted.size(1), IN = x_sorted.size(2);
  const int64_t G = w.w_ih.size(0);
  const DType dt = x_sorted.dtype();
  Tensor out = empty({x_sorted.size(0), x_sorted.size(1), G}, dt);
  auto run = [&](auto zero) {
    using T = decltype(zero);
    std::vector<T> bias(size_t(G), T(0));
    for (const Tensor* b : {&w.b_ih, with_b_hh ? &w.b_hh : nullptr}) {
      if (!b || !b->defined()) continue;
      const std::vector<T> v = b->to_vector<T>();
      for (int64_t j = 0; j < G; ++j) bias[size_t(j)] += v[size_t(j)];
    }
    T* o = out.data<T>();
    for (int64_t r = 0; r < R; ++r) std::copy(bias.begin(), bias.end(), o + r * G);
    const Tensor wi = w.w_ih.contiguous();
    if (IN > 0) pool_gemm<T>(false, true, R, G, IN, x_sorted.data<T>(), IN, wi.data<T>(), IN, T(1), o, G);
  };
  if (dt == DType::f32) run(0.0f);
  else run(0.0);
  return out;
}

template <typename T>
void pool_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const T* A, int64_t lda,
               const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  // At least ~2 M multiply-adds per chunk, so small products stay on one thread.
  const int64_t grain = std::max<int64_t>(16, (int64_t(1) << 21) / std::max<int64_t>(1, N * K));
  parallel_for(0, M, grain, [&](int64_t m0, int64_t m1) {
    const T* a = ta ? A + m0 : A + m0 * lda;
    gemm_t<T>(ta, tb, m1 - m0, N, K, a, lda, B, ldb, beta, C + m0 * ldc, ldc);
  });
}
template void pool_gemm<float>(bool, bool, int64_t, int64_t, int64_t, const float*, int64_t,
                               const float*, int64_t, float, float*, int64_t);
template void pool_gemm<double>(bool, bool, int64_t, int64_t, int64_t, const double*, int64_t,
                                const double*, int64_t, double, double*, int64_t);

Tensor column_sums(const Tensor& m) {
  const int64_t R = m.size(0), G = m.size(1);
  Tensor s = zeros({G}, m.dtype());
  auto run = [&](auto zero) {
    using T = decltype(zero);
    const T* p = m.data<T>();
    T* q = s.data<T>();
    for (int64_t r = 0; r < R; ++r)
      for (int64_t j = 0; j < G; ++j) q[j] += p[r * G + j];
  };
  if (m.dtype() == DType::f32) run(0.0f);
  else run(0.0);
  return s;
}

void input_grads(const Tensor& dg, const Tensor& x_sorted, const Tensor& w_ih,
                 const RnnSeqNeeds& needs, const SeqOrder& o, RnnSeqGrads& r) {
  const int64_t T = x_sorted.size(0), B = x_sorted.size(1), IN = x_sorted.size(2);
  const int64_t R = T * B, G = w_ih.size(0);
  const DType dt = x_sorted.dtype();
  auto run = [&](auto zero) {
    using Tp = decltype(zero);
    const Tp* g = dg.data<Tp>();
    if (needs.x) {
      Tensor dx = zeros({T, B, IN}, dt);
      const Tensor wi = w_ih.contiguous();
      if (IN > 0) pool_gemm<Tp>(false, false, R, IN, G, g, G, wi.data<Tp>(), IN, Tp(0), dx.data<Tp>(), IN);
      r.dx = permute_batch(dx, o, true);
    }
    if (needs.w_ih) {
      r.dw_ih = zeros({G, IN}, dt);
      if (IN > 0)
        pool_gemm<Tp>(true, false, G, IN, R, g, G, x_sorted.data<Tp>(), IN, Tp(0), r.dw_ih.data<Tp>(), IN);
    }
  };
  if (dt == DType::f32) run(0.0f);
  else run(0.0);
  if (needs.b_ih) r.db_ih = column_sums(dg.view({R, G}));
}

}  // namespace rnn_detail
}  // namespace finch::ops
