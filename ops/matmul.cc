// matmul (torch semantics) and linear through OpenBLAS, their backward kernels, and references.
#include "ops/matmul.h"

#include <algorithm>
#include <cstring>

#include "framework/parallel.h"
#include "ops/gemm.h"

namespace finch::ops {

namespace {

void check_float_pair(const char* op, const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype() || (a.dtype() != DType::f32 && a.dtype() != DType::f64))
    fail(op, ": expected two F32 or two F64 tensors, got ", dtype_name(a.dtype()), " and ",
         dtype_name(b.dtype()));
}

// The operands of a batched product after torch's 1-D promotion: A [..., M, K], B [..., K, N].
struct Promoted {
  Tensor A, B;
  Shape batch;      // broadcast batch shape
  int64_t M, K, N;
  Shape out_shape;  // the user-visible result shape (promoted dims removed)
};

Shape broadcast_shapes(const char* op, const Shape& x, const Shape& y) {
  const size_t n = std::max(x.size(), y.size());
  Shape out(n, 1);
  for (size_t i = 0; i < n; ++i) {
    const int64_t xs = i < n - x.size() ? 1 : x[i - (n - x.size())];
    const int64_t ys = i < n - y.size() ? 1 : y[i - (n - y.size())];
    if (xs != ys && xs != 1 && ys != 1)
      fail(op, ": batch dimensions ", shape_str(x), " and ", shape_str(y), " do not broadcast");
    out[i] = xs == 1 ? ys : xs;
  }
  return out;
}

Promoted promote(const Tensor& a, const Tensor& b) {
  if (a.dim() < 1 || b.dim() < 1)
    fail("matmul: expected operands with at least one dimension, got shapes ", shape_str(a.shape()),
         " and ", shape_str(b.shape()));
  check_float_pair("matmul", a, b);
  Promoted p;
  p.A = a.dim() == 1 ? a.unsqueeze(0) : a;
  p.B = b.dim() == 1 ? b.unsqueeze(1) : b;
  p.M = p.A.size(-2);
  p.K = p.A.size(-1);
  p.N = p.B.size(-1);
  if (p.B.size(-2) != p.K)
    fail("matmul: inner dimensions differ: ", shape_str(a.shape()), " times ", shape_str(b.shape()),
         " (", p.K, " vs ", p.B.size(-2), ")");
  const Shape ab(p.A.shape().begin(), p.A.shape().end() - 2);
  const Shape bb(p.B.shape().begin(), p.B.shape().end() - 2);
  p.batch = broadcast_shapes("matmul", ab, bb);
  p.out_shape = p.batch;
  if (a.dim() > 1) p.out_shape.push_back(p.M);
  if (b.dim() > 1) p.out_shape.push_back(p.N);
  return p;
}

// Element offset of each flat batch index into a contiguous tensor with batch dims `xb`
// (right-aligned against `batch`, broadcast dims get stride 0) and matrices of `mat` elements.
std::vector<int64_t> batch_offsets(const Shape& batch, const Shape& xb, int64_t mat) {
  const size_t n = batch.size(), lead = n - xb.size();
  Shape stride(n, 0);
  int64_t s = mat;
  for (size_t i = n; i-- > lead;) {
    const int64_t size = xb[i - lead];
    stride[i] = size == 1 ? 0 : s;
    s *= size;
  }
  std::vector<int64_t> off(size_t(shape_numel(batch)));
  for_each_index(batch, [&](int64_t i, const Shape& idx) {
    int64_t o = 0;
    for (size_t d = 0; d < n; ++d) o += idx[d] * stride[d];
    off[size_t(i)] = o;
  });
  return off;
}

Shape batch_of(const Tensor& t) { return Shape(t.shape().begin(), t.shape().end() - 2); }

template <typename T>
Tensor matmul_impl(const Promoted& p) {
  const DType dt = dtype_v<T>;
  const int64_t M = p.M, K = p.K, N = p.N;
  const Tensor A = p.A.contiguous(), B = p.B.contiguous();
  // Batched A times one matrix: fold the batch into the rows, one GEMM (as torch does).
  if (B.dim() == 2) {
    const int64_t rows = A.numel() / std::max<int64_t>(K, 1);
    Tensor out = zeros({rows, N}, dt);
    if (K > 0) gemm_t<T>(false, false, rows, N, K, A.data<T>(), K, B.data<T>(), N, T(0),
                         out.data<T>(), N);
    return out.view(p.out_shape);
  }
  const auto oa = batch_offsets(p.batch, batch_of(A), M * K);
  const auto ob = batch_offsets(p.batch, batch_of(B), K * N);
  const int64_t nb = int64_t(oa.size());
  Tensor out = zeros({nb, M, N}, dt);
  const T *pa = A.data<T>(), *pb = B.data<T>();
  T* po = out.data<T>();
  auto body = [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i)
      gemm_t<T>(false, false, M, N, K, pa + oa[size_t(i)], K, pb + ob[size_t(i)], N, T(0),
                po + i * M * N, N);
  };
  // Many small products: one per pool chunk; few large ones: let OpenBLAS thread each.
  if (K > 0) {
    if (nb >= get_num_threads()) parallel_for(0, nb, 1, body);
    else body(0, nb);
  }
  return out.view(p.out_shape);
}

template <typename T>
MatmulGrads matmul_backward_impl(const Tensor& dy, const Promoted& p, const Tensor& a,
                                 const Tensor& b, bool need_a, bool need_b) {
  const DType dt = dtype_v<T>;
  const int64_t M = p.M, K = p.K, N = p.N;
  const Tensor A = p.A.contiguous(), B = p.B.contiguous();
  Shape dy_full = p.batch;
  dy_full.push_back(M);
  dy_full.push_back(N);
  const Tensor dY = dy.contiguous().reshape(dy_full);
  MatmulGrads g;
  if (B.dim() == 2) {  // folded: A [R, K], dY [R, N]
    const int64_t R = A.numel() / std::max<int64_t>(K, 1);
    if (need_a) {
      Tensor da = zeros({R, K}, dt);
      gemm_t<T>(false, true, R, K, N, dY.data<T>(), N, B.data<T>(), N, T(0), da.data<T>(), K);
      g.da = da.view(a.shape());
    }
    if (need_b) {
      Tensor db = zeros({K, N}, dt);
      gemm_t<T>(true, false, K, N, R, A.data<T>(), K, dY.data<T>(), N, T(0), db.data<T>(), N);
      g.db = db.view(b.shape());
    }
    return g;
  }
  const auto oa = batch_offsets(p.batch, batch_of(A), M * K);
  const auto ob = batch_offsets(p.batch, batch_of(B), K * N);
  // Broadcast batches accumulate (beta = 1) into the shared slice, in batch order.
  if (need_a) {
    Tensor da = zeros(A.shape(), dt);
    for (size_t i = 0; i < oa.size(); ++i)
      gemm_t<T>(false, true, M, K, N, dY.data<T>() + int64_t(i) * M * N, N, B.data<T>() + ob[i], N,
                T(1), da.data<T>() + oa[i], K);
    g.da = da.view(a.shape());
  }
  if (need_b) {
    Tensor db = zeros(B.shape(), dt);
    for (size_t i = 0; i < ob.size(); ++i)
      gemm_t<T>(true, false, K, N, M, A.data<T>() + oa[i], K, dY.data<T>() + int64_t(i) * M * N, N,
                T(1), db.data<T>() + ob[i], N);
    g.db = db.view(b.shape());
  }
  return g;
}

void check_linear(const Tensor& x, const Tensor& w, const Tensor& b) {
  if (w.dim() != 2)
    fail("linear: expected a 2-D weight [OUT, IN], got shape ", shape_str(w.shape()));
  if (x.dim() < 1 || x.size(-1) != w.size(1))
    fail("linear: expected an input [..., ", w.size(1), "] for weight ", shape_str(w.shape()),
         ", got shape ", shape_str(x.shape()));
  check_float_pair("linear", x, w);
  if (b.defined()) {
    if (b.dim() != 1 || b.size(0) != w.size(0))
      fail("linear: expected a bias of shape [", w.size(0), "], got shape ", shape_str(b.shape()));
    check_float_pair("linear", x, b);
  }
}

template <typename T>
Tensor linear_impl(const Tensor& x, const Tensor& w, const Tensor& b) {
  const int64_t OUT = w.size(0), IN = w.size(1), R = x.numel() / std::max<int64_t>(IN, 1);
  Shape out_shape = x.shape();
  out_shape.back() = OUT;
  Tensor out = empty({R, OUT}, dtype_v<T>);
  T* po = out.data<T>();
  T beta = T(0);
  if (b.defined()) {
    // The bias is fused: C starts as the bias broadcast over rows and the GEMM adds to it.
    const Tensor bc = b.contiguous();
    for (int64_t r = 0; r < R; ++r) std::memcpy(po + r * OUT, bc.data<T>(), sizeof(T) * OUT);
    beta = T(1);
  } else if (IN == 0) {
    out.zero_();
  }
  if (IN > 0 && R > 0) {
    const Tensor X = x.contiguous(), W = w.contiguous();
    gemm_t<T>(false, true, R, OUT, IN, X.data<T>(), IN, W.data<T>(), IN, beta, po, OUT);
  }
  return out.view(out_shape);
}

template <typename T>
void sum_rows_impl(const T* m, int64_t R, int64_t C, T* out) {
  constexpr int64_t kBlock = 512;  // columns per task: the accumulators stay in L1
  const int64_t blocks = (C + kBlock - 1) / kBlock;
  parallel_for(0, blocks, std::max<int64_t>(1, 16384 / std::max<int64_t>(R * kBlock, 1)),
               [&](int64_t b0, int64_t b1) {
                 for (int64_t blk = b0; blk < b1; ++blk) {
                   const int64_t c0 = blk * kBlock, c1 = std::min(C, c0 + kBlock);
                   T* acc = out + c0;
                   for (int64_t c = c0; c < c1; ++c) acc[c - c0] = T(0);
                   for (int64_t r = 0; r < R; ++r) {
                     const T* row = m + r * C;
                     for (int64_t c = c0; c < c1; ++c) acc[c - c0] += row[c];
                   }
                 }
               });
}

}  // namespace

Tensor sum_rows(const Tensor& m) {
  if (m.dim() != 2) fail("sum_rows: expected a 2-D tensor, got shape ", shape_str(m.shape()));
  const Tensor c = m.contiguous();
  Tensor out = empty({m.size(1)}, m.dtype());
  if (m.dtype() == DType::f32)
    sum_rows_impl(c.data<float>(), m.size(0), m.size(1), out.data<float>());
  else if (m.dtype() == DType::f64)
    sum_rows_impl(c.data<double>(), m.size(0), m.size(1), out.data<double>());
  else
    fail("sum_rows: expected an F32 or F64 tensor, got ", dtype_name(m.dtype()));
  return out;
}

Tensor matmul(const Tensor& a, const Tensor& b) {
  const Promoted p = promote(a, b);
  return a.dtype() == DType::f32 ? matmul_impl<float>(p) : matmul_impl<double>(p);
}

MatmulGrads matmul_backward(const Tensor& dy, const Tensor& a, const Tensor& b, bool need_a,
                            bool need_b) {
  const Promoted p = promote(a, b);
  if (dy.shape() != p.out_shape)
    fail("matmul_backward: expected a gradient of shape ", shape_str(p.out_shape), ", got ",
         shape_str(dy.shape()));
  const Tensor d = dy.to(a.dtype());
  return a.dtype() == DType::f32 ? matmul_backward_impl<float>(d, p, a, b, need_a, need_b)
                                 : matmul_backward_impl<double>(d, p, a, b, need_a, need_b);
}

Tensor matmul_reference(const Tensor& a, const Tensor& b) {
  const Promoted p = promote(a, b);
  Shape sa = p.batch, sb = p.batch, so = p.batch;
  sa.insert(sa.end(), {p.M, p.K});
  sb.insert(sb.end(), {p.K, p.N});
  so.insert(so.end(), {p.M, p.N});
  const auto A = p.A.expand(sa).to_vector<double>(), B = p.B.expand(sb).to_vector<double>();
  std::vector<double> out(size_t(shape_numel(so)));
  const int64_t nb = shape_numel(p.batch), M = p.M, K = p.K, N = p.N;
  for (int64_t i = 0; i < nb; ++i)
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) {
        double acc = 0;
        for (int64_t k = 0; k < K; ++k) acc += A[size_t((i * M + m) * K + k)] * B[size_t((i * K + k) * N + n)];
        out[size_t((i * M + m) * N + n)] = acc;
      }
  return from_vector(out, p.out_shape).to(a.dtype());
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  check_linear(x, weight, bias);
  return x.dtype() == DType::f32 ? linear_impl<float>(x, weight, bias)
                                 : linear_impl<double>(x, weight, bias);
}

LinearGrads linear_backward(const Tensor& dy, const Tensor& x, const Tensor& weight,
                            bool need_x, bool need_weight, bool need_bias) {
  const int64_t OUT = weight.size(0), IN = weight.size(1), R = x.numel() / std::max<int64_t>(IN, 1);
  if (dy.numel() != R * OUT || dy.size(-1) != OUT)
    fail("linear_backward: expected a gradient [..., ", OUT, "] with ", R, " rows, got shape ",
         shape_str(dy.shape()));
  const DType dt = x.dtype();
  const Tensor dY = dy.to(dt).contiguous().reshape({R, OUT});
  LinearGrads g;
  auto run = [&](auto tag) {
    using T = decltype(tag);
    if (need_x) {
      Tensor dx = zeros({R, IN}, dt);
      const Tensor W = weight.contiguous();
      if (OUT > 0) gemm_t<T>(false, false, R, IN, OUT, dY.data<T>(), OUT, W.data<T>(), IN, T(0),
                             dx.data<T>(), IN);
      g.dx = dx.view(x.shape());
    }
    if (need_weight) {
      Tensor dw = zeros({OUT, IN}, dt);
      const Tensor X = x.contiguous();
      if (R > 0) gemm_t<T>(true, false, OUT, IN, R, dY.data<T>(), OUT, X.data<T>(), IN, T(0),
                           dw.data<T>(), IN);
      g.dweight = dw;
    }
    if (need_bias) g.dbias = sum_rows(dY);
  };
  if (dt == DType::f32) run(float{});
  else run(double{});
  return g;
}

// y[r, o] = Σ_i x[r, i]·w[o, i] + b[o], in double.
Tensor linear_reference(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  check_linear(x, weight, bias);
  const int64_t OUT = weight.size(0), IN = weight.size(1), R = x.numel() / std::max<int64_t>(IN, 1);
  const auto X = x.to_vector<double>(), W = weight.to_vector<double>();
  const auto B = bias.defined() ? bias.to_vector<double>() : std::vector<double>(size_t(OUT), 0.0);
  std::vector<double> y(size_t(R * OUT));
  for (int64_t r = 0; r < R; ++r)
    for (int64_t o = 0; o < OUT; ++o) {
      double acc = B[size_t(o)];
      for (int64_t i = 0; i < IN; ++i) acc += X[size_t(r * IN + i)] * W[size_t(o * IN + i)];
      y[size_t(r * OUT + o)] = acc;
    }
  Shape s = x.shape();
  s.back() = OUT;
  return from_vector(y, s).to(x.dtype());
}

}  // namespace finch::ops
