// End-to-end parity with PyTorch: a small CNN (conv, batch norm, relu, max pool, linear) and a
// small MLP (linear, layer norm, GELU, linear) start from PyTorch's initial weights and train 20
// steps of SGD-momentum and of AdamW on fixed data; every loss and every final weight and
// running statistic must match PyTorch's to 1e-4 relative. Goldens: make_parity_goldens.py.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>

#include "autograd/engine.h"
#include "autograd/functional.h"
#include "autograd/nn/nn.h"
#include "autograd/optim/optim.h"
#include "tests/golden/golden.h"

using namespace finch;

namespace {

std::shared_ptr<nn::Sequential> make_model(const std::string& kind) {
  if (kind == "cnn")
    return std::make_shared<nn::Sequential>(std::initializer_list<nn::ModulePtr>{
        std::make_shared<nn::Conv2d>(1, 4, 3, /*stride=*/1, /*padding=*/1, /*dilation=*/1,
                                     /*groups=*/1, /*bias=*/false),
        std::make_shared<nn::BatchNorm2d>(4), std::make_shared<nn::ReLU>(),
        std::make_shared<nn::MaxPool2d>(2), std::make_shared<nn::Flatten>(),
        std::make_shared<nn::Linear>(64, 3)});
  return std::make_shared<nn::Sequential>(std::initializer_list<nn::ModulePtr>{
      std::make_shared<nn::Linear>(6, 16), std::make_shared<nn::LayerNorm>(Shape{16}),
      std::make_shared<nn::GELU>(), std::make_shared<nn::Linear>(16, 3)});
}

void run_parity(const std::string& model_kind, const std::string& opt_kind) {
  const auto golden = test::load_golden("parity_" + model_kind + "_" + opt_kind + ".safetensors");
  auto model = make_model(model_kind);
  nn::StateDict init;
  for (const auto& [name, t] : golden.tensors)
    if (name.rfind("init.", 0) == 0) init.insert(name.substr(5), t);
  model->load_state_dict(init, /*strict=*/true);

  std::unique_ptr<optim::Optimizer> opt;
  if (opt_kind == "sgd") {
    optim::SGDOptions o;
    o.lr = 0.05;
    o.momentum = 0.9;
    o.weight_decay = 1e-4;
    opt = std::make_unique<optim::SGD>(model->parameters(), o);
  } else {
    optim::AdamOptions o;
    o.lr = 0.01;
    o.weight_decay = 0.01;
    opt = std::make_unique<optim::AdamW>(model->parameters(), o);
  }

  const Tensor x = golden.at("x"), y = golden.at("y");
  const auto want_losses = golden.at("losses").to_vector<double>();
  model->train();
  for (size_t step = 0; step < want_losses.size(); ++step) {
    opt->zero_grad();
    Tensor loss = cross_entropy(model->forward(x), y);
    backward(loss);
    opt->step();
    EXPECT_NEAR(loss.item(), want_losses[step], 1e-4 * std::fabs(want_losses[step]) + 1e-6)
        << model_kind << "/" << opt_kind << " step " << step;
  }
  for (const auto& [name, t] : model->state_dict())
    test::expect_close(t, golden.at("final." + name), /*atol=*/1e-6, /*rtol=*/1e-4,
                       model_kind + "/" + opt_kind + " " + name);
}

}  // namespace

TEST(Parity, CnnSgdMomentumMatchesPyTorch) { run_parity("cnn", "sgd"); }
TEST(Parity, CnnAdamWMatchesPyTorch) { run_parity("cnn", "adamw"); }
TEST(Parity, MlpSgdMomentumMatchesPyTorch) { run_parity("mlp", "sgd"); }
TEST(Parity, MlpAdamWMatchesPyTorch) { run_parity("mlp", "adamw"); }
