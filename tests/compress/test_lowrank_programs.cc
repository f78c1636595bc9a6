// A factorized MobileNetV2 (CIFAR variant, one input channel) through the rest of finch: it
// trains (every factor gets a gradient), compiles to an fp32 program that equals the model, and
// lowers to an int8 program that equals the simulated (prepared, converted) model bit for bit.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "autograd/engine.h"
#include "autograd/functional.h"
#include "autograd/nn/nn.h"
#include "compile/capture.h"
#include "compile/passes.h"
#include "compress/lowrank.h"
#include "framework/grad_mode.h"
#include "framework/random.h"
#include "models/factory.h"
#include "quant/prepare.h"
#include "quant/qconfig.h"
#include "runtime/executor.h"
#include "tests/compile/graph_test_util.h"

namespace finch::compress {
namespace {

using test::count_op;
using test::differing;
using test::max_abs_diff;

// A rank-halved MobileNetV2 with BN statistics that are not the identity.
nn::ModulePtr halved_mobilenet(Generator& gen, LowRankResult* res) {
  models::CreateOptions co;
  co.cifar = true;
  co.gen = &gen;
  nn::ModulePtr m = models::create("mobilenetv2", 1, 10, co);
  {
    NoGradGuard ng;
    m->train();
    for (int i = 0; i < 2; ++i) m->forward(randn({4, 1, 16, 16}, gen));
  }
  m->eval();
  LowRankOptions o;
  o.rank_fraction = 0.5;
  *res = factorize(*m, o);
  return m;
}

int conv_count(nn::Module& m) {
  int n = 0;
  for (auto& [path, mod] : m.named_modules()) n += dynamic_cast<nn::Conv2d*>(mod) != nullptr;
  return n;
}

TEST(LowRankMobileNetV2, HalvedRankTrainsAndShrinks) {
  Generator gen(11);
  LowRankResult res;
  nn::ModulePtr m = halved_mobilenet(gen, &res);
  EXPECT_LT(res.params_after, res.params_before);
  EXPECT_EQ(res.params_after, m->num_parameters());
  int factorized = 0, depthwise = 0;
  for (const auto& d : res.layers) {
    factorized += d.rank > 0;
    depthwise += d.skipped.find("depthwise") != std::string::npos;
    if (d.rank > 0) {
      EXPECT_EQ(d.rank, std::max<int64_t>(1, std::llround(0.5 * double(d.full_rank)))) << d.path;
    }
  }
  EXPECT_EQ(depthwise, 17) << "one depthwise conv per inverted residual block";
  EXPECT_GE(factorized, 30) << "the 1×1 convs, the stem and the classifier";
  m->train();
  backward(sum(m->forward(randn({2, 1, 16, 16}, gen))));
  for (auto& [name, p] : m->named_parameters()) ASSERT_TRUE(p.grad().defined()) << name;
}

TEST(LowRankMobileNetV2, Fp32ProgramEqualsTheFactorizedModel) {
  Generator gen(12);
  LowRankResult res;
  nn::ModulePtr m = halved_mobilenet(gen, &res);
  runtime::Graph g = compile::capture_graph(*m, randn({1, 1, 16, 16}, gen));
  EXPECT_EQ(count_op(g, "conv2d"), conv_count(*m));
  compile::fold_batch_norm(g);
  EXPECT_EQ(count_op(g, "batch_norm"), 0) << "each BN follows the second (1×1) conv of a factorized pair";
  compile::fuse_activations(g);
  compile::fold_constants(g);
  compile::remove_dead(g);
  runtime::Program p(g, "mobilenetv2_lowrank");
  const Tensor x = randn({2, 1, 16, 16}, gen);
  Tensor want;
  {
    NoGradGuard ng;
    want = m->forward(x);
  }
  const Tensor got = p.run(x);
  ASSERT_EQ(got.shape(), want.shape());
  float scale = 0;
  for (float v : want.contiguous().to_vector<float>()) scale = std::max(scale, std::fabs(v));
  EXPECT_LE(max_abs_diff(got, want), 1e-4f * std::max(1.0f, scale));
}

TEST(LowRankMobileNetV2, Int8ProgramEqualsTheSimulatedModel) {
  Generator gen(13);
  LowRankResult res;
  nn::ModulePtr m = halved_mobilenet(gen, &res);
  quant::PrepareOptions po;
  po.qconfig = quant::qconfig_preset("int8");
  const Tensor example = randn({1, 1, 16, 16}, gen);
  auto q = quant::prepare(*m, example, po, false);
  {
    NoGradGuard ng;
    for (int i = 0; i < 3; ++i) m->forward(randn({8, 1, 16, 16}, gen));
  }
  quant::convert(*q);
  q->enable_observers(false);
  runtime::Graph g = compile::capture_graph(*m, example);
  EXPECT_GT(compile::lower_quantized(g), 0);
  compile::fold_constants(g);
  compile::remove_dead(g);
  EXPECT_EQ(count_op(g, "fake_quant"), 0);
  EXPECT_EQ(count_op(g, "conv2d"), 0) << "no factor is left in float";
  EXPECT_EQ(count_op(g, "qconv2d"), conv_count(*m));
  runtime::Program p(g, "mobilenetv2_lowrank_int8");
  const Tensor x = randn({3, 1, 16, 16}, gen);
  Tensor want;
  {
    NoGradGuard ng;
    want = m->forward(x);
  }
  EXPECT_EQ(differing(p.run(x), want), 0);
  EXPECT_EQ(q->unit_counts().float_fallback, 0);
}

}  // namespace
}  // namespace finch::compress
