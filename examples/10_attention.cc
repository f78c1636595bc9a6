// Course example 10 (docs/course/10-attention.md): scaled dot-product attention — written out
// with matmul and softmax, compared with finch's fused op (forward, causal mask, gradient), and
// one learned attention head that finds the marked item in a sequence.
//
// Shapes: B batch, T sequence length, D query/key width, F features per item.
#include <cmath>
#include <cstdio>
#include <vector>

#include "autograd/engine.h"
#include "autograd/functional.h"
#include "autograd/gradcheck.h"
#include "autograd/optim/adam.h"
#include "framework/grad_mode.h"
#include "framework/parallel.h"
#include "framework/random.h"

using namespace finch;

namespace {
constexpr int64_t T = 8, D = 4, F = 4;

double max_abs_diff(const Tensor& a, const Tensor& b) {
  const std::vector<double> va = a.to_vector<double>(), vb = b.to_vector<double>();
  double m = 0;
  for (size_t i = 0; i < va.size(); ++i) m = std::max(m, std::fabs(va[i] - vb[i]));
  return m;
}

// Each sequence: T items of F random values plus a marker feature, 1 at exactly one position.
// The target is the marked item's F values: the model must look them up wherever they are.
void make_data(int64_t B, Generator& gen, Tensor& x, Tensor& y) {
  x = randn({B, T, F + 1}, gen);
  y = empty({B, F});
  float* px = x.data<float>();
  for (int64_t b = 0; b < B; ++b) {
    const int64_t m = int64_t(gen.uniform() * T) % T;
    for (int64_t t = 0; t < T; ++t) px[(b * T + t) * (F + 1) + F] = t == m ? 1.0f : 0.0f;
    for (int64_t f = 0; f < F; ++f) y.data<float>()[b * F + f] = px[(b * T + m) * (F + 1) + f];
  }
}
}  // namespace

int main() {
  set_num_threads(1);
  Generator gen(10);

  // 1. Attention by hand: S = q kᵀ / √D, P = softmax over keys (each row sums to 1), O = P v.
  {
    NoGradGuard ng;
    const Tensor q = randn({2, 3, D}, gen), k = randn({2, 5, D}, gen), v = randn({2, 5, F}, gen);
    const Tensor p = softmax(matmul(q, transpose(k, -2, -1)) * (1.0 / std::sqrt(double(D))), -1);
    const Tensor by_hand = matmul(p, v);
    std::printf("by hand vs fused: max |diff| %.1e; rows of P sum to %.6f\n",
                max_abs_diff(by_hand, scaled_dot_product_attention(q, k, v)), sum(p, {-1}).get({1, 2}));
    // Causal: query i sees keys 0..i only, so output row 0 is exactly value row 0.
    const Tensor c = scaled_dot_product_attention(q, k.narrow(1, 0, 3), v.narrow(1, 0, 3), Tensor(), true);
    std::printf("causal: |O[0] - v[0]| = %.1e\n", max_abs_diff(select(c, 1, 0), select(v, 1, 0)));
    // Softmax subtracts each row's max first: scores near 1e4 neither overflow nor lose the answer.
    const Tensor big = scaled_dot_product_attention(q * 5000.0, k, v);
    std::printf("scores ~1e4: output finite: %s\n", first_non_finite(big) < 0 ? "yes" : "no");
  }
  // 2. The fused op's backward against finite differences, f64, with a causal mask.
  {
    Generator g2(2);
    std::vector<Tensor> in = {randn({2, 3, D}, g2, DType::f64), randn({2, 3, D}, g2, DType::f64),
                              randn({2, 3, F}, g2, DType::f64)};
    for (Tensor& t : in) t.set_requires_grad(true);
    const GradcheckResult r = gradcheck(
        [](const std::vector<Tensor>& v) {
          return std::vector<Tensor>{scaled_dot_product_attention(v[0], v[1], v[2], Tensor(), true)};
        },
        in);
    std::printf("gradcheck scaled_dot_product_attention (causal): %s\n", r.ok ? "ok" : r.message.c_str());
  }

  // 3. One learned head: a query vector qv [1, D] and maps W_k [D, F+1], W_v [F, F+1]:
  //    O = softmax(qv (x W_kᵀ)ᵀ / √D) (x W_vᵀ). To answer, the head must put its weight on the
  //    marked item, i.e. learn keys that make the marker's score large.
  Tensor qv = (randn({1, 1, D}, gen) * 0.1).set_requires_grad(true);
  Tensor wk = (randn({D, F + 1}, gen) * 0.1).set_requires_grad(true);
  Tensor wv = (randn({F, F + 1}, gen) * 0.1).set_requires_grad(true);
  auto head = [&](const Tensor& x) {
    const Tensor q = expand(qv, {x.size(0), 1, D});
    return reshape(scaled_dot_product_attention(q, linear(x, wk), linear(x, wv)), {x.size(0), F});
  };
  Tensor xtr, ytr, xte, yte;
  make_data(1024, gen, xtr, ytr);
  make_data(256, gen, xte, yte);
  optim::AdamOptions ao;
  ao.lr = 0.05;
  optim::Adam opt({qv, wk, wv}, ao);
  auto test_mse = [&] {
    NoGradGuard ng;
    return mse_loss(head(xte), yte).item();
  };
  std::printf("step 0 test mse %.4f (the plain average of the items: %.4f)\n", test_mse(),
              mse_loss(mean(narrow(xte, 2, 0, F), {1}), yte).item());
  for (int step = 1; step <= 300; ++step) {
    const Tensor idx = randint(0, 1024, {64}, gen);
    Tensor loss = mse_loss(head(index_select(xtr, 0, idx)), index_select(ytr, 0, idx));
    opt.zero_grad();
    backward(loss);
    opt.step();
    if (step == 10 || step == 30 || step == 100 || step == 300) std::printf("step %d test mse %.5f\n", step, test_mse());
  }
  // Where does the trained head look? Its attention weights on one test sequence.
  {
    NoGradGuard ng;
    const Tensor x = xte.narrow(0, 0, 1);
    const Tensor s = matmul(qv, transpose(linear(x, wk), -2, -1)) * (1.0 / std::sqrt(double(D)));
    const Tensor p = softmax(s, -1);
    std::printf("marker  %s\nweights %s\n", select(select(x, 2, F), 0, 0).str().c_str(),
                reshape(p, {T}).str().c_str());
  }
  return 0;
}
