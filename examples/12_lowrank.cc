// Course example 12 (docs/course/12-lowrank.md): low-rank factorization of a Linear by truncated
// SVD — the error of each rank equals the singular values it discards (Eckart–Young), the
// parameter and multiply-add counts it saves — and the distillation loss, by hand and by finch.
#include <cmath>
#include <cstdio>
#include <memory>
#include <vector>

#include "autograd/functional.h"
#include "autograd/nn/nn.h"
#include "compress/lowrank.h"
#include "compress/svd.h"
#include "framework/grad_mode.h"
#include "framework/parallel.h"
#include "framework/random.h"
#include "train/distill.h"

using namespace finch;

namespace {
constexpr int64_t IN = 64, OUT = 32;

// One Linear(64 → 32) behind a ReLU: the model the factorization rewrites in place.
struct Net : nn::Module {
  std::shared_ptr<nn::Linear> fc;
  explicit Net(Generator& g) { fc = register_module("fc", std::make_shared<nn::Linear>(IN, OUT, true, &g)); }
  Tensor forward_impl(const Tensor& x) override { return fc->forward(relu(x)); }
};

double max_abs_diff(const Tensor& a, const Tensor& b) {
  const std::vector<double> va = a.to_vector<double>(), vb = b.to_vector<double>();
  double m = 0;
  for (size_t i = 0; i < va.size(); ++i) m = std::max(m, std::fabs(va[i] - vb[i]));
  return m;
}
}  // namespace

int main() {
  set_num_threads(1);
  Generator gen(12);
  Net net(gen);
  // A trained layer's weight is rarely full of independent noise: give this one 6 strong
  // directions (a rank-6 product) on top of small noise, as learned layers tend to have.
  {
    NoGradGuard ng;
    const Tensor w = matmul(randn({OUT, 6}, gen), randn({6, IN}, gen)) * 0.1 + randn({OUT, IN}, gen) * 0.01;
    net.fc->weight.copy_(w);
  }

  // 1. The SVD, W = U diag(s) Vᵀ, in f64.
  const std::vector<double> w = net.fc->weight.to_vector<double>();
  const compress::Svd d = compress::svd(w, OUT, IN);
  std::printf("singular values of W [%lld, %lld]:", (long long)OUT, (long long)IN);
  for (int64_t i = 0; i < 10; ++i) std::printf(" %.3f", d.s[size_t(i)]);
  std::printf(" ...\n");

  // 2. Eckart–Young: the best rank-r approximation keeps the r largest singular values, and its
  //    Frobenius error is √(Σ_{i≥r} s_i²). Factorized, the layer costs r·(IN + OUT) weights (+ OUT
  //    bias) and r·(IN + OUT) multiply-adds per input row, against IN·OUT (+ OUT) and IN·OUT.
  double total = 0;
  for (double s : d.s) total += s * s;
  std::printf("rank  |W - W_r|_F  sqrt(sum discarded s^2)  relative   params  MACs/row\n");
  for (int64_t r : {1, 2, 4, 6, 8, 16, 32}) {
    const std::vector<double> wr = compress::reconstruct(d, r);
    double err = 0, discarded = 0;
    for (size_t i = 0; i < w.size(); ++i) err += (w[i] - wr[i]) * (w[i] - wr[i]);
    for (size_t i = size_t(r); i < d.s.size(); ++i) discarded += d.s[i] * d.s[i];
    std::printf("%4lld  %11.6f  %23.6f  %8.5f  %7lld  %8lld\n", (long long)r, std::sqrt(err),
                std::sqrt(discarded), std::sqrt(discarded / total), (long long)(r * (IN + OUT) + OUT),
                (long long)(r * (IN + OUT)));
  }
  std::printf("dense %11s  %23s  %8s  %7lld  %8lld\n", "", "", "",
              (long long)(IN * OUT + OUT), (long long)(IN * OUT));

  // 3. finch's factorize_module replaces `fc` by two Linears, fc = B·A with A = diag(√s_r) V_rᵀ
  //    [r, IN] and B = U_r diag(√s_r) [OUT, r] (plus the old bias).
  const Tensor x = randn({16, IN}, gen);
  Tensor before, after;
  {
    NoGradGuard ng;
    before = net.forward(x);
  }
  const compress::LayerDecision dec = compress::factorize_module(net, "fc", 6);
  {
    NoGradGuard ng;
    after = net.forward(x);
  }
  std::printf("factorize_module(fc, rank 6): %lld -> %lld parameters, discarded %.6f\n",
              (long long)dec.params_before, (long long)dec.params_after, dec.discarded);
  std::printf("  model now:");
  for (const auto& [name, t] : net.named_parameters()) {
    std::printf(" %s", name.c_str());
    for (int64_t s : t.shape()) std::printf(":%lld", (long long)s);
  }
  std::printf("\n  max |y_dense - y_rank6| over 16 inputs: %.4f (largest |y|: %.3f)\n",
              max_abs_diff(before, after), max_abs_diff(before, before * 0.0));

  // The rank rule by kept energy: the smallest r with Σ_{i<r} s_i² ≥ 0.999 Σ s_i².
  Generator gen2(12);
  Net net2(gen2);
  {
    NoGradGuard ng;
    net2.fc->weight.copy_(from_vector(w, {OUT, IN}).to(DType::f32));
  }
  compress::LowRankOptions lo;
  lo.energy = 0.999;
  const compress::LowRankResult res = compress::factorize(net2, lo);
  std::printf("factorize(energy 0.999): rank %lld of %lld, kept energy %.5f, %lld -> %lld parameters\n",
              (long long)res.layers[0].rank, (long long)res.layers[0].full_rank, res.layers[0].kept_energy,
              (long long)res.params_before, (long long)res.params_after);

  // 4. Distillation: a factorized (or pruned) student learns from the dense teacher's softened
  //    probabilities. loss = α T² KL(softmax(t/T) ‖ softmax(s/T)) + (1 − α) CE(s, labels).
  const Tensor s = from_vector(std::vector<float>{2.0f, 0.5f, -1.0f, 0.0f, 1.0f, 0.2f}, {2, 3});
  const Tensor t = from_vector(std::vector<float>{3.0f, 1.0f, -2.0f, -0.5f, 2.5f, 0.5f}, {2, 3});
  const Tensor labels = from_vector(std::vector<int64_t>{0, 1}, {2});
  const double T = 4.0, alpha = 0.7;
  double kl = 0, ce = 0;
  const std::vector<float> sv = s.to_vector<float>(), tv = t.to_vector<float>();
  for (int b = 0; b < 2; ++b) {
    auto log_softmax_row = [&](const std::vector<float>& v, double temp, int k) {
      double m = -1e30, z = 0;
      for (int j = 0; j < 3; ++j) m = std::max(m, v[size_t(b * 3 + j)] / temp);
      for (int j = 0; j < 3; ++j) z += std::exp(v[size_t(b * 3 + j)] / temp - m);
      return v[size_t(b * 3 + k)] / temp - m - std::log(z);
    };
    for (int k = 0; k < 3; ++k) {
      const double lt = log_softmax_row(tv, T, k), ls = log_softmax_row(sv, T, k);
      kl += std::exp(lt) * (lt - ls);
    }
    ce -= log_softmax_row(sv, 1.0, b == 0 ? 0 : 1);
  }
  kl /= 2;
  ce /= 2;
  const double by_hand = alpha * T * T * kl + (1 - alpha) * ce;
  for (double temp : {1.0, 4.0}) {
    std::printf("distillation_loss(T %.0f, alpha %.1f) = %.6f\n", temp, alpha,
                train::distillation_loss(s, t, labels, temp, alpha).item());
  }
  std::printf("by hand (T 4): KL %.6f, CE %.6f, loss %.6f\n", kl, ce, by_hand);
  return 0;
}
