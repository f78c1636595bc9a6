// Batch norm over x [N, C, *]: validation, the fused per-channel forward and backward kernels
// (row primitives from ops/norm_rows.h) with a column-blocked path for short planes.
//
// Shapes: x [N, C, S] (S = product of the dims after C). Statistics are accumulated in double
// per run so a channel with millions of values keeps its precision in F32. The plain-loop
// references are in ops/norm_reference.cc.
#include <cmath>
#include <vector>

#include "framework/parallel.h"
#include "ops/norm.h"
#include "ops/norm_rows.h"

namespace finch::ops {

namespace {

using namespace norm_detail;

template <typename T>
void bn_forward_impl(const Tensor& x, const BnDims& d, const Tensor& rm, const Tensor& rv,
                     const Tensor& w, const Tensor& b, bool training, double momentum, double eps,
                     BatchNormResult& r) {
  const T* px = x.data<T>();
  T* py = r.y.data<T>();
  T* pmean = r.save_mean.data<T>();
  T* pinv = r.save_invstd.data<T>();
  T* prm = rm.defined() ? rm.data<T>() : nullptr;
  T* prv = rv.defined() ? rv.data<T>() : nullptr;
  const T* pw = ptr_or_null<T>(w);
  const T* pb = ptr_or_null<T>(b);
  const int64_t M = d.N * d.S;
  // Grain: enough channels per chunk that each chunk has real work.
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(M, 1));
  parallel_for(0, d.C, grain, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      double mean, invstd;
      if (training) {
        double s = 0;
        for (int64_t n = 0; n < d.N; ++n) s += run_sum(px + (n * d.C + c) * d.S, d.S);
        mean = s / double(M);
        double ss = 0;
        for (int64_t n = 0; n < d.N; ++n)
          ss += run_sum_sq_dev(px + (n * d.C + c) * d.S, d.S, T(mean));
        invstd = 1.0 / std::sqrt(ss / double(M) + eps);
        // The unbiased variance updates the running estimate, as torch does.
        if (prm) prm[c] = T((1 - momentum) * double(prm[c]) + momentum * mean);
        if (prv) prv[c] = T((1 - momentum) * double(prv[c]) + momentum * ss / double(M - 1));
      } else {
        mean = double(prm[c]);
        invstd = 1.0 / std::sqrt(double(prv[c]) + eps);
      }
      pmean[c] = T(mean);
      pinv[c] = T(invstd);
      const double a = (pw ? double(pw[c]) : 1.0) * invstd;
      const double sh = (pb ? double(pb[c]) : 0.0) - mean * a;
      for (int64_t n = 0; n < d.N; ++n) {
        const int64_t off = (n * d.C + c) * d.S;
        run_scale_shift(px + off, py + off, d.S, T(a), T(sh));
      }
    }
  });
}

template <typename T>
void bn_backward_impl(const Tensor& dy, const Tensor& x, const BnDims& d, const Tensor& w,
                      const Tensor& mean, const Tensor& invstd, bool training,
                      std::array<bool, 3> needs, NormGrads& g) {
  const T* pdy = dy.data<T>();
  const T* px = x.data<T>();
  const T* pw = ptr_or_null<T>(w);
  const T* pm = mean.data<T>();
  const T* pi = invstd.data<T>();
  T* pdx = needs[0] ? g.dx.data<T>() : nullptr;
  T* pdw = needs[1] ? g.dweight.data<T>() : nullptr;
  T* pdb = needs[2] ? g.dbias.data<T>() : nullptr;
  const int64_t M = d.N * d.S;
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(M, 1));
  parallel_for(0, d.C, grain, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      const double mu = pm[c], inv = pi[c], wc = pw ? double(pw[c]) : 1.0;
      double sdy = 0, sdyx = 0;
      const bool need_sums = pdw || pdb || (pdx && training);
      if (need_sums)
        for (int64_t n = 0; n < d.N; ++n) {
          const int64_t off = (n * d.C + c) * d.S;
          run_sum_dy_dyx(pdy + off, px + off, d.S, T(mu), &sdy, &sdyx);
        }
      if (pdw) pdw[c] = T(sdyx * inv);
      if (pdb) pdb[c] = T(sdy);
      if (!pdx) continue;
      // dx = w·invstd·(dy - mean(dy) - xhat·mean(dy·xhat)) written as a·dy + b·x + c so the
      // inner loop is two fused multiply-adds.
      const double a = wc * inv;
      double bx = 0, cc = 0;
      if (training) {
        bx = -a * inv * inv * sdyx / double(M);
        cc = -a * sdy / double(M) - bx * mu;
      }
      for (int64_t n = 0; n < d.N; ++n) {
        const int64_t off = (n * d.C + c) * d.S;
        run_affine2(pdy + off, px + off, pdx + off, d.S, T(a), T(bx), T(cc));
      }
    }
  });
}

// Short planes (S < kMinSimdRun, e.g. BatchNorm1d on [N, C]): walking one channel at a time
// would stride through memory C times. Instead each task owns a block of channels, i.e. a
// contiguous span of every row n, and accumulates per-column sums row by row (unit stride,
// vectorizable), then folds the S columns of each channel.
constexpr int64_t kChannelBlock = 64;

template <typename T>
void bn_forward_short(const Tensor& x, const BnDims& d, const Tensor& rm, const Tensor& rv,
                      const Tensor& w, const Tensor& b, bool training, double momentum,
                      double eps, BatchNormResult& r) {
  const T* px = x.data<T>();
  T* py = r.y.data<T>();
  T* pmean = r.save_mean.data<T>();
  T* pinv = r.save_invstd.data<T>();
  T* prm = rm.defined() ? rm.data<T>() : nullptr;
  T* prv = rv.defined() ? rv.data<T>() : nullptr;
  const T* pw = ptr_or_null<T>(w);
  const T* pb = ptr_or_null<T>(b);
  const int64_t M = d.N * d.S, row = d.C * d.S;
  const int64_t blocks = (d.C + kChannelBlock - 1) / kChannelBlock;
  parallel_for(0, blocks, 1, [&](int64_t b0, int64_t b1) {
    std::vector<double> acc(size_t(kChannelBlock * d.S));
    std::vector<T> colmean(acc.size()), a(acc.size()), sh(acc.size());
    for (int64_t blk = b0; blk < b1; ++blk) {
      const int64_t c0 = blk * kChannelBlock, c1 = std::min(d.C, c0 + kChannelBlock);
      const int64_t width = (c1 - c0) * d.S, off = c0 * d.S;
      std::vector<double> mean(size_t(c1 - c0)), inv(size_t(c1 - c0));
      if (training) {
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int64_t n = 0; n < d.N; ++n)
          for (int64_t j = 0; j < width; ++j) acc[size_t(j)] += px[n * row + off + j];
        for (int64_t c = c0; c < c1; ++c) {
          double s = 0;
          for (int64_t k = 0; k < d.S; ++k) s += acc[size_t((c - c0) * d.S + k)];
          mean[size_t(c - c0)] = s / double(M);
          for (int64_t k = 0; k < d.S; ++k) colmean[size_t((c - c0) * d.S + k)] = T(s / double(M));
        }
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int64_t n = 0; n < d.N; ++n)
          for (int64_t j = 0; j < width; ++j) {
            const double t = double(px[n * row + off + j] - colmean[size_t(j)]);
            acc[size_t(j)] += t * t;
          }
        for (int64_t c = c0; c < c1; ++c) {
          double ss = 0;
          for (int64_t k = 0; k < d.S; ++k) ss += acc[size_t((c - c0) * d.S + k)];
          inv[size_t(c - c0)] = 1.0 / std::sqrt(ss / double(M) + eps);
          if (prm) prm[c] = T((1 - momentum) * double(prm[c]) + momentum * mean[size_t(c - c0)]);
          if (prv) prv[c] = T((1 - momentum) * double(prv[c]) + momentum * ss / double(M - 1));
        }
      } else {
        for (int64_t c = c0; c < c1; ++c) {
          mean[size_t(c - c0)] = double(prm[c]);
          inv[size_t(c - c0)] = 1.0 / std::sqrt(double(prv[c]) + eps);
        }
      }
      for (int64_t c = c0; c < c1; ++c) {
        const double m = mean[size_t(c - c0)], iv = inv[size_t(c - c0)];
        pmean[c] = T(m);
        pinv[c] = T(iv);
        const double ac = (pw ? double(pw[c]) : 1.0) * iv;
        for (int64_t k = 0; k < d.S; ++k) {
          a[size_t((c - c0) * d.S + k)] = T(ac);
          sh[size_t((c - c0) * d.S + k)] = T((pb ? double(pb[c]) : 0.0) - m * ac);
        }
      }
      for (int64_t n = 0; n < d.N; ++n)
        for (int64_t j = 0; j < width; ++j)
          py[n * row + off + j] = px[n * row + off + j] * a[size_t(j)] + sh[size_t(j)];
    }
  });
}

template <typename T>
void bn_backward_short(const Tensor& dy, const Tensor& x, const BnDims& d, const Tensor& w,
                       const Tensor& mean, const Tensor& invstd, bool training,
                       std::array<bool, 3> needs, NormGrads& g) {
  const T* pdy = dy.data<T>();
  const T* px = x.data<T>();
  const T* pw = ptr_or_null<T>(w);
  const T* pm = mean.data<T>();
  const T* pi = invstd.data<T>();
  T* pdx = needs[0] ? g.dx.data<T>() : nullptr;
  T* pdw = needs[1] ? g.dweight.data<T>() : nullptr;
  T* pdb = needs[2] ? g.dbias.data<T>() : nullptr;
  const int64_t M = d.N * d.S, row = d.C * d.S;
  const int64_t blocks = (d.C + kChannelBlock - 1) / kChannelBlock;
  parallel_for(0, blocks, 1, [&](int64_t b0, int64_t b1) {
    std::vector<double> sdy(size_t(kChannelBlock * d.S)), sdyx(sdy.size());
    std::vector<T> colmean(sdy.size()), A(sdy.size()), B(sdy.size()), Cc(sdy.size());
    for (int64_t blk = b0; blk < b1; ++blk) {
      const int64_t c0 = blk * kChannelBlock, c1 = std::min(d.C, c0 + kChannelBlock);
      const int64_t width = (c1 - c0) * d.S, off = c0 * d.S;
      for (int64_t j = 0; j < width; ++j) colmean[size_t(j)] = pm[c0 + j / d.S];
      std::fill(sdy.begin(), sdy.end(), 0.0);
      std::fill(sdyx.begin(), sdyx.end(), 0.0);
      for (int64_t n = 0; n < d.N; ++n)
        for (int64_t j = 0; j < width; ++j) {
          const T gy = pdy[n * row + off + j];
          sdy[size_t(j)] += gy;
          sdyx[size_t(j)] += double(gy) * double(px[n * row + off + j] - colmean[size_t(j)]);
        }
      for (int64_t c = c0; c < c1; ++c) {
        double s = 0, p = 0;
        for (int64_t k = 0; k < d.S; ++k) {
          s += sdy[size_t((c - c0) * d.S + k)];
          p += sdyx[size_t((c - c0) * d.S + k)];
        }
        const double inv = pi[c], a = (pw ? double(pw[c]) : 1.0) * inv;
        if (pdw) pdw[c] = T(p * inv);
        if (pdb) pdb[c] = T(s);
        double bx = 0, cc = 0;
        if (training) {
          bx = -a * inv * inv * p / double(M);
          cc = -a * s / double(M) - bx * double(pm[c]);
        }
        for (int64_t k = 0; k < d.S; ++k) {
          A[size_t((c - c0) * d.S + k)] = T(a);
          B[size_t((c - c0) * d.S + k)] = T(bx);
          Cc[size_t((c - c0) * d.S + k)] = T(cc);
        }
      }
      if (pdx)
        for (int64_t n = 0; n < d.N; ++n)
          for (int64_t j = 0; j < width; ++j) {
            const int64_t i = n * row + off + j;
            pdx[i] = A[size_t(j)] * pdy[i] + (B[size_t(j)] * px[i] + Cc[size_t(j)]);
          }
    }
  });
}

}  // namespace

BatchNormResult batch_norm(const Tensor& x_in, const Tensor& running_mean,
                           const Tensor& running_var, const Tensor& weight, const Tensor& bias,
                           bool training, double momentum, double eps) {
  const BnDims d = bn_dims(x_in, "batch_norm");
  check_running(running_mean, x_in, d.C, "batch_norm", "running_mean");
  check_running(running_var, x_in, d.C, "batch_norm", "running_var");
  if (!training && (!running_mean.defined() || !running_var.defined()))
    fail("batch_norm: eval mode (training=false) needs running_mean and running_var, got ",
         running_mean.defined() ? "" : "no running_mean ", running_var.defined() ? "" : "no running_var");
  if (training && d.N * d.S <= 1)
    fail("batch_norm: expected more than 1 value per channel when training, got input shape ",
         shape_str(x_in.shape()));
  const Tensor x = x_in.contiguous();
  const Tensor w = param(weight, x.dtype(), d.C, "batch_norm", "weight");
  const Tensor b = param(bias, x.dtype(), d.C, "batch_norm", "bias");
  BatchNormResult r{empty(x.shape(), x.dtype()), empty({d.C}, x.dtype()),
                    empty({d.C}, x.dtype())};
  const bool f32 = x.dtype() == DType::f32;
  if (d.S < kMinSimdRun) {
    if (f32)
      bn_forward_short<float>(x, d, running_mean, running_var, w, b, training, momentum, eps, r);
    else
      bn_forward_short<double>(x, d, running_mean, running_var, w, b, training, momentum, eps, r);
  } else if (f32) {
    bn_forward_impl<float>(x, d, running_mean, running_var, w, b, training, momentum, eps, r);
  } else {
    bn_forward_impl<double>(x, d, running_mean, running_var, w, b, training, momentum, eps, r);
  }
  return r;
}

NormGrads batch_norm_backward(const Tensor& dy_in, const Tensor& x_in, const Tensor& weight,
                              const Tensor& save_mean, const Tensor& save_invstd, bool training,
                              std::array<bool, 3> needs) {
  const BnDims d = bn_dims(x_in, "batch_norm_backward");
  if (dy_in.shape() != x_in.shape() || dy_in.dtype() != x_in.dtype())
    fail("batch_norm_backward: expected dy of the input's shape ", shape_str(x_in.shape()),
         " and dtype, got ", shape_str(dy_in.shape()), " ", dtype_name(dy_in.dtype()));
  const Tensor x = x_in.contiguous(), dy = dy_in.contiguous();
  const Tensor w = param(weight, x.dtype(), d.C, "batch_norm_backward", "weight");
  const Tensor m = param(save_mean, x.dtype(), d.C, "batch_norm_backward", "save_mean");
  const Tensor iv = param(save_invstd, x.dtype(), d.C, "batch_norm_backward", "save_invstd");
  NormGrads g;
  if (needs[0]) g.dx = empty(x.shape(), x.dtype());
  if (needs[1]) g.dweight = empty({d.C}, x.dtype());
  if (needs[2]) g.dbias = empty({d.C}, x.dtype());
  const bool f32 = x.dtype() == DType::f32;
  if (d.S < kMinSimdRun) {
    if (f32)
      bn_backward_short<float>(dy, x, d, w, m, iv, training, needs, g);
    else
      bn_backward_short<double>(dy, x, d, w, m, iv, training, needs, g);
  } else if (f32) {
    bn_backward_impl<float>(dy, x, d, w, m, iv, training, needs, g);
  } else {
    bn_backward_impl<double>(dy, x, d, w, m, iv, training, needs, g);
  }
  return g;
}

}  // namespace finch::ops
