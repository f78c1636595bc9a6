// Course example 08 (docs/course/08-lstm.md): an LSTM on the adding problem (Hochreiter &
// Schmidhuber 1997): each step carries a random value and a marker; exactly two steps are marked
// and the target is the sum of their values. A model that ignores the order cannot beat
// predicting the mean (MSE = Var(a + b) = 2/12 ≈ 0.167); the LSTM has to remember.
//
// Also: the layer's sequence equals the cell equations unrolled by hand (lstm_cell per step),
// and the cell's gradient passes a finite-difference check.
#include <cmath>
#include <cstdio>
#include <memory>
#include <vector>

#include "autograd/engine.h"
#include "autograd/functional.h"
#include "autograd/gradcheck.h"
#include "autograd/nn/nn.h"
#include "autograd/optim/adam.h"
#include "framework/grad_mode.h"
#include "framework/parallel.h"
#include "framework/random.h"

using namespace finch;

namespace {
// Shapes: B sequences, T steps, IN = 2 features (value, marker), H hidden units.
constexpr int64_t T = 12, IN = 2, H = 24;

void make_data(int64_t B, Generator& gen, Tensor& x, Tensor& y) {
  x = zeros({B, T, IN});
  y = empty({B, 1});
  float* px = x.data<float>();
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t t = 0; t < T; ++t) px[(b * T + t) * IN] = gen.uniform();
    const int64_t i = int64_t(gen.uniform() * (T / 2)) % (T / 2);           // one in the first half
    const int64_t j = T / 2 + int64_t(gen.uniform() * (T / 2)) % (T / 2);   // one in the second
    px[(b * T + i) * IN + 1] = px[(b * T + j) * IN + 1] = 1.0f;
    y.data<float>()[b] = px[(b * T + i) * IN] + px[(b * T + j) * IN];
  }
}

struct AddingModel {
  std::shared_ptr<nn::LSTM> lstm;
  std::shared_ptr<nn::Linear> head;
  // x [B, T, IN] -> the last step's h [B, H] -> [B, 1]
  Tensor forward(const Tensor& x) { return head->forward(select(lstm->forward_seq(x).state.h, 0, 0)); }
  std::vector<Tensor> parameters() {
    std::vector<Tensor> p = lstm->parameters();
    for (const Tensor& t : head->parameters()) p.push_back(t);
    return p;
  }
};
}  // namespace

int main() {
  set_num_threads(1);
  Generator gen(9);
  AddingModel m{std::make_shared<nn::LSTM>(IN, H, nn::RnnOptions{.batch_first = true}, &gen),
                std::make_shared<nn::Linear>(H, 1, true, &gen)};
  std::printf("LSTM(%lld, %lld): w_ih %s, w_hh %s (gates i, f, g, o stacked)\n", static_cast<long long>(IN),
              static_cast<long long>(H), shape_str(m.lstm->weights[0].w_ih.shape()).c_str(),
              shape_str(m.lstm->weights[0].w_hh.shape()).c_str());

  // 1. The layer is the cell equations unrolled over t (h, c start at 0):
  //    [i f g o] = x_t W_ihᵀ + b_ih + h W_hhᵀ + b_hh;  c = σ(f)⊙c + σ(i)⊙tanh(g);  h = σ(o)⊙tanh(c)
  {
    NoGradGuard ng;
    Tensor x, y;
    make_data(3, gen, x, y);
    const auto& w = m.lstm->weights[0];
    Tensor h = zeros({3, H}), c = zeros({3, H});
    for (int64_t t = 0; t < T; ++t) std::tie(h, c) = lstm_cell(x.select(1, t), h, c, w.w_ih, w.w_hh, w.b_ih, w.b_hh);
    const std::vector<float> a = h.to_vector<float>(), b = m.lstm->forward_seq(x).state.h.to_vector<float>();
    double d = 0;
    for (size_t i = 0; i < a.size(); ++i) d = std::max(d, std::fabs(double(a[i]) - double(b[i])));
    std::printf("unrolled lstm_cell vs nn::LSTM: max |diff| of h_T = %.1e\n", d);
  }
  // 2. The cell's backward (through σ, tanh and the products) against finite differences, f64.
  {
    Generator g2(1);
    std::vector<Tensor> in = {randn({2, 3}, g2, DType::f64), randn({2, 4}, g2, DType::f64),
                              randn({2, 4}, g2, DType::f64), randn({16, 3}, g2, DType::f64),
                              randn({16, 4}, g2, DType::f64)};
    for (Tensor& t : in) t.set_requires_grad(true);
    const GradcheckResult r = gradcheck(
        [](const std::vector<Tensor>& v) {
          auto [h, c] = lstm_cell(v[0], v[1], v[2], v[3], v[4]);
          return std::vector<Tensor>{h, c};
        },
        in);
    std::printf("gradcheck lstm_cell (x, h, c, w_ih, w_hh): %s\n", r.ok ? "ok" : r.message.c_str());
  }

  // 3. Training: Adam, minibatches of 32, MSE loss; the test MSE against the mean-predictor's.
  Tensor xtr, ytr, xte, yte;
  make_data(1024, gen, xtr, ytr);
  make_data(256, gen, xte, yte);
  optim::AdamOptions ao;
  ao.lr = 0.01;
  optim::Adam opt(m.parameters(), ao);
  auto test_mse = [&] {
    NoGradGuard ng;
    return mse_loss(m.forward(xte), yte).item();
  };
  std::printf("epoch 0 test mse %.4f (predicting the mean: %.4f)\n", test_mse(),
              mse_loss(full(yte.shape(), mean(ytr).item()), yte).item());
  for (int epoch = 1; epoch <= 18; ++epoch) {
    const Tensor order = randperm(1024, gen);
    double total = 0;
    for (int64_t i = 0; i < 1024; i += 32) {
      const Tensor idx = order.narrow(0, i, 32);
      Tensor loss = mse_loss(m.forward(index_select(xtr, 0, idx)), index_select(ytr, 0, idx));
      opt.zero_grad();
      backward(loss);  // backpropagation through time: one tape node per layer, T steps inside
      opt.step();
      total += loss.item();
    }
    if (epoch % 3 == 0) std::printf("epoch %d train mse %.4f test mse %.4f\n", epoch, total / 32, test_mse());
  }
  return 0;
}
