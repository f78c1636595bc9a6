// Course example 02 (docs/course/02-autograd.md): a two-layer MLP written with raw tensors, its
// gradient three ways — the tape (backward), the chain rule by hand, central finite differences —
// and then a few steps of gradient descent.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include "autograd/engine.h"
#include "autograd/functional.h"
#include "autograd/gradcheck.h"
#include "framework/grad_mode.h"
#include "framework/parallel.h"
#include "framework/random.h"

using namespace finch;

namespace {
// Shapes: N samples, IN inputs, H hidden units, OUT outputs.
constexpr int64_t N = 8, IN = 3, H = 5, OUT = 2;

// loss = mean((tanh(x W1ᵀ + b1) W2ᵀ + b2 − t)²), the whole model in one expression.
Tensor loss_of(const Tensor& x, const Tensor& t, const std::vector<Tensor>& p) {
  Tensor h = tanh(linear(x, p[0], p[1]));  // [N, H]
  Tensor y = linear(h, p[2], p[3]);        // [N, OUT]
  return mse_loss(y, t);
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  const std::vector<double> va = a.to_vector<double>(), vb = b.to_vector<double>();
  double m = 0;
  for (size_t i = 0; i < va.size(); ++i) m = std::max(m, std::fabs(va[i] - vb[i]));
  return m;
}
}  // namespace

int main() {
  set_num_threads(1);
  Generator gen(42);
  // f64 throughout: finite differences lose half the digits, f64 leaves enough to compare.
  const Tensor x = randn({N, IN}, gen, DType::f64);
  const Tensor t = randn({N, OUT}, gen, DType::f64);
  std::vector<Tensor> p = {randn({H, IN}, gen, DType::f64) * 0.5, zeros({H}, DType::f64),
                           randn({OUT, H}, gen, DType::f64) * 0.5, zeros({OUT}, DType::f64)};
  const char* names[] = {"W1", "b1", "W2", "b2"};
  for (Tensor& q : p) q.set_requires_grad(true);

  // 1. The tape: forward records one node per op, backward walks them in reverse.
  Tensor loss = loss_of(x, t, p);
  std::printf("loss = %.6f\n", loss.item());
  backward(loss);

  // 2. The chain rule by hand, the same numbers without the tape:
  //    z = x W1ᵀ + b1, h = tanh z, y = h W2ᵀ + b2, L = Σ (y − t)² / (N·OUT)
  //    dy = 2 (y − t) / (N·OUT);  dW2 = dyᵀ h;  db2 = Σ_n dy
  //    dh = dy W2;  dz = dh ⊙ (1 − h²);  dW1 = dzᵀ x;  db1 = Σ_n dz
  std::vector<Tensor> by_hand(4);
  {
    NoGradGuard ng;
    Tensor h = tanh(linear(x, p[0], p[1]));
    Tensor y = linear(h, p[2], p[3]);
    Tensor dy = (y - t) * (2.0 / double(N * OUT));
    by_hand[2] = matmul(dy.t(), h);
    by_hand[3] = sum(dy, {0});
    Tensor dh = matmul(dy, p[2]);
    Tensor dz = dh * (h * h * -1.0 + 1.0);  // tanh' = 1 − tanh²
    by_hand[0] = matmul(dz.t(), x);
    by_hand[1] = sum(dz, {0});
  }

  // 3. Central finite differences: dL/dθ ≈ (L(θ + ε) − L(θ − ε)) / 2ε, error O(ε²).
  const double eps = 1e-6;
  std::printf("%-3s %-8s %-12s %-12s %-12s\n", "", "shape", "|grad|max", "tape-hand", "tape-numeric");
  double worst = 0;
  for (size_t k = 0; k < p.size(); ++k) {
    Tensor numeric = zeros(p[k].shape(), DType::f64);
    {
      NoGradGuard ng;
      double* w = p[k].data<double>();
      double* g = numeric.data<double>();
      for (int64_t i = 0; i < p[k].numel(); ++i) {
        const double keep = w[i];
        w[i] = keep + eps;
        const double up = loss_of(x, t, p).item();
        w[i] = keep - eps;
        const double down = loss_of(x, t, p).item();
        w[i] = keep;
        g[i] = (up - down) / (2 * eps);
      }
    }
    const Tensor g = p[k].grad();
    const double gmax = max_abs_diff(g, zeros(g.shape(), DType::f64));
    const double d_hand = max_abs_diff(g, by_hand[k]), d_num = max_abs_diff(g, numeric);
    worst = std::max(worst, d_num);
    std::printf("%-3s %-8s %-12.6f %-12.1e %.1e\n", names[k], shape_str(g.shape()).c_str(), gmax,
                d_hand, d_num);
  }
  std::printf("finite differences agree to 1e-7: %s\n", worst < 1e-7 ? "yes" : "NO");

  // 4. finch's gradcheck does step 3 for any function (it projects the outputs on random
  //    weights, so one check covers every output element).
  std::vector<Tensor> inputs = {x.detach(), t.detach()};
  for (const Tensor& q : p) inputs.push_back(q.detach().set_requires_grad(true));
  const GradcheckResult r = gradcheck(
      [](const std::vector<Tensor>& in) {
        return std::vector<Tensor>{loss_of(in[0], in[1], {in[2], in[3], in[4], in[5]})};
      },
      inputs);
  std::printf("gradcheck: %s (%zu rules: ", r.ok ? "ok" : r.message.c_str(), r.rules.size());
  for (size_t i = 0; i < r.rules.size(); ++i) std::printf("%s%s", i ? " " : "", r.rules[i].c_str());
  std::printf(")\n");

  // 5. Gradient descent: θ ← θ − lr·dL/dθ, under NoGradGuard so the update is not recorded.
  const double lr = 0.2;
  for (int step = 1; step <= 50; ++step) {
    for (Tensor& q : p) q.set_grad(Tensor());  // gradients accumulate unless cleared
    Tensor l = loss_of(x, t, p);
    backward(l);
    {
      NoGradGuard ng;
      for (Tensor& q : p) q.copy_(q - q.grad() * lr);
    }
    if (step == 1 || step % 10 == 0) std::printf("step %2d loss %.6f\n", step, l.item());
  }
  return r.ok && worst < 1e-7 ? 0 : 1;
}
