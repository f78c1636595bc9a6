// Scaled dot-product attention operator: shape/mask checks, the per-(batch, head) gemm +
// masked-softmax + gemm pipeline, its backward, and the plain-loop reference.
//
// Shapes: [...] batch dims flattened to NB, Lq queries, Lk keys, D q/k width, Dv value width.
// Each of the NB slices is independent, so the operator runs parallel_for over them with
// single-threaded sgemm inside each chunk (the pool switches OpenBLAS to one thread there).
// P is saved for backward instead of the logsumexp: at the sizes this framework trains
// (L ≤ 512) the [NB, Lq, Lk] buffer is small and saves backward a gemm and a softmax.
#include "ops/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "framework/parallel.h"
#include "ops/gemm.h"

namespace finch::ops {
namespace {

struct Geometry {
  Shape batch;  // the [...] dims
  int64_t NB, Lq, Lk, D, Dv;
};

Geometry check_qkv(const Tensor& q, const Tensor& k, const Tensor& v) {
  if (!q.defined() || !k.defined() || !v.defined())
    fail("scaled_dot_product_attention: expected q, k and v to be defined tensors");
  if (q.dim() < 2 || k.dim() != q.dim() || v.dim() != q.dim())
    fail("scaled_dot_product_attention: expected q [..., Lq, D], k [..., Lk, D] and v [..., Lk, "
         "Dv] with the same number (>= 2) of dims, got ", shape_str(q.shape()), ", ",
         shape_str(k.shape()), " and ", shape_str(v.shape()));
  const DType dt = q.dtype();
  if ((dt != DType::f32 && dt != DType::f64) || k.dtype() != dt || v.dtype() != dt)
    fail("scaled_dot_product_attention: expected q, k and v all F32 or all F64, got ",
         dtype_name(q.dtype()), ", ", dtype_name(k.dtype()), " and ", dtype_name(v.dtype()));
  Geometry g;
  g.batch = Shape(q.shape().begin(), q.shape().end() - 2);
  const Shape kb(k.shape().begin(), k.shape().end() - 2), vb(v.shape().begin(), v.shape().end() - 2);
  if (kb != g.batch || vb != g.batch)
    fail("scaled_dot_product_attention: expected q, k and v to share their batch dims, got ",
         shape_str(q.shape()), ", ", shape_str(k.shape()), " and ", shape_str(v.shape()),
         " (expand them first to broadcast)");
  g.NB = shape_numel(g.batch);
  g.Lq = q.size(-2), g.D = q.size(-1), g.Lk = k.size(-2), g.Dv = v.size(-1);
  if (k.size(-1) != g.D)
    fail("scaled_dot_product_attention: expected k's last dim to equal q's (", g.D, "), got k ",
         shape_str(k.shape()));
  if (v.size(-2) != g.Lk)
    fail("scaled_dot_product_attention: expected v to have Lk = ", g.Lk, " rows like k, got v ",
         shape_str(v.shape()));
  return g;
}

// The mask expanded (stride-0 views, no copy) to [..., Lq, Lk], float masks in q's dtype.
Tensor prepare_mask(const Tensor& mask, const Geometry& g, DType dt) {
  if (!mask.defined()) return Tensor();
  Shape full = g.batch;
  full.push_back(g.Lq);
  full.push_back(g.Lk);
  const bool ok_dtype = mask.dtype() == DType::b8 || mask.dtype() == dt;
  if (!ok_dtype)
    fail("scaled_dot_product_attention: expected a BOOL mask or a float mask of q's dtype ",
         dtype_name(dt), ", got ", dtype_name(mask.dtype()));
  bool ok = mask.dim() <= int64_t(full.size());
  for (int64_t i = 1; ok && i <= mask.dim(); ++i) {
    const int64_t m = mask.size(-i), f = full[full.size() - size_t(i)];
    ok = m == f || m == 1;
  }
  if (!ok)
    fail("scaled_dot_product_attention: expected a mask broadcastable to ", shape_str(full),
         ", got ", shape_str(mask.shape()));
  return mask.expand(full);
}

// Element offsets of every batch slice of t (a [..., R, C] tensor), in row-major batch order.
std::vector<int64_t> batch_offsets(const Tensor& t, int64_t NB) {
  std::vector<int64_t> off(static_cast<size_t>(NB));
  const Shape batch(t.shape().begin(), t.shape().end() - 2);
  for_each_index(batch, [&](int64_t i, const Shape& idx) {
    int64_t o = 0;
    for (size_t d = 0; d < idx.size(); ++d) o += idx[d] * t.stride(int64_t(d));
    off[size_t(i)] = o;
  });
  return off;
}

// A [..., R, C] operand as BLAS sees it: per-slice base pointers with leading dim `ld`. Views
// with a unit-stride last dim (transposed head views [B, L, heads, D] → [B, heads, L, D]) are
// read in place; anything else is copied once.
template <typename T>
struct Operand {
  Tensor keep;  // owns the (possibly copied) data
  std::vector<int64_t> off;
  int64_t ld;
  const T* at(int64_t b) const { return keep.data<T>() + off[size_t(b)]; }
};

template <typename T>
Operand<T> operand(const Tensor& t, int64_t NB) {
  const int64_t C = t.size(-1);
  Tensor u = t;
  if (!(t.stride(-1) == 1 || C <= 1) || t.stride(-2) < std::max<int64_t>(C, 1))
    u = t.contiguous();
  const int64_t ld = t.size(-2) <= 1 ? std::max<int64_t>(C, 1) : u.stride(-2);
  return Operand<T>{u, batch_offsets(u, NB), std::max<int64_t>(ld, std::max<int64_t>(C, 1))};
}

// gemm that also handles K = 0 (BLAS would leave C untouched): C = alpha·op(A)·op(B).
template <typename T>
void gemm0(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
           const T* B, int64_t ldb, T* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  if (K == 0) {
    for (int64_t m = 0; m < M; ++m) std::fill(C + m * ldc, C + m * ldc + N, T(0));
    return;
  }
  if constexpr (std::is_same_v<T, float>)
    sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, 0.0f, C, ldc);
  else
    dgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, 0.0, C, ldc);
}

// Scalar stable softmax over rows (F64 path and reference), the contract of softmax_rows_f32:
// s ← softmax(s + bias), causal rows cut after r + 1 keys, all −∞ rows become zeros.
template <typename T>
void softmax_rows_scalar(int64_t rows, int64_t n, int64_t ld, T* s, const T* bias = nullptr,
                         int64_t bias_ld = 0, bool causal = false) {
  const T ninf = -std::numeric_limits<T>::infinity();
  for (int64_t r = 0; r < rows; ++r) {
    T* x = s + r * ld;
    const int64_t len = causal ? std::min(n, r + 1) : n;
    if (bias)
      for (int64_t j = 0; j < len; ++j) x[j] += bias[r * bias_ld + j];
    std::fill(x + len, x + n, T(0));
    T m = ninf;
    for (int64_t j = 0; j < len; ++j) m = std::max(m, x[j]);
    if (m == ninf) {
      std::fill(x, x + len, T(0));
      continue;
    }
    T sum = 0;
    for (int64_t j = 0; j < len; ++j) sum += (x[j] = std::exp(x[j] - m));
    for (int64_t j = 0; j < len; ++j) x[j] /= sum;
  }
}

template <typename T>
void softmax_backward_rows_scalar(int64_t rows, int64_t n, int64_t ld, const T* p, T* dp) {
  for (int64_t r = 0; r < rows; ++r) {
    T dot = 0;
    for (int64_t j = 0; j < n; ++j) dot += dp[r * ld + j] * p[r * ld + j];
    for (int64_t j = 0; j < n; ++j) dp[r * ld + j] = p[r * ld + j] * (dp[r * ld + j] - dot);
  }
}

// Keys past the last one any query may attend to. A bool key padding mask (variable-length
// batches) makes the tail columns all false; trimming them from every gemm skips work whose
// result is exactly zero. Float masks and no mask keep all Lk keys.
int64_t attended_keys(const Tensor& mask, int64_t moff, int64_t Lq, int64_t Lk) {
  if (!mask.defined() || mask.dtype() != DType::b8) return Lk;
  const bool* m = mask.data<bool>() + moff;
  const int64_t rs = mask.stride(-2), cs = mask.stride(-1);
  for (int64_t j = Lk - 1; j >= 0; --j)
    for (int64_t i = 0; i < Lq; ++i)
      if (m[i * rs + j * cs]) return j + 1;
  return 0;
}

// The same from the saved probabilities: columns past the last nonzero P contribute exactly
// zero to every gradient (dV rows = Pᵀ·dO, dS = P ⊙ …), so backward trims them too.
template <typename T>
int64_t nonzero_keys(const T* P, int64_t Lq, int64_t Lk) {
  for (int64_t j = Lk - 1; j >= 0; --j)
    for (int64_t i = Lq - 1; i >= 0; --i)
      if (P[i * Lk + j] != T(0)) return j + 1;
  return 0;
}

template <typename T>
void zero_columns(T* X, int64_t rows, int64_t from, int64_t ld) {
  if (from < ld)
    for (int64_t i = 0; i < rows; ++i) std::fill(X + i * ld + from, X + (i + 1) * ld, T(0));
}

// The mask slice of one (batch, head) as the additive bias the softmax kernels take: a float
// mask with unit column stride is used in place (row stride 0 when it broadcasts over queries);
// a bool mask becomes 0 / −∞ in `scratch` (one row when it broadcasts over queries, as a key
// padding mask does, so that costs Lk per slice). Returns {bias, bias row stride}.
template <typename T>
std::pair<const T*, int64_t> mask_bias(const Tensor& mask, int64_t moff, int64_t Lq, int64_t n,
                                       std::vector<T>& scratch) {
  if (!mask.defined()) return {nullptr, 0};
  const int64_t rs = mask.stride(-2), cs = mask.stride(-1);
  const int64_t rows = rs == 0 ? 1 : Lq;
  if (mask.dtype() != DType::b8) {
    const T* m = mask.data<T>() + moff;
    if (cs == 1) return {m, rs};
    scratch.resize(size_t(rows * n));
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < n; ++j) scratch[size_t(i * n + j)] = m[i * rs + j * cs];
    return {scratch.data(), rs == 0 ? 0 : n};
  }
  const T table[2] = {-std::numeric_limits<T>::infinity(), T(0)};  // false → −∞, true → 0
  const bool* m = mask.data<bool>() + moff;
  scratch.resize(size_t(rows * n));
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < n; ++j) scratch[size_t(i * n + j)] = table[m[i * rs + j * cs] ? 1 : 0];
  return {scratch.data(), rs == 0 ? 0 : n};
}

template <typename T>
AttentionOutput forward_fast(const Geometry& g, const Tensor& q, const Tensor& k, const Tensor& v,
                             const Tensor& mask, bool causal, T scale) {
  const DType dt = dtype_v<T>;
  Shape os = g.batch, ps = g.batch;
  os.insert(os.end(), {g.Lq, g.Dv});
  ps.insert(ps.end(), {g.Lq, g.Lk});
  AttentionOutput r{empty(os, dt), empty(ps, dt)};
  const Operand<T> Q = operand<T>(q, g.NB), K = operand<T>(k, g.NB), V = operand<T>(v, g.NB);
  const std::vector<int64_t> moff = mask.defined() ? batch_offsets(mask, g.NB) : std::vector<int64_t>();
  T* P = r.probs.data<T>();
  T* O = r.out.data<T>();
  parallel_for(0, g.NB, 1, [&](int64_t b0, int64_t b1) {
    std::vector<T> scratch;
    for (int64_t b = b0; b < b1; ++b) {
      T* Pb = P + b * g.Lq * g.Lk;
      const int64_t mo = mask.defined() ? moff[size_t(b)] : 0;
      const int64_t n = attended_keys(mask, mo, g.Lq, g.Lk);  // keys [n, Lk) are all masked
      // S[:, :n] = scale · Q · K[:n]ᵀ, then softmax(S + mask) in place (mask and causal cut
      // fused into the softmax pass); P[:, n:] = 0
      gemm0<T>(false, true, g.Lq, n, g.D, scale, Q.at(b), Q.ld, K.at(b), K.ld, Pb, g.Lk);
      const auto [bias, bias_ld] = mask_bias<T>(mask, mo, g.Lq, n, scratch);
      if constexpr (std::is_same_v<T, float>) softmax_rows_f32(g.Lq, n, g.Lk, Pb, bias, bias_ld, causal);
      else softmax_rows_scalar<T>(g.Lq, n, g.Lk, Pb, bias, bias_ld, causal);
      zero_columns(Pb, g.Lq, n, g.Lk);
      // O = P[:, :n] · V[:n]
      gemm0<T>(false, false, g.Lq, g.Dv, n, T(1), Pb, g.Lk, V.at(b), V.ld, O + b * g.Lq * g.Dv, g.Dv);
    }
  });
  return r;
}

// Plain loops over contiguous copies, independent of the fast path's stride handling.
template <typename T>
AttentionOutput forward_reference(const Geometry& g, const Tensor& q, const Tensor& k,
                                  const Tensor& v, const Tensor& mask, bool causal, T scale) {
  const DType dt = dtype_v<T>;
  Shape os = g.batch, ps = g.batch;
  os.insert(os.end(), {g.Lq, g.Dv});
  ps.insert(ps.end(), {g.Lq, g.Lk});
  AttentionOutput r{zeros(os, dt), empty(ps, dt)};
  const std::vector<T> qv = q.to_vector<T>(), kv = k.to_vector<T>(), vv = v.to_vector<T>();
  const std::vector<double> mv = mask.defined() ? mask.to_vector<double>() : std::vector<double>();
  const bool is_bool = mask.defined() && mask.dtype() == DType::b8;
  const T ninf = -std::numeric_limits<T>::infinity();
  T* P = r.probs.data<T>();
  T* O = r.out.data<T>();
  for (int64_t b = 0; b < g.NB; ++b)
    for (int64_t i = 0; i < g.Lq; ++i) {
      T* p = P + (b * g.Lq + i) * g.Lk;
      for (int64_t j = 0; j < g.Lk; ++j) {
        T s = 0;
        for (int64_t d = 0; d < g.D; ++d)
          s += qv[size_t((b * g.Lq + i) * g.D + d)] * kv[size_t((b * g.Lk + j) * g.D + d)];
        s *= scale;
        if (mask.defined()) {
          const double m = mv[size_t((b * g.Lq + i) * g.Lk + j)];
          if (is_bool) s = m != 0 ? s : ninf;
          else s += T(m);
        }
        if (causal && j > i) s = ninf;
        p[j] = s;
      }
      softmax_rows_scalar<T>(1, g.Lk, g.Lk, p);
      for (int64_t j = 0; j < g.Lk; ++j)
        for (int64_t e = 0; e < g.Dv; ++e)
          O[(b * g.Lq + i) * g.Dv + e] += p[j] * vv[size_t((b * g.Lk + j) * g.Dv + e)];
    }
  return r;
}

// Sums dS [..., Lq, Lk] down to the mask's own (broadcast) shape.
Tensor reduce_to_mask(const Tensor& ds, const Tensor& mask) {
  Tensor dm = zeros(mask.shape(), ds.dtype());
  const Tensor dme = dm.expand(ds.shape());  // stride 0 where the mask broadcasts
  visit_dtype(ds.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_floating_point_v<T>) {
      const T* s = ds.data<T>();
      T* m = dm.data<T>();
      for_each_index(ds.shape(), [&](int64_t i, const Shape& idx) {
        int64_t o = 0;
        for (size_t d = 0; d < idx.size(); ++d) o += idx[d] * dme.stride(int64_t(d));
        m[o] += s[i];
      });
    }
  });
  return dm;
}

template <typename T>
AttentionGrads backward_impl(const Geometry& g, const Tensor& dout, const Tensor& q,
                             const Tensor& k, const Tensor& v, const Tensor& probs,
                             const Tensor& mask, T scale, const AttentionNeeds& needs,
                             bool reference) {
  const DType dt = dtype_v<T>;
  AttentionGrads r;
  const Operand<T> Q = operand<T>(q, g.NB), K = operand<T>(k, g.NB), V = operand<T>(v, g.NB);
  const Tensor dO = dout.contiguous(), Pc = probs.contiguous();
  const bool need_ds = needs.q || needs.k || needs.mask;
  if (needs.q) r.dq = empty(q.shape(), dt);
  if (needs.k) r.dk = empty(k.shape(), dt);
  if (needs.v) r.dv = empty(v.shape(), dt);
  Tensor ds_full;  // kept whole only when the mask needs its gradient
  if (needs.mask) ds_full = empty(Pc.shape(), dt);
  auto mm = [&](bool ta, bool tb, int64_t M, int64_t N, int64_t Kd, T alpha, const T* A,
                int64_t lda, const T* B, int64_t ldb, T* C, int64_t ldc) {
    if (reference) {
      if (M > 0 && N > 0)
        gemm_reference<T>(ta, tb, M, N, Kd, alpha, A, lda, B, ldb, T(0), C, ldc);
    } else {
      gemm0<T>(ta, tb, M, N, Kd, alpha, A, lda, B, ldb, C, ldc);
    }
  };
  auto slice = [&](int64_t b0, int64_t b1) {
    std::vector<T> scratch(need_ds && !needs.mask ? size_t(g.Lq * g.Lk) : 0);
    for (int64_t b = b0; b < b1; ++b) {
      const T* Pb = Pc.data<T>() + b * g.Lq * g.Lk;
      const T* dOb = dO.data<T>() + b * g.Lq * g.Dv;
      // Keys [n, Lk) have P = 0 in every row: their dV and dK rows are exactly zero.
      const int64_t n = reference ? g.Lk : nonzero_keys(Pb, g.Lq, g.Lk);
      // dV[:n] [n, Dv] = P[:, :n]ᵀ · dO [Lq, Dv]
      if (needs.v) {
        T* dVb = r.dv.data<T>() + b * g.Lk * g.Dv;
        mm(true, false, n, g.Dv, g.Lq, T(1), Pb, g.Lk, dOb, g.Dv, dVb, g.Dv);
        std::fill(dVb + n * g.Dv, dVb + g.Lk * g.Dv, T(0));
      }
      if (!need_ds) continue;
      T* dS = needs.mask ? ds_full.data<T>() + b * g.Lq * g.Lk : scratch.data();
      // dP[:, :n] = dO · V[:n]ᵀ, then dS = P ⊙ (dP − rowsum(dP ⊙ P)) in place (row stride Lk)
      mm(false, true, g.Lq, n, g.Dv, T(1), dOb, g.Dv, V.at(b), V.ld, dS, g.Lk);
      if constexpr (std::is_same_v<T, float>) {
        if (!reference) softmax_backward_rows_f32(g.Lq, n, g.Lk, Pb, dS);
        else softmax_backward_rows_scalar<T>(g.Lq, n, g.Lk, Pb, dS);
      } else {
        softmax_backward_rows_scalar<T>(g.Lq, n, g.Lk, Pb, dS);
      }
      if (needs.mask) zero_columns(dS, g.Lq, n, g.Lk);
      // dQ [Lq, D] = scale · dS[:, :n] · K[:n];  dK[:n] [n, D] = scale · dS[:, :n]ᵀ · Q
      if (needs.q) mm(false, false, g.Lq, g.D, n, scale, dS, g.Lk, K.at(b), K.ld, r.dq.data<T>() + b * g.Lq * g.D, g.D);
      if (needs.k) {
        T* dKb = r.dk.data<T>() + b * g.Lk * g.D;
        mm(true, false, n, g.D, g.Lq, scale, dS, g.Lk, Q.at(b), Q.ld, dKb, g.D);
        std::fill(dKb + n * g.D, dKb + g.Lk * g.D, T(0));
      }
    }
  };
  if (reference) slice(0, g.NB);
  else parallel_for(0, g.NB, 1, slice);
  if (needs.mask) r.dmask = reduce_to_mask(ds_full, mask);
  return r;
}

double default_scale(const Geometry& g, std::optional<double> scale) {
  return scale ? *scale : 1.0 / std::sqrt(double(g.D));
}

AttentionOutput forward_dispatch(const Tensor& q, const Tensor& k, const Tensor& v,
                                 const Tensor& mask, bool causal, std::optional<double> scale,
                                 bool reference) {
  const Geometry g = check_qkv(q, k, v);
  const Tensor m = prepare_mask(mask, g, q.dtype());
  const double s = default_scale(g, scale);
  if (q.dtype() == DType::f32)
    return reference ? forward_reference<float>(g, q, k, v, m, causal, float(s))
                     : forward_fast<float>(g, q, k, v, m, causal, float(s));
  return reference ? forward_reference<double>(g, q, k, v, m, causal, s)
                   : forward_fast<double>(g, q, k, v, m, causal, s);
}

AttentionGrads backward_dispatch(const Tensor& dout, const Tensor& q, const Tensor& k,
                                 const Tensor& v, const Tensor& probs, const Tensor& mask,
                                 std::optional<double> scale, AttentionNeeds needs,
                                 bool reference) {
  const Geometry g = check_qkv(q, k, v);
  Shape os = g.batch, ps = g.batch;
  os.insert(os.end(), {g.Lq, g.Dv});
  ps.insert(ps.end(), {g.Lq, g.Lk});
  if (dout.shape() != os || dout.dtype() != q.dtype())
    fail("scaled_dot_product_attention_backward: expected dout ", shape_str(os), " of dtype ",
         dtype_name(q.dtype()), ", got ", shape_str(dout.shape()), " ", dtype_name(dout.dtype()));
  if (probs.shape() != ps || probs.dtype() != q.dtype())
    fail("scaled_dot_product_attention_backward: expected the saved probabilities ",
         shape_str(ps), ", got ", shape_str(probs.shape()));
  needs.mask = needs.mask && mask.defined() && mask.dtype() != DType::b8;
  if (needs.mask) prepare_mask(mask, g, q.dtype());  // validates
  const double s = default_scale(g, scale);
  if (q.dtype() == DType::f32)
    return backward_impl<float>(g, dout, q, k, v, probs, mask, float(s), needs, reference);
  return backward_impl<double>(g, dout, q, k, v, probs, mask, s, needs, reference);
}

}  // namespace

AttentionOutput scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                             const Tensor& mask, bool is_causal,
                                             std::optional<double> scale) {
  return forward_dispatch(q, k, v, mask, is_causal, scale, false);
}

AttentionOutput scaled_dot_product_attention_reference(const Tensor& q, const Tensor& k,
                                                       const Tensor& v, const Tensor& mask,
                                                       bool is_causal,
                                                       std::optional<double> scale) {
  return forward_dispatch(q, k, v, mask, is_causal, scale, true);
}

AttentionGrads scaled_dot_product_attention_backward(const Tensor& dout, const Tensor& q,
                                                     const Tensor& k, const Tensor& v,
                                                     const Tensor& probs, const Tensor& mask,
                                                     std::optional<double> scale,
                                                     const AttentionNeeds& needs) {
  return backward_dispatch(dout, q, k, v, probs, mask, scale, needs, false);
}

AttentionGrads scaled_dot_product_attention_backward_reference(
    const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& probs,
    const Tensor& mask, std::optional<double> scale, const AttentionNeeds& needs) {
  return backward_dispatch(dout, q, k, v, probs, mask, scale, needs, true);
}

}  // namespace finch::ops
