// Layer norm over the trailing dims of x, viewed as [R, D]: validation and the fused forward and
// backward kernels, one row per parallel task, statistics in double per row (row primitives from
// ops/norm_rows.h; plain-loop references in ops/norm_reference.cc).
#include <cmath>
#include <vector>

#include "framework/parallel.h"
#include "ops/norm.h"
#include "ops/norm_rows.h"

namespace finch::ops {

namespace {

using namespace norm_detail;

struct LnDims {
  int64_t R, D;
};

LnDims ln_dims(const Tensor& x, const Shape& ns, const char* op) {
  if (x.dtype() != DType::f32 && x.dtype() != DType::f64)
    fail(op, ": expected an F32 or F64 input, got ", dtype_name(x.dtype()));
  const int64_t k = int64_t(ns.size());
  bool ok = k >= 1 && x.dim() >= k;
  for (int64_t i = 0; ok && i < k; ++i) ok = x.size(x.dim() - k + i) == ns[size_t(i)];
  if (!ok)
    fail(op, ": expected an input whose trailing dims are normalized_shape ", shape_str(ns),
         ", got shape ", shape_str(x.shape()));
  const int64_t D = shape_numel(ns);
  return {D == 0 ? 0 : x.numel() / D, D};
}

Tensor ln_param(const Tensor& t, const Tensor& x, const Shape& ns, const char* op,
                const char* name) {
  if (!t.defined()) return t;
  if (t.shape() != ns)
    fail(op, ": expected ", name, " of shape normalized_shape ", shape_str(ns), ", got ",
         shape_str(t.shape()));
  return param(t, x.dtype(), shape_numel(ns), op, name);
}

template <typename T>
void ln_row_forward(const T* x, const T* w, const T* b, T* y, int64_t n, T mean, T rstd) {
  if constexpr (std::is_same_v<T, float>)
    if (n >= kMinSimdRun) return norm_kernels::ln_forward_row(x, w, b, y, n, mean, rstd);
  for (int64_t i = 0; i < n; ++i) {
    T v = (x[i] - mean) * rstd;
    if (w) v *= w[i];
    if (b) v += b[i];
    y[i] = v;
  }
}

template <typename T>
void ln_row_sums(const T* dy, const T* x, const T* w, int64_t n, T mean, T rstd, double* sg,
                 double* sgx, T* dw, T* db) {
  if constexpr (std::is_same_v<T, float>)
    if (n >= kMinSimdRun)
      return norm_kernels::ln_backward_sums(dy, x, w, n, mean, rstd, sg, sgx, dw, db);
  double s = 0, p = 0;
  for (int64_t i = 0; i < n; ++i) {
    const T xh = (x[i] - mean) * rstd;
    const T g = w ? dy[i] * w[i] : dy[i];
    s += g;
    p += double(g) * double(xh);
    if (dw) dw[i] += dy[i] * xh;
    if (db) db[i] += dy[i];
  }
  *sg = s;
  *sgx = p;
}

template <typename T>
void ln_row_dx(const T* dy, const T* x, const T* w, T* dx, int64_t n, T mean, T rstd, T mg,
               T mgx) {
  if constexpr (std::is_same_v<T, float>)
    if (n >= kMinSimdRun) return norm_kernels::ln_backward_dx(dy, x, w, dx, n, mean, rstd, mg, mgx);
  for (int64_t i = 0; i < n; ++i) {
    const T g = w ? dy[i] * w[i] : dy[i];
    const T xh = (x[i] - mean) * rstd;
    dx[i] = rstd * ((g - mg) - xh * mgx);
  }
}

template <typename T>
void ln_forward_impl(const Tensor& x, const LnDims& d, const Tensor& w, const Tensor& b,
                     double eps, LayerNormResult& r) {
  const T* px = x.data<T>();
  const T* pw = ptr_or_null<T>(w);
  const T* pb = ptr_or_null<T>(b);
  T* py = r.y.data<T>();
  T* pm = r.mean.data<T>();
  T* pr = r.rstd.data<T>();
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(d.D, 1));
  parallel_for(0, d.R, grain, [&](int64_t r0, int64_t r1) {
    for (int64_t i = r0; i < r1; ++i) {
      const T* xi = px + i * d.D;
      const double mean = run_sum(xi, d.D) / double(d.D);
      // Two passes (mean, then squared deviations): E[x²] - E[x]² cancels catastrophically
      // for rows with a large mean.
      const double var = run_sum_sq_dev(xi, d.D, T(mean)) / double(d.D);
      const double rstd = 1.0 / std::sqrt(var + eps);
      pm[i] = T(mean);
      pr[i] = T(rstd);
      ln_row_forward(xi, pw, pb, py + i * d.D, d.D, T(mean), T(rstd));
    }
  });
}

template <typename T>
void ln_backward_impl(const Tensor& dy, const Tensor& x, const LnDims& d, const Tensor& w,
                      const Tensor& mean, const Tensor& rstd, std::array<bool, 3> needs,
                      NormGrads& g) {
  const T* pdy = dy.data<T>();
  const T* px = x.data<T>();
  const T* pw = ptr_or_null<T>(w);
  const T* pm = mean.data<T>();
  const T* pr = rstd.data<T>();
  T* pdx = needs[0] ? g.dx.data<T>() : nullptr;
  const bool param_grads = needs[1] || needs[2];
  // dw/db sum over rows. Each of a FIXED number of row chunks (not one per thread) owns a
  // partial [D] buffer, reduced in chunk order afterwards: deterministic for any thread count,
  // and no atomics in the inner loop.
  const int64_t chunks = param_grads ? std::max<int64_t>(1, std::min<int64_t>(d.R, 16)) : 1;
  std::vector<T> part_w(param_grads && needs[1] ? size_t(chunks * d.D) : 0, T(0));
  std::vector<T> part_b(param_grads && needs[2] ? size_t(chunks * d.D) : 0, T(0));
  auto rows = [&](int64_t r0, int64_t r1, T* dw, T* db) {
    for (int64_t i = r0; i < r1; ++i) {
      const T* gi = pdy + i * d.D;
      const T* xi = px + i * d.D;
      double sg = 0, sgx = 0;
      ln_row_sums(gi, xi, pw, d.D, pm[i], pr[i], &sg, &sgx, dw, db);
      if (pdx)
        ln_row_dx(gi, xi, pw, pdx + i * d.D, d.D, pm[i], pr[i], T(sg / double(d.D)),
                  T(sgx / double(d.D)));
    }
  };
  if (!param_grads) {
    const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(d.D, 1));
    parallel_for(0, d.R, grain, [&](int64_t r0, int64_t r1) { rows(r0, r1, nullptr, nullptr); });
    return;
  }
  parallel_for(0, chunks, 1, [&](int64_t k0, int64_t k1) {
    for (int64_t k = k0; k < k1; ++k)
      rows(d.R * k / chunks, d.R * (k + 1) / chunks,
           part_w.empty() ? nullptr : part_w.data() + k * d.D,
           part_b.empty() ? nullptr : part_b.data() + k * d.D);
  });
  auto reduce = [&](const std::vector<T>& part, T* out) {
    parallel_for(0, d.D, 1024, [&](int64_t j0, int64_t j1) {
      for (int64_t j = j0; j < j1; ++j) {
        double s = 0;
        for (int64_t k = 0; k < chunks; ++k) s += part[size_t(k * d.D + j)];
        out[j] = T(s);
      }
    });
  };
  if (needs[1]) reduce(part_w, g.dweight.data<T>());
  if (needs[2]) reduce(part_b, g.dbias.data<T>());
}

}  // namespace

LayerNormResult layer_norm(const Tensor& x_in, const Shape& normalized_shape,
                           const Tensor& weight, const Tensor& bias, double eps) {
  const LnDims d = ln_dims(x_in, normalized_shape, "layer_norm");
  const Tensor x = x_in.contiguous();
  const Tensor w = ln_param(weight, x, normalized_shape, "layer_norm", "weight");
  const Tensor b = ln_param(bias, x, normalized_shape, "layer_norm", "bias");
  LayerNormResult r{empty(x.shape(), x.dtype()), empty({d.R}, x.dtype()),
                    empty({d.R}, x.dtype())};
  if (x.dtype() == DType::f32)
    ln_forward_impl<float>(x, d, w, b, eps, r);
  else
    ln_forward_impl<double>(x, d, w, b, eps, r);
  return r;
}

NormGrads layer_norm_backward(const Tensor& dy_in, const Tensor& x_in,
                              const Shape& normalized_shape, const Tensor& weight,
                              const Tensor& mean, const Tensor& rstd,
                              std::array<bool, 3> needs) {
  const LnDims d = ln_dims(x_in, normalized_shape, "layer_norm_backward");
  if (dy_in.shape() != x_in.shape() || dy_in.dtype() != x_in.dtype())
    fail("layer_norm_backward: expected dy of the input's shape ", shape_str(x_in.shape()),
         " and dtype, got ", shape_str(dy_in.shape()), " ", dtype_name(dy_in.dtype()));
  const Tensor x = x_in.contiguous(), dy = dy_in.contiguous();
  const Tensor w = ln_param(weight, x, normalized_shape, "layer_norm_backward", "weight");
  const Tensor m = param(mean, x.dtype(), d.R, "layer_norm_backward", "mean");
  const Tensor r = param(rstd, x.dtype(), d.R, "layer_norm_backward", "rstd");
  NormGrads g;
  if (needs[0]) g.dx = empty(x.shape(), x.dtype());
  if (needs[1]) g.dweight = zeros(normalized_shape, x.dtype());
  if (needs[2]) g.dbias = zeros(normalized_shape, x.dtype());
  if (x.dtype() == DType::f32)
    ln_backward_impl<float>(dy, x, d, w, m, r, needs, g);
  else
    ln_backward_impl<double>(dy, x, d, w, m, r, needs, g);
  return g;
}

}  // namespace finch::ops
