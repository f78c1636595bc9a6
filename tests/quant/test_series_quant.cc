// Quantization of 1-D conv units: Conv1d + BatchNorm1d folds as Conv2d + BatchNorm2d does (QAT
// trains through the fold with batch statistics, eval runs the exact integer unit), and a zero
// pad of codes (a Conv1d's even-kernel "same" padding) keeps their grid: no input quantizer.
#include <gtest/gtest.h>

#include "autograd/engine.h"
#include "autograd/functional.h"
#include "autograd/nn/nn.h"
#include "framework/grad_mode.h"
#include "framework/random.h"
#include "quant/prepare.h"
#include "quant/qconfig.h"

using namespace finch;

namespace {

// conv1 (k 3, "same" by its own padding) → bn1 → relu → zero pad (1, 2) → conv2 (k 4) → bn2 →
// relu → mean over time → fc.
class Net : public nn::Module {
 public:
  explicit Net(Generator& gen) {
    conv1 = register_module("conv1", std::make_shared<nn::Conv1d>(2, 6, 3, 1, 1, 1, 1, true, &gen));
    bn1 = register_module("bn1", std::make_shared<nn::BatchNorm1d>(6));
    conv2 = register_module("conv2", std::make_shared<nn::Conv1d>(6, 5, 4, 1, 0, 1, 1, false, &gen));
    bn2 = register_module("bn2", std::make_shared<nn::BatchNorm1d>(5));
    relu1 = register_module("relu1", std::make_shared<nn::ReLU>());
    relu2 = register_module("relu2", std::make_shared<nn::ReLU>());
    gap = register_module("gap", std::make_shared<nn::AdaptiveAvgPool1d>(1));
    fc = register_module("fc", std::make_shared<nn::Linear>(5, 3, true, &gen));
  }
  std::string type_name() const override { return "Net"; }
  Tensor forward_impl(const Tensor& x) override {
    Tensor h = relu1->forward(bn1->forward(conv1->forward(x)));
    h = relu2->forward(bn2->forward(conv2->forward(finch::pad(h, {1, 2}))));
    return fc->forward(finch::flatten(gap->forward(h), 1));
  }
  std::shared_ptr<nn::Conv1d> conv1, conv2;
  std::shared_ptr<nn::BatchNorm1d> bn1, bn2;
  std::shared_ptr<nn::ReLU> relu1, relu2;
  std::shared_ptr<nn::AdaptiveAvgPool1d> gap;
  std::shared_ptr<nn::Linear> fc;
};

bool has_entry(const quant::QuantizedModel& q, const std::string& where, const std::string& what) {
  for (const auto& e : q.plan)
    if (e.site == where && e.what.find(what) != std::string::npos) return true;
  return false;
}

}  // namespace

TEST(SeriesQuant, Conv1dFoldsBatchNorm1dAndPadKeepsTheGrid) {
  Generator gen(1);
  Net net(gen);
  const Tensor example = randn({1, 2, 12}, gen);
  quant::PrepareOptions po;
  po.qconfig = quant::qconfig_preset("int8");
  auto q = quant::prepare(net, example, po, /*qat=*/true);
  EXPECT_TRUE(has_entry(*q, "conv1", "fold bn1"));
  EXPECT_TRUE(has_entry(*q, "conv2", "fold bn2"));
  EXPECT_TRUE(has_entry(*q, "conv2", "zero pad of codes"));
  for (const auto& [name, fq] : q->fake_quants())
    EXPECT_EQ(name.find("conv2.input_fake_quant"), std::string::npos) << name << ": the padded codes need no quantizer";

  // QAT: training mode trains through the fold (batch statistics move the running ones), and
  // every parameter — conv weights, BN affine — gets a gradient.
  net.train();
  const Tensor before = net.bn2->running_mean.clone();
  Tensor loss = finch::sum(finch::mul(net.forward(randn({8, 2, 12}, gen)), randn({8, 3}, gen)));
  backward(loss);
  EXPECT_FALSE(before.contiguous().to_vector<float>() == net.bn2->running_mean.contiguous().to_vector<float>());
  for (const Tensor& t : {net.conv1->weight, net.conv2->weight, net.bn1->weight, net.bn2->bias})
    ASSERT_TRUE(t.grad().defined());

  // Eval after convert: every conv unit runs the exact integer arithmetic, none falls back.
  net.eval();
  quant::convert(*q);
  {
    NoGradGuard ng;
    net.forward(randn({4, 2, 12}, gen));
  }
  const auto n = q->unit_counts();
  EXPECT_EQ(n.exact, 3);  // conv1, conv2, fc
  EXPECT_EQ(n.float_fallback, 0);
}
