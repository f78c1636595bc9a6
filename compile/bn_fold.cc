// The one BatchNorm fold (compile/bn_fold.h).
#include "compile/bn_fold.h"

#include <cmath>
#include <vector>

#include "framework/error.h"

namespace finch::compile {

namespace {

// [OC] as doubles (exact from f32/f16/bf16/f64), or `fill` when the tensor is absent.
std::vector<double> channel_values(const Tensor& t, int64_t oc, double fill, const char* what) {
  if (!t.defined()) return std::vector<double>(size_t(oc), fill);
  if (t.numel() != oc)
    fail("fold_conv_bn: expected the ", what, " to have one value per output channel (", oc, "), got ",
         shape_str(t.shape()));
  const Tensor d = t.detach().to(DType::f64).contiguous();
  const double* p = d.data<double>();
  return std::vector<double>(p, p + oc);
}

}  // namespace

FoldedConv fold_conv_bn(const Tensor& w, const Tensor& conv_bias, const Tensor& gamma, const Tensor& beta,
                        const Tensor& mean, const Tensor& var, double eps) {
  if (!w.defined() || w.dim() < 1 || w.size(0) < 1)
    fail("fold_conv_bn: expected a weight of shape [OC, ...] with OC >= 1, got ",
         w.defined() ? shape_str(w.shape()) : std::string("nothing"));
  const int64_t oc = w.size(0), per = w.numel() / oc;
  if (!mean.defined() || !var.defined()) fail("fold_conv_bn: expected the BatchNorm's running statistics, found none");
  const auto m = channel_values(mean, oc, 0.0, "running mean");
  const auto v = channel_values(var, oc, 1.0, "running variance");
  const auto g = channel_values(gamma, oc, 1.0, "BN weight (gamma)");
  const auto be = channel_values(beta, oc, 0.0, "BN bias (beta)");
  const auto b = channel_values(conv_bias, oc, 0.0, "conv bias");
  const Tensor wd = w.detach().to(DType::f64).contiguous();
  const double* pwd = wd.data<double>();
  FoldedConv f{empty(w.shape(), DType::f32), empty({oc}, DType::f32)};
  float* pw = f.weight.data<float>();
  float* pb = f.bias.data<float>();
  for (int64_t c = 0; c < oc; ++c) {
    const double s = g[size_t(c)] / std::sqrt(v[size_t(c)] + eps);
    for (int64_t k = 0; k < per; ++k) pw[c * per + k] = float(pwd[c * per + k] * s);
    pb[c] = float(be[size_t(c)] + (b[size_t(c)] - m[size_t(c)]) * s);
  }
  return f;
}

}  // namespace finch::compile
