// nn layers through their forwards: small models built from finch::nn modules load PyTorch's
// state_dict by name, run forward + backward and must match torch 1.13's outputs, input and
// parameter gradients, and running statistics (tests/golden/make_nn_goldens.py).
#include <gtest/gtest.h>

#include <cmath>

#include "autograd/engine.h"
#include "autograd/functional.h"
#include "autograd/nn/nn.h"
#include "autograd/optim/optim.h"
#include "framework/grad_mode.h"
#include "tests/golden/golden.h"

using namespace finch;

namespace {

const SafetensorsFile& G() {
  static const SafetensorsFile g = test::load_golden("nn_goldens.safetensors");
  return g;
}

const Tensor& gold(const std::string& name) { return G().at(name); }

// Every nn golden is compared at atol 1e-5, rtol 1e-4.
void expect_close(const Tensor& got, const Tensor& want, const std::string& what) {
  test::expect_close(got, want, 1e-5, 1e-4, what);
}

// The torch state dict of model `m` (entries "m.sd.<name>").
nn::StateDict torch_state_dict(const std::string& m) {
  nn::StateDict d;
  const std::string prefix = m + ".sd.";
  for (const auto& [k, t] : G().tensors)
    if (k.rfind(prefix, 0) == 0) d.insert(k.substr(prefix.size()), t);
  return d;
}

// Loads torch's weights (strict: every name must match), runs a training forward and the
// backward of sum(y·w), then an eval forward, comparing everything torch recorded.
void check_model(const std::string& m, nn::Module& model) {
  model.load_state_dict(torch_state_dict(m));
  model.train();
  Tensor x = gold(m + ".x").clone();
  const bool float_input = is_floating(x.dtype());
  if (float_input) x.set_requires_grad(true);
  Tensor y = model.forward(x);
  expect_close(y, gold(m + ".y"), m + ".y");
  backward(y, gold(m + ".w"));
  if (float_input) expect_close(x.grad(), gold(m + ".dx"), m + ".dx");
  for (const auto& [name, p] : model.named_parameters())
    expect_close(p.grad(), gold(m + ".grad." + name), m + ".grad." + name);
  for (const auto& [name, b] : model.named_buffers()) {
    if (b.dtype() == DType::i64)
      EXPECT_EQ(b.to_vector<int64_t>(), gold(m + ".after." + name).to_vector<int64_t>()) << name;
    else
      expect_close(b, gold(m + ".after." + name), m + ".after." + name);
  }
  model.eval();
  NoGradGuard ng;
  expect_close(model.forward(gold(m + ".x")), gold(m + ".y_eval"), m + ".y_eval");
}

template <typename M, typename... Args>
nn::ModulePtr make(Args&&... args) {
  return std::make_shared<M>(std::forward<Args>(args)...);
}

}  // namespace

TEST(NnLayers, ConvBatchNormMaxPoolLinear) {
  nn::Sequential model{make<nn::Conv2d>(3, 4, 3, 1, 1), make<nn::BatchNorm2d>(4), make<nn::ReLU>(),
                       make<nn::MaxPool2d>(2), make<nn::Flatten>(), make<nn::Linear>(36, 5)};
  check_model("conv_bn", model);
  auto bn = std::static_pointer_cast<nn::BatchNorm2d>(model[1]);
  EXPECT_EQ(bn->num_batches_tracked.item(), 1.0);
}

TEST(NnLayers, GroupedConvAvgPoolAdaptive) {
  Conv2dParams o;
  o.sh = o.sw = 2;
  o.ph = o.pw = 1;
  o.groups = 2;
  nn::Sequential model{make<nn::Conv2d>(4, 6, std::pair<int64_t, int64_t>{3, 3}, o, false),
                       make<nn::AvgPool2d>(2, 1), make<nn::LeakyReLU>(0.2),
                       make<nn::AdaptiveAvgPool2d>(std::pair<int64_t, int64_t>{2, 1}), make<nn::Flatten>(),
                       make<nn::Tanh>()};
  check_model("grouped", model);
}

TEST(NnLayers, Conv1dBatchNorm1dCumulativeMomentum) {
  nn::Sequential model{make<nn::Conv1d>(4, 6, 3, 2, 2, 2, 2), make<nn::BatchNorm1d>(6, 1e-5, std::nullopt),
                       make<nn::Hardswish>(), make<nn::Sigmoid>()};
  check_model("seq1d", model);
}

TEST(NnLayers, EmbeddingLayerNormGelu) {
  nn::Sequential model{make<nn::Embedding>(10, 6, 0), make<nn::LayerNorm>(Shape{6}), make<nn::GELU>("tanh"),
                       make<nn::Linear>(6, 3), make<nn::SiLU>(), make<nn::ReLU6>(), make<nn::GELU>()};
  check_model("emb", model);
  // The padding row gets no gradient.
  auto emb = std::static_pointer_cast<nn::Embedding>(model[0]);
  for (float v : emb->weight.grad().select(0, 0).to_vector<float>()) EXPECT_EQ(v, 0.f);
}

TEST(NnLayers, DropoutTrainEvalAndGenerator) {
  Generator g1(3), g2(3);
  nn::Dropout d1(0.5, &g1), d2(0.5, &g2);
  Tensor x = ones({1000});
  Tensor y1 = d1.forward(x), y2 = d2.forward(x);
  EXPECT_EQ(y1.to_vector<float>(), y2.to_vector<float>());  // same seed, same mask
  int zeros_seen = 0;
  for (float v : y1.to_vector<float>()) {
    EXPECT_TRUE(v == 0.f || v == 2.f);
    zeros_seen += v == 0.f;
  }
  EXPECT_GT(zeros_seen, 400);
  EXPECT_LT(zeros_seen, 600);
  d1.eval();
  EXPECT_EQ(d1.forward(x).to_vector<float>(), x.to_vector<float>());
}

// The whole loop: modules, a loss, backward, grads on every parameter, eval-mode BatchNorm
// uses (and does not change) its running statistics.
TEST(NnLayers, TrainingStepGivesEveryParameterAGradient) {
  Generator g(17);
  nn::Sequential model{make<nn::Conv2d>(2, 3, 3, 1, 1, 1, 1, true, &g), make<nn::BatchNorm2d>(3), make<nn::ReLU>(),
                       make<nn::AdaptiveAvgPool2d>(1), make<nn::Flatten>(), make<nn::Linear>(3, 4, true, &g)};
  Tensor x = randn({5, 2, 4, 4}, g);
  Tensor target = from_vector<int64_t>({0, 1, 2, 3, 1}, {5});
  Tensor loss = cross_entropy(model.forward(x), target);
  backward(loss);
  for (const auto& [name, p] : model.named_parameters()) {
    ASSERT_TRUE(p.grad().defined()) << name;
    EXPECT_EQ(p.grad().shape(), p.shape()) << name;
    double norm = 0;
    for (float v : p.grad().to_vector<float>()) norm += double(v) * v;
    EXPECT_GT(norm, 0.0) << name;
  }
  auto bn = std::static_pointer_cast<nn::BatchNorm2d>(model[1]);
  EXPECT_EQ(bn->num_batches_tracked.item(), 1.0);
  const auto rm = bn->running_mean.to_vector<float>();
  model.eval();
  NoGradGuard ng;
  model.forward(x);
  EXPECT_EQ(bn->running_mean.to_vector<float>(), rm);
  EXPECT_EQ(bn->num_batches_tracked.item(), 1.0);
  EXPECT_THROW(model.forward(randn({5, 3, 4, 4}, g)), Error);  // wrong channel count
}

namespace {

// A small regression net trained with AdamW under a OneCycle schedule and gradient clipping;
// returns the losses. `checkpoint_at` >= 0 saves model + optimizer there, rebuilds both from
// the saved state dicts and continues with the rebuilt ones.
std::vector<float> train_regression(int steps, int checkpoint_at) {
  Generator g(5);
  auto build = [](Generator& gen) {
    return std::make_shared<nn::Sequential>(std::initializer_list<nn::ModulePtr>{
        std::make_shared<nn::Linear>(2, 16, true, &gen), std::make_shared<nn::Tanh>(),
        std::make_shared<nn::Linear>(16, 1, true, &gen)});
  };
  auto model = build(g);
  Tensor x = randn({64, 2}, g);
  Tensor y = empty({64, 1});
  for (int64_t i = 0; i < 64; ++i) y.set({i, 0}, std::sin(2.0 * x.get({i, 0})) + 0.5 * x.get({i, 1}));
  auto opt = std::make_unique<optim::AdamW>(model->parameters(), optim::AdamOptions{.lr = 1e-3, .weight_decay = 1e-4});
  const optim::OneCycleLR sched{.max_lr = 0.05, .total_steps = steps};
  std::vector<float> losses;
  for (int s = 0; s < steps; ++s) {
    if (s == checkpoint_at) {
      const nn::StateDict model_sd = model->state_dict(), opt_sd = opt->state_dict();
      Generator other(99);  // different init: everything must come from the checkpoint
      auto fresh = build(other);
      fresh->load_state_dict(model_sd);
      auto fresh_opt = std::make_unique<optim::AdamW>(fresh->parameters(), optim::AdamOptions{});
      fresh_opt->load_state_dict(opt_sd);
      model = fresh;
      opt = std::move(fresh_opt);
    }
    opt->set_lr(sched.lr(s));
    opt->zero_grad();
    Tensor loss = mse_loss(model->forward(x), y);
    backward(loss);
    optim::clip_grad_norm_(model->parameters(), 1.0);
    opt->step();
    losses.push_back(float(loss.item()));
  }
  return losses;
}

}  // namespace

TEST(NnLayers, TrainingConvergesAndCheckpointResumesExactly) {
  const auto full = train_regression(150, -1);
  EXPECT_LT(full.back(), 0.1f * full.front()) << "first " << full.front() << " last " << full.back();
  const auto resumed = train_regression(150, 70);
  EXPECT_EQ(resumed, full);  // bit-identical losses after the model + optimizer round trip
}
