// The one BatchNorm fold (compile/bn_fold.h): its arithmetic (f64, one rounding to f32), and that
// both program kinds store exactly its output: the fp32 program's folded conv and the int8
// program's weight codes and int32 bias, which are the simulated model's deployed weights.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "autograd/engine.h"
#include "autograd/functional.h"
#include "autograd/nn/nn.h"
#include "compile/bn_fold.h"
#include "compile/capture.h"
#include "compile/passes.h"
#include "framework/grad_mode.h"
#include "framework/random.h"
#include "kernels/quantize.h"
#include "kernels/requant.h"
#include "ops/elementwise.h"
#include "quant/prepare.h"
#include "quant/qconfig.h"
#include "runtime/executor.h"
#include "tests/compile/graph_test_util.h"

namespace finch::compile {
namespace {

using test::count_op;

// Bit patterns equal (a -0 and a +0 differ, as do two NaNs with different payloads).
int64_t differing_bits(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  EXPECT_EQ(a.dtype(), DType::f32);
  EXPECT_EQ(b.dtype(), DType::f32);
  const Tensor x = a.contiguous(), y = b.contiguous();
  int64_t n = 0;
  for (int64_t i = 0; i < x.numel(); ++i) n += std::memcmp(x.data<float>() + i, y.data<float>() + i, 4) != 0;
  return n;
}

struct ConvBnRelu : nn::Module {
  std::shared_ptr<nn::Conv2d> conv = register_module("conv", std::make_shared<nn::Conv2d>(3, 8, 3, 1, 1, 1, 1, true));
  std::shared_ptr<nn::BatchNorm2d> bn = register_module("bn", std::make_shared<nn::BatchNorm2d>(8));
  std::shared_ptr<nn::ReLU> relu = register_module("relu", std::make_shared<nn::ReLU>());
  Tensor forward_impl(const Tensor& x) override { return (*relu)((*bn)((*conv)(x))); }
};

// BN statistics far from the identity, with a small variance so that γ/σ is large and the f32
// and f64 folds are likely to differ in the last bit somewhere.
void randomize(ConvBnRelu& m, Generator& gen) {
  NoGradGuard ng;
  m.conv->weight.copy_(randn(m.conv->weight.shape(), gen));
  m.conv->bias.copy_(randn({8}, gen));
  m.bn->running_mean.copy_(randn({8}, gen));
  m.bn->running_var.copy_(ops::add_scalar(ops::mul_scalar(rand({8}, gen), 0.3), 1e-3));
  m.bn->weight.copy_(randn({8}, gen));
  m.bn->bias.copy_(randn({8}, gen));
}

FoldedConv fold_of(ConvBnRelu& m) {
  return fold_conv_bn(m.conv->weight, m.conv->bias, m.bn->weight, m.bn->bias, m.bn->running_mean, m.bn->running_var,
                      m.bn->eps);
}

TEST(BnFold, ComputesInDoubleAndRoundsOnce) {
  Generator gen(11);
  const Tensor w = randn({4, 2, 3, 3}, gen), b = randn({4}, gen), gamma = randn({4}, gen), beta = randn({4}, gen);
  const Tensor mean = randn({4}, gen), var = ops::add_scalar(rand({4}, gen), 0.01);
  const double eps = 1e-5;
  const FoldedConv f = fold_conv_bn(w, b, gamma, beta, mean, var, eps);
  ASSERT_EQ(f.weight.shape(), w.shape());
  ASSERT_EQ(f.bias.shape(), (Shape{4}));
  const auto W = w.to_vector<float>(), B = b.to_vector<float>(), G = gamma.to_vector<float>(),
             Be = beta.to_vector<float>(), M = mean.to_vector<float>(), V = var.to_vector<float>();
  const auto FW = f.weight.to_vector<float>(), FB = f.bias.to_vector<float>();
  for (size_t c = 0; c < 4; ++c) {
    const double s = double(G[c]) / std::sqrt(double(V[c]) + eps);
    for (size_t k = 0; k < 18; ++k) EXPECT_EQ(FW[c * 18 + k], float(double(W[c * 18 + k]) * s)) << c << " " << k;
    EXPECT_EQ(FB[c], float(double(Be[c]) + (double(B[c]) - double(M[c])) * s)) << c;
  }
  // Absent conv bias, γ and β read as 0, 1 and 0.
  const FoldedConv plain = fold_conv_bn(w, Tensor(), Tensor(), Tensor(), mean, var, eps);
  const auto PB = plain.bias.to_vector<float>();
  for (size_t c = 0; c < 4; ++c) EXPECT_EQ(PB[c], float(-double(M[c]) / std::sqrt(double(V[c]) + eps)));
  EXPECT_THROW(fold_conv_bn(w, b, gamma, beta, randn({3}, gen), var, eps), Error);
  EXPECT_THROW(fold_conv_bn(w, b, gamma, beta, Tensor(), var, eps), Error);
}

TEST(BnFold, Fp32ProgramStoresTheOneFold) {
  Generator gen(5);
  ConvBnRelu m;
  randomize(m, gen);
  m.eval();
  runtime::Graph g = capture_graph(m, randn({1, 3, 6, 6}, gen));
  ASSERT_EQ(fold_batch_norm(g), 1);
  remove_dead(g);
  ASSERT_EQ(count_op(g, "batch_norm"), 0);
  const runtime::Node& conv = g.nodes[0];
  ASSERT_EQ(conv.op, "conv2d");
  const FoldedConv f = fold_of(m);
  EXPECT_EQ(differing_bits(g.values[size_t(conv.inputs[1])].data, f.weight), 0);
  EXPECT_EQ(differing_bits(g.values[size_t(conv.inputs[2])].data, f.bias), 0);
}

TEST(BnFold, Int8ProgramAndSimulationStoreTheOneFold) {
  Generator gen(6);
  ConvBnRelu m;
  randomize(m, gen);
  m.eval();
  const Tensor example = randn({1, 3, 6, 6}, gen);
  quant::PrepareOptions po;
  po.qconfig = quant::qconfig_preset("int8");
  auto q = quant::prepare(m, example, po, false);
  {
    NoGradGuard ng;
    for (int i = 0; i < 3; ++i) m.forward(randn({4, 3, 6, 6}, gen));  // calibration
  }
  quant::convert(*q);
  q->enable_observers(false);
  const FoldedConv f = fold_of(m);

  // The simulation's deployed weights are the one fold's output.
  const auto dw = q->deployed_weights();
  ASSERT_EQ(dw.size(), 1u);
  EXPECT_EQ(dw[0].folded_bn, "bn");
  EXPECT_EQ(differing_bits(dw[0].weight, f.weight), 0);
  EXPECT_EQ(differing_bits(dw[0].bias, f.bias), 0);
  // Training with BN frozen: the same values, with gradients reaching the conv and BN parameters.
  {
    m.train();
    q->freeze_bn_stats();
    backward(sum(m.forward(example)));
    EXPECT_TRUE(m.conv->weight.grad().defined());
    EXPECT_TRUE(m.bn->weight.grad().defined());
    m.eval();
  }

  // The int8 program: weight codes and int32 bias quantized from the one fold.
  runtime::Graph g = capture_graph(m, example);
  ASSERT_GT(lower_quantized(g), 0);
  ASSERT_EQ(count_op(g, "qconv2d"), 1);
  const runtime::Node* conv = nullptr;
  for (const runtime::Node& n : g.nodes)
    if (n.op == "qconv2d") conv = &n;
  const runtime::Value& wv = g.values[size_t(conv->inputs[1])];
  const runtime::Value& xv = g.values[size_t(conv->inputs[0])];
  ASSERT_TRUE(wv.quant && xv.quant);
  quant::QParams wq;
  wq.scale = wv.quant->scale, wq.zero_point = wv.quant->zero_point, wq.axis = wv.quant->axis;
  wq.qmin = wv.quant->qmin, wq.qmax = wv.quant->qmax;
  EXPECT_EQ(test::differing(wv.data, quant::quantize(f.weight, wq)), 0);
  const std::vector<float> sw = wq.per_channel() ? wq.scale : std::vector<float>(8, wq.scale[0]);
  const auto bq = quant::quantize_bias(f.bias.to_vector<float>(), xv.quant->scale[0], sw);
  EXPECT_EQ(g.values[size_t(conv->inputs[2])].data.to_vector<int32_t>(), bq);
}

}  // namespace
}  // namespace finch::compile
