// TTLinear: validation, init, and the weight rebuilt core by core.
#include "autograd/nn/tt_linear.h"

#include <cmath>
#include <string>

#include "autograd/functional.h"
#include "autograd/nn/init.h"

namespace finch::nn {

namespace {
constexpr int64_t kMaxFeatures = int64_t(1) << 31;  // refuse sizes no dense layer could hold

std::string list(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}
}  // namespace

TTLinear::TTLinear(std::vector<int64_t> in_m, std::vector<int64_t> out_m, std::vector<int64_t> inner,
                   bool with_bias, Generator* gen)
    : in_modes(std::move(in_m)), out_modes(std::move(out_m)) {
  const size_t d = in_modes.size();
  if (d < 2 || out_modes.size() != d || inner.size() != d - 1)
    fail("TTLinear: expected d ≥ 2 input modes, d output modes and d − 1 ranks, found ", list(in_modes), ", ",
         list(out_modes), " and ", list(inner));
  for (size_t k = 0; k < d; ++k) {
    if (in_modes[k] < 1 || out_modes[k] < 1)
      fail("TTLinear: expected modes ≥ 1, found ", list(in_modes), " and ", list(out_modes));
    in_features *= in_modes[k], out_features *= out_modes[k];
    if (in_features > kMaxFeatures || out_features > kMaxFeatures)
      fail("TTLinear: the modes ", list(in_modes), " → ", list(out_modes), " give more than 2^31 features");
  }
  ranks.assign(1, 1);
  for (size_t k = 0; k + 1 < d; ++k) {
    int64_t left = 1, right = 1;
    for (size_t j = 0; j < d; ++j) (j <= k ? left : right) *= in_modes[j] * out_modes[j];
    const int64_t most = std::min(left, right);
    if (inner[k] < 1 || inner[k] > most)
      fail("TTLinear: rank ", k + 1, " must be in 1..", most, " for modes ", list(in_modes), " → ",
           list(out_modes), ", found ", inner[k]);
    ranks.push_back(inner[k]);
  }
  ranks.push_back(1);
  double rank_product = 1;
  for (int64_t r : ranks) rank_product *= double(r);
  // Var W = σ^{2d} · Π r_k; match Linear's U(−1/√in, 1/√in), variance 1/(3·in).
  const double sigma = std::pow(1.0 / (3.0 * double(in_features) * rank_product), 1.0 / (2.0 * double(d)));
  for (size_t k = 0; k < d; ++k) {
    Tensor c = empty({ranks[k], in_modes[k], out_modes[k], ranks[k + 1]});
    init::normal_(c, 0.0, sigma, gen);
    cores.push_back(register_parameter("core_" + std::to_string(k), c));
  }
  bias = register_parameter("bias", with_bias ? empty({out_features}) : Tensor());
  if (bias.defined()) {
    const double bound = 1.0 / std::sqrt(double(in_features));
    init::uniform_(bias, -bound, bound, gen);
  }
}

// W_acc [M, N, r] · core [r, m, n, r'] → [M·m, N·n, r']: the row index keeps the earlier modes as
// the more significant digits, as the row-major multi-index does.
Tensor TTLinear::weight() const {
  Tensor acc = reshape(cores[0], {in_modes[0], out_modes[0], ranks[1]});
  int64_t rows = in_modes[0], cols = out_modes[0];
  for (size_t k = 1; k < cores.size(); ++k) {
    const int64_t r = ranks[k], m = in_modes[k], n = out_modes[k], r2 = ranks[k + 1];
    Tensor prod = matmul(reshape(acc, {rows * cols, r}), reshape(cores[k], {r, m * n * r2}));
    prod = permute(reshape(prod, {rows, cols, m, n, r2}), {0, 2, 1, 3, 4});
    rows *= m, cols *= n;
    acc = reshape(prod, {rows, cols, r2});
  }
  return transpose(reshape(acc, {in_features, out_features}), 0, 1);
}

Tensor TTLinear::forward_impl(const Tensor& x) {
  if (x.dim() < 1 || x.size(-1) != in_features)
    fail("TTLinear: expected an input whose last dim is ", in_features, ", got shape ", shape_str(x.shape()));
  return finch::linear(x, contiguous(weight()), bias);
}

}  // namespace finch::nn
