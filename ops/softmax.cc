// softmax / log_softmax operators: validate, view the input as [O, R, I] around the dim, and run
// the Highway row or column kernel in parallel (f32) or the f64 loops (f64 = the reference).
#include "ops/softmax.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "framework/parallel.h"

namespace finch::ops {

namespace {

struct Ori {
  int64_t outer = 1, r = 1, inner = 1;
};

Ori split(const Tensor& x, int64_t dim) {
  Ori s;
  if (x.dim() == 0) return s;
  for (int64_t i = 0; i < dim; ++i) s.outer *= x.size(i);
  for (int64_t i = dim + 1; i < x.dim(); ++i) s.inner *= x.size(i);
  s.r = x.size(dim);
  return s;
}

int64_t check(const Tensor& x, int64_t dim, const char* op) {
  if (x.dtype() != DType::f32 && x.dtype() != DType::f64)
    fail(op, ": expected an F32 or F64 tensor, got ", dtype_name(x.dtype()));
  if (x.dim() == 0) {
    if (dim != 0 && dim != -1) fail(op, ": dim ", dim, " is out of range for a 0-d tensor");
    return 0;
  }
  return wrap_dim(dim, x.dim(), op);
}

// f64 loops over [O, R, I]: the reference, and the F64 operator.
template <typename T>
void softmax_loops(const T* x, T* y, const Ori& s, bool log) {
  for (int64_t o = 0; o < s.outer; ++o)
    for (int64_t k = 0; k < s.inner; ++k) {
      const T* xs = x + o * s.r * s.inner + k;
      T* ys = y + o * s.r * s.inner + k;
      double m = -std::numeric_limits<double>::infinity();
      for (int64_t j = 0; j < s.r; ++j) m = std::max(m, double(xs[j * s.inner]));
      double sum = 0;
      for (int64_t j = 0; j < s.r; ++j) sum += std::exp(double(xs[j * s.inner]) - m);
      for (int64_t j = 0; j < s.r; ++j) {
        const double z = double(xs[j * s.inner]) - m;
        ys[j * s.inner] = T(log ? z - std::log(sum) : std::exp(z) / sum);
      }
    }
}

template <typename T>
void softmax_backward_loops(const T* dy, const T* y, T* dx, const Ori& s, bool log) {
  for (int64_t o = 0; o < s.outer; ++o)
    for (int64_t k = 0; k < s.inner; ++k) {
      const int64_t base = o * s.r * s.inner + k;
      double a = 0;
      for (int64_t j = 0; j < s.r; ++j) {
        const int64_t i = base + j * s.inner;
        a += log ? double(dy[i]) : double(dy[i]) * double(y[i]);
      }
      for (int64_t j = 0; j < s.r; ++j) {
        const int64_t i = base + j * s.inner;
        dx[i] = T(log ? double(dy[i]) - std::exp(double(y[i])) * a
                      : double(y[i]) * (double(dy[i]) - a));
      }
    }
}

// Parallel split for f32: rows in the row case; (outer, column block) pairs otherwise.
constexpr int64_t kColBlock = 64;

Tensor forward(const Tensor& x, int64_t dim_in, bool log, const char* op) {
  const int64_t dim = check(x, dim_in, op);
  const Tensor xc = x.detach().contiguous();
  Tensor y = empty(x.shape(), x.dtype());
  if (y.numel() == 0) return y;
  const Ori s = split(x, dim);
  if (x.dtype() == DType::f64) {
    softmax_loops(xc.data<double>(), y.data<double>(), s, log);
    return y;
  }
  const float* px = xc.data<float>();
  float* py = y.data<float>();
  if (s.inner == 1) {
    const int64_t rows = s.outer, n = s.r;
    parallel_for(0, rows, std::max<int64_t>(1, 4096 / n), [&](int64_t b, int64_t e) {
      softmax_rows_f32(px + b * n, py + b * n, e - b, n, log);
    });
  } else {
    const int64_t nb = (s.inner + kColBlock - 1) / kColBlock;
    parallel_for(0, s.outer * nb, std::max<int64_t>(1, 4096 / (s.r * kColBlock)),
                 [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t) {
        const int64_t o = t / nb, k0 = (t % nb) * kColBlock;
        const int64_t off = o * s.r * s.inner;
        softmax_cols_f32(px + off, py + off, s.r, s.inner, k0, std::min(s.inner, k0 + kColBlock), log);
      }
    });
  }
  return y;
}

Tensor backward(const Tensor& dy, const Tensor& y, int64_t dim_in, bool log, const char* op) {
  const int64_t dim = check(y, dim_in, op);
  if (dy.shape() != y.shape() || dy.dtype() != y.dtype())
    fail(op, ": expected dy of shape ", shape_str(y.shape()), " and dtype ", dtype_name(y.dtype()),
         ", got ", shape_str(dy.shape()), " ", dtype_name(dy.dtype()));
  const Tensor dyc = dy.detach().contiguous(), yc = y.detach().contiguous();
  Tensor dx = empty(y.shape(), y.dtype());
  if (dx.numel() == 0) return dx;
  const Ori s = split(y, dim);
  if (y.dtype() == DType::f64) {
    softmax_backward_loops(dyc.data<double>(), yc.data<double>(), dx.data<double>(), s, log);
    return dx;
  }
  const float* pg = dyc.data<float>();
  const float* py = yc.data<float>();
  float* pd = dx.data<float>();
  if (s.inner == 1) {
    const int64_t n = s.r;
    parallel_for(0, s.outer, std::max<int64_t>(1, 4096 / n), [&](int64_t b, int64_t e) {
      softmax_backward_rows_f32(pg + b * n, py + b * n, pd + b * n, e - b, n, log);
    });
  } else {
    const int64_t nb = (s.inner + kColBlock - 1) / kColBlock;
    parallel_for(0, s.outer * nb, std::max<int64_t>(1, 4096 / (s.r * kColBlock)),
                 [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t) {
        const int64_t o = t / nb, k0 = (t % nb) * kColBlock;
        const int64_t off = o * s.r * s.inner;
        softmax_backward_cols_f32(pg + off, py + off, pd + off, s.r, s.inner, k0,
                                  std::min(s.inner, k0 + kColBlock), log);
      }
    });
  }
  return dx;
}

}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) { return forward(x, dim, false, "softmax"); }
Tensor log_softmax(const Tensor& x, int64_t dim) { return forward(x, dim, true, "log_softmax"); }
Tensor softmax_backward(const Tensor& dy, const Tensor& y, int64_t dim) {
  return backward(dy, y, dim, false, "softmax_backward");
}
Tensor log_softmax_backward(const Tensor& dy, const Tensor& y, int64_t dim) {
  return backward(dy, y, dim, true, "log_softmax_backward");
}

Tensor softmax_reference(const Tensor& x, int64_t dim_in, bool log) {
  // x [O, R, I] around dim; y = exp(x − max) / Σ exp(x − max), or its log; computed in f64.
  const int64_t dim = check(x, dim_in, "softmax_reference");
  const Tensor xd = x.detach().to(DType::f64).contiguous();
  Tensor y = empty(x.shape(), DType::f64);
  if (y.numel()) softmax_loops(xd.data<double>(), y.data<double>(), split(x, dim), log);
  return y.to(x.dtype());
}

Tensor softmax_backward_reference(const Tensor& dy, const Tensor& y, int64_t dim_in, bool log) {
  const int64_t dim = check(y, dim_in, "softmax_backward_reference");
  const Tensor gd = dy.detach().to(DType::f64).contiguous(), yd = y.detach().to(DType::f64).contiguous();
  Tensor dx = empty(y.shape(), DType::f64);
  if (dx.numel())
    softmax_backward_loops(gd.data<double>(), yd.data<double>(), dx.data<double>(), split(y, dim), log);
  return dx.to(y.dtype());
}

}  // namespace finch::ops
