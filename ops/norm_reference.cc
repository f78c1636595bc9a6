// Plain-loop references for batch norm and layer norm (double arithmetic, results in the
// input's dtype): what the fused kernels in ops/batch_norm.cc and ops/layer_norm.cc are tested against. Never optimized.
//
// Shapes: x [N, C, S] for batch norm (S = product of the dims after C), x [R, D] for layer
// norm (D = product of normalized_shape).
#include <cmath>
#include <vector>

#include "ops/norm.h"

namespace finch::ops {

namespace {

struct BnDims {
  int64_t N, C, S;
};

BnDims bn_dims(const Tensor& x, const char* op) {
  FINCH_CHECK(x.dim() >= 2, op, ": expected [N, C, *], got ", shape_str(x.shape()));
  BnDims d{x.size(0), x.size(1), 1};
  for (int64_t i = 2; i < x.dim(); ++i) d.S *= x.size(i);
  return d;
}

struct LnDims {
  int64_t R, D;
};

LnDims ln_dims(const Tensor& x, const Shape& ns, const char* op) {
  const int64_t D = shape_numel(ns);
  FINCH_CHECK(!ns.empty() && x.dim() >= int64_t(ns.size()), op, ": bad normalized_shape ",
              shape_str(ns), " for ", shape_str(x.shape()));
  return {D == 0 ? 0 : x.numel() / D, D};
}

}  // namespace

// Reference: x [N, C, S]; plain loops in double over the element accessors' row-major copy.
BatchNormResult batch_norm_reference(const Tensor& x, const Tensor& running_mean,
                                     const Tensor& running_var, const Tensor& weight,
                                     const Tensor& bias, bool training, double momentum,
                                     double eps) {
  const BnDims d = bn_dims(x, "batch_norm_reference");
  const auto xv = x.to_vector<double>();
  const int64_t M = d.N * d.S;
  std::vector<double> y(xv.size()), mean(size_t(d.C)), inv(size_t(d.C));
  for (int64_t c = 0; c < d.C; ++c) {
    double mu, var;
    if (training) {
      mu = 0;
      for (int64_t n = 0; n < d.N; ++n)
        for (int64_t s = 0; s < d.S; ++s) mu += xv[size_t((n * d.C + c) * d.S + s)];
      mu /= double(M);
      var = 0;
      for (int64_t n = 0; n < d.N; ++n)
        for (int64_t s = 0; s < d.S; ++s) {
          const double t = xv[size_t((n * d.C + c) * d.S + s)] - mu;
          var += t * t;
        }
      if (running_mean.defined())
        running_mean.set({c}, (1 - momentum) * running_mean.get({c}) + momentum * mu);
      if (running_var.defined())
        running_var.set({c}, (1 - momentum) * running_var.get({c}) + momentum * var / double(M - 1));
      var /= double(M);
    } else {
      mu = running_mean.get({c});
      var = running_var.get({c});
    }
    mean[size_t(c)] = mu;
    inv[size_t(c)] = 1.0 / std::sqrt(var + eps);
    const double wc = weight.defined() ? weight.get({c}) : 1.0;
    const double bc = bias.defined() ? bias.get({c}) : 0.0;
    for (int64_t n = 0; n < d.N; ++n)
      for (int64_t s = 0; s < d.S; ++s) {
        const size_t i = size_t((n * d.C + c) * d.S + s);
        y[i] = (xv[i] - mu) * inv[size_t(c)] * wc + bc;
      }
  }
  return {from_vector(y, x.shape()).to(x.dtype()), from_vector(mean, {d.C}).to(x.dtype()),
          from_vector(inv, {d.C}).to(x.dtype())};
}

NormGrads batch_norm_backward_reference(const Tensor& dy, const Tensor& x, const Tensor& weight,
                                        const Tensor& save_mean, const Tensor& save_invstd,
                                        bool training) {
  const BnDims d = bn_dims(x, "batch_norm_backward_reference");
  const auto xv = x.to_vector<double>(), gv = dy.to_vector<double>();
  const int64_t M = d.N * d.S;
  std::vector<double> dx(xv.size()), dw(size_t(d.C)), db(size_t(d.C));
  for (int64_t c = 0; c < d.C; ++c) {
    const double mu = save_mean.get({c}), inv = save_invstd.get({c});
    const double wc = weight.defined() ? weight.get({c}) : 1.0;
    double sdy = 0, sdyxh = 0;
    for (int64_t n = 0; n < d.N; ++n)
      for (int64_t s = 0; s < d.S; ++s) {
        const size_t i = size_t((n * d.C + c) * d.S + s);
        sdy += gv[i];
        sdyxh += gv[i] * (xv[i] - mu) * inv;
      }
    dw[size_t(c)] = sdyxh;
    db[size_t(c)] = sdy;
    for (int64_t n = 0; n < d.N; ++n)
      for (int64_t s = 0; s < d.S; ++s) {
        const size_t i = size_t((n * d.C + c) * d.S + s);
        const double xh = (xv[i] - mu) * inv;
        dx[i] = training ? wc * inv * (gv[i] - sdy / double(M) - xh * sdyxh / double(M))
                         : wc * inv * gv[i];
      }
  }
  return {from_vector(dx, x.shape()).to(x.dtype()), from_vector(dw, {d.C}).to(x.dtype()),
          from_vector(db, {d.C}).to(x.dtype())};
}

// Reference: x [R, D] in double; y = (x - mean)/sqrt(var + eps)·w + b with the biased variance.
LayerNormResult layer_norm_reference(const Tensor& x, const Shape& normalized_shape,
                                     const Tensor& weight, const Tensor& bias, double eps) {
  const LnDims d = ln_dims(x, normalized_shape, "layer_norm_reference");
  const auto xv = x.to_vector<double>();
  const auto wv = weight.defined() ? weight.to_vector<double>() : std::vector<double>();
  const auto bv = bias.defined() ? bias.to_vector<double>() : std::vector<double>();
  std::vector<double> y(xv.size()), mean(size_t(d.R)), rstd(size_t(d.R));
  for (int64_t r = 0; r < d.R; ++r) {
    double mu = 0, var = 0;
    for (int64_t j = 0; j < d.D; ++j) mu += xv[size_t(r * d.D + j)];
    mu /= double(d.D);
    for (int64_t j = 0; j < d.D; ++j) var += (xv[size_t(r * d.D + j)] - mu) * (xv[size_t(r * d.D + j)] - mu);
    var /= double(d.D);
    const double rs = 1.0 / std::sqrt(var + eps);
    mean[size_t(r)] = mu;
    rstd[size_t(r)] = rs;
    for (int64_t j = 0; j < d.D; ++j) {
      double v = (xv[size_t(r * d.D + j)] - mu) * rs;
      if (!wv.empty()) v *= wv[size_t(j)];
      if (!bv.empty()) v += bv[size_t(j)];
      y[size_t(r * d.D + j)] = v;
    }
  }
  return {from_vector(y, x.shape()).to(x.dtype()), from_vector(mean, {d.R}).to(x.dtype()),
          from_vector(rstd, {d.R}).to(x.dtype())};
}

NormGrads layer_norm_backward_reference(const Tensor& dy, const Tensor& x,
                                        const Shape& normalized_shape, const Tensor& weight,
                                        const Tensor& mean, const Tensor& rstd) {
  const LnDims d = ln_dims(x, normalized_shape, "layer_norm_backward_reference");
  const auto xv = x.to_vector<double>(), gv = dy.to_vector<double>();
  const auto wv = weight.defined() ? weight.to_vector<double>() : std::vector<double>();
  std::vector<double> dx(xv.size()), dw(size_t(d.D)), db(size_t(d.D));
  for (int64_t r = 0; r < d.R; ++r) {
    const double mu = mean.get({r}), rs = rstd.get({r});
    double sg = 0, sgx = 0;
    for (int64_t j = 0; j < d.D; ++j) {
      const size_t i = size_t(r * d.D + j);
      const double xh = (xv[i] - mu) * rs;
      const double g = gv[i] * (wv.empty() ? 1.0 : wv[size_t(j)]);
      sg += g;
      sgx += g * xh;
      dw[size_t(j)] += gv[i] * xh;
      db[size_t(j)] += gv[i];
    }
    for (int64_t j = 0; j < d.D; ++j) {
      const size_t i = size_t(r * d.D + j);
      const double xh = (xv[i] - mu) * rs;
      const double g = gv[i] * (wv.empty() ? 1.0 : wv[size_t(j)]);
      dx[i] = rs * (g - sg / double(d.D) - xh * sgx / double(d.D));
    }
  }
  return {from_vector(dx, x.shape()).to(x.dtype()), from_vector(dw, normalized_shape).to(x.dtype()),
          from_vector(db, normalized_shape).to(x.dtype())};
}

}  // namespace finch::ops
