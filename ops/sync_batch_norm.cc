// Synchronized batch norm (ops/sync_batch_norm.h): per-channel local sums, one hook call to
// combine them across processes, then the same per-channel affine passes as ops/batch_norm.cc.
//
// Layout: x [N, C, S] contiguous; channel c's values are N runs of S at (n·C + c)·S. Channels are
// split across the thread pool; the hook runs on the calling thread between the passes.
#include "ops/sync_batch_norm.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "framework/parallel.h"
#include "ops/norm_rows.h"

namespace finch::ops {
namespace {

using namespace norm_detail;

using Dims = BnDims;  // validated by norm_detail::bn_dims, as ops/batch_norm.cc

// Grain: enough channels per chunk that each chunk has real work (as ops/batch_norm.cc).
int64_t grain_of(const Dims& d) { return std::max<int64_t>(1, 32768 / std::max<int64_t>(d.N * d.S, 1)); }

template <typename T>
void forward_impl(const Tensor& x, const Dims& d, const Tensor& rm, const Tensor& rv, const Tensor& w,
                  const Tensor& b, double momentum, double eps, const SumAcrossProcesses& sum,
                  SyncBatchNormResult& r) {
  const T* px = x.data<T>();
  const int64_t M = d.N * d.S, C = d.C;
  // [Σx (C), Σx² (C), M]: what the processes add up.
  std::vector<double> stats(size_t(2 * C + 1), 0.0);
  parallel_for(0, C, grain_of(d), [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      double s = 0;
      for (int64_t n = 0; n < d.N; ++n) s += run_sum(px + (n * C + c) * d.S, d.S);
      // Deviations from this process's own mean (rounded to T, as the kernel takes it), then
      // Σx² = Σ(x − m)² + 2m·Σx − M·m² exactly for any m: no large sum of squares is ever
      // formed in T, so a channel with a large mean keeps its variance.
      const T m = M > 0 ? T(s / double(M)) : T(0);
      double q = 0;
      for (int64_t n = 0; n < d.N; ++n) q += run_sum_sq_dev(px + (n * C + c) * d.S, d.S, m);
      stats[size_t(c)] = s;
      stats[size_t(C + c)] = q + 2.0 * double(m) * s - double(M) * double(m) * double(m);
    }
  });
  stats[size_t(2 * C)] = double(M);
  sum(stats.data(), int64_t(stats.size()));
  const double total = stats[size_t(2 * C)];
  if (!(total > 1 && total < 9.0e15 && total == std::floor(total)))
    fail("sync_batch_norm: expected more than 1 value per channel over all processes when training, got ", total,
         " (this process's input has shape ", shape_str(x.shape()), ")");
  r.count = int64_t(total);

  T* py = r.bn.y.data<T>();
  T* pmean = r.bn.save_mean.data<T>();
  T* pinv = r.bn.save_invstd.data<T>();
  T* prm = rm.defined() ? rm.data<T>() : nullptr;
  T* prv = rv.defined() ? rv.data<T>() : nullptr;
  const T* pw = ptr_or_null<T>(w);
  const T* pb = ptr_or_null<T>(b);
  parallel_for(0, C, grain_of(d), [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      const double mean = stats[size_t(c)] / total;
      const double m2 = std::max(0.0, stats[size_t(C + c)] - stats[size_t(c)] * mean);  // Σ(x − mean)²
      const double invstd = 1.0 / std::sqrt(m2 / total + eps);
      // The unbiased variance updates the running estimate, as torch does.
      if (prm) prm[c] = T((1 - momentum) * double(prm[c]) + momentum * mean);
      if (prv) prv[c] = T((1 - momentum) * double(prv[c]) + momentum * m2 / (total - 1));
      pmean[c] = T(mean);
      pinv[c] = T(invstd);
      const double a = (pw ? double(pw[c]) : 1.0) * invstd;
      const double sh = (pb ? double(pb[c]) : 0.0) - mean * a;
      for (int64_t n = 0; n < d.N; ++n) {
        const int64_t off = (n * C + c) * d.S;
        run_scale_shift(px + off, py + off, d.S, T(a), T(sh));
      }
    }
  });
}

template <typename T>
void backward_impl(const Tensor& dy, const Tensor& x, const Dims& d, const Tensor& w, const Tensor& mean,
                   const Tensor& invstd, int64_t count, const SumAcrossProcesses& sum, std::array<bool, 3> needs,
                   NormGrads& g) {
  const T* pdy = dy.data<T>();
  const T* px = x.data<T>();
  const T* pw = ptr_or_null<T>(w);
  const T* pm = mean.data<T>();
  const T* pi = invstd.data<T>();
  T* pdx = needs[0] ? g.dx.data<T>() : nullptr;
  T* pdw = needs[1] ? g.dweight.data<T>() : nullptr;
  T* pdb = needs[2] ? g.dbias.data<T>() : nullptr;
  const int64_t C = d.C;
  // [Σdy (C), Σdy·(x − mean) (C)] over this process's values.
  std::vector<double> sums(size_t(2 * C), 0.0);
  parallel_for(0, C, grain_of(d), [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      double sdy = 0, sdyx = 0;
      for (int64_t n = 0; n < d.N; ++n) {
        const int64_t off = (n * C + c) * d.S;
        run_sum_dy_dyx(pdy + off, px + off, d.S, pm[c], &sdy, &sdyx);
      }
      // The parameters' gradients over this process's values only: the data-parallel reducer
      // averages them across processes like every other gradient.
      if (pdw) pdw[c] = T(sdyx * double(pi[c]));
      if (pdb) pdb[c] = T(sdy);
      sums[size_t(c)] = sdy;
      sums[size_t(C + c)] = sdyx;
    }
  });
  if (!pdx) return;
  sum(sums.data(), int64_t(sums.size()));
  const double M = double(count);
  parallel_for(0, C, grain_of(d), [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      const double mu = pm[c], inv = pi[c], wc = pw ? double(pw[c]) : 1.0;
      // dx = w·invstd·(dy − mean(dy) − x̂·mean(dy·x̂)), the means over every process's values,
      // written as a·dy + b·x + c (ops/batch_norm.cc's form).
      const double a = wc * inv;
      const double bx = -a * inv * inv * sums[size_t(C + c)] / M;
      const double cc = -a * sums[size_t(c)] / M - bx * mu;
      for (int64_t n = 0; n < d.N; ++n) {
        const int64_t off = (n * C + c) * d.S;
        run_affine2(pdy + off, px + off, pdx + off, d.S, T(a), T(bx), T(cc));
      }
    }
  });
}

}  // namespace

SyncBatchNormResult sync_batch_norm(const Tensor& x_in, const Tensor& running_mean, const Tensor& running_var,
                                    const Tensor& weight, const Tensor& bias, double momentum, double eps,
                                    const SumAcrossProcesses& sum) {
  if (!sum) fail("sync_batch_norm: no function to sum the statistics across processes was given");
  if (!(eps > 0) || !(momentum >= 0 && momentum <= 1))
    fail("sync_batch_norm: expected eps > 0 and momentum in [0, 1], got eps ", eps, " and momentum ", momentum);
  const Dims d = bn_dims(x_in, "sync_batch_norm");
  const Tensor x = x_in.contiguous();
  check_running(running_mean, x, d.C, "sync_batch_norm", "running_mean");
  const Tensor& rm = running_mean;
  check_running(running_var, x, d.C, "sync_batch_norm", "running_var");
  const Tensor& rv = running_var;
  const Tensor w = param(weight, x.dtype(), d.C, "sync_batch_norm", "weight");
  const Tensor b = param(bias, x.dtype(), d.C, "sync_batch_norm", "bias");
  SyncBatchNormResult r{{empty(x.shape(), x.dtype()), empty({d.C}, x.dtype()), empty({d.C}, x.dtype())}, 0};
  if (x.dtype() == DType::f32)
    forward_impl<float>(x, d, rm, rv, w, b, momentum, eps, sum, r);
  else
    forward_impl<double>(x, d, rm, rv, w, b, momentum, eps, sum, r);
  return r;
}

NormGrads sync_batch_norm_backward(const Tensor& dy_in, const Tensor& x_in, const Tensor& weight,
                                   const Tensor& save_mean, const Tensor& save_invstd, int64_t count,
                                   const SumAcrossProcesses& sum, std::array<bool, 3> needs) {
  if (!sum) fail("sync_batch_norm_backward: no function to sum across processes was given");
  const Dims d = bn_dims(x_in, "sync_batch_norm_backward");
  if (dy_in.shape() != x_in.shape() || dy_in.dtype() != x_in.dtype())
    fail("sync_batch_norm_backward: expected dy of the input's shape ", shape_str(x_in.shape()), " and dtype, got ",
         shape_str(dy_in.shape()), " ", dtype_name(dy_in.dtype()));
  if (count < 2)
    fail("sync_batch_norm_backward: expected the forward's count of values per channel (over all processes, > 1), "
         "got ", count);
  const Tensor x = x_in.contiguous(), dy = dy_in.contiguous();
  const Tensor w = param(weight, x.dtype(), d.C, "sync_batch_norm_backward", "weight");
  const Tensor m = param(save_mean, x.dtype(), d.C, "sync_batch_norm_backward", "save_mean");
  const Tensor iv = param(save_invstd, x.dtype(), d.C, "sync_batch_norm_backward", "save_invstd");
  NormGrads g;
  if (needs[0]) g.dx = empty(x.shape(), x.dtype());
  if (needs[1]) g.dweight = empty({d.C}, x.dtype());
  if (needs[2]) g.dbias = empty({d.C}, x.dtype());
  if (x.dtype() == DType::f32)
    backward_impl<float>(dy, x, d, w, m, iv, count, sum, needs, g);
  else
    backward_impl<double>(dy, x, d, w, m, iv, count, sum, needs, g);
  return g;
}

}  // namespace finch::ops
