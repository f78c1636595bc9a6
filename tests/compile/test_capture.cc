// Graph capture, the float passes and the runtime on the model zoo: a captured, BN-folded,
// activation-fused fp32 program computes what the model computes (up to float rounding of the
// fold), for any batch size; capture refuses ops it cannot record with a sentence.
#include <gtest/gtest.h>

#include <cmath>

#include "autograd/functional.h"
#include "autograd/nn/nn.h"
#include "framework/grad_mode.h"
#include "framework/random.h"
#include "models/factory.h"
#include "compile/capture.h"
#include "compile/passes.h"
#include "runtime/executor.h"
#include "tests/compile/graph_test_util.h"

using namespace finch;

namespace {

using test::count_op;
using test::max_abs_diff;

// Random BN statistics and affine parameters, so that folding has something to fold.
void randomize_batch_norms(nn::Module& m, Generator& g) {
  NoGradGuard ng;
  for (auto& [name, t] : m.named_buffers()) {
    if (name.size() > 12 && name.compare(name.size() - 12, 12, "running_mean") == 0)
      t.copy_(mul(randn(t.shape(), g), 0.1));
    if (name.size() > 11 && name.compare(name.size() - 11, 11, "running_var") == 0)
      t.copy_(add(mul(rand(t.shape(), g), 0.5), 0.75));
  }
  for (auto& [name, t] : m.named_parameters())
    if (name.find("bn") != std::string::npos || t.dim() == 1) t.copy_(add(mul(randn(t.shape(), g), 0.1), 0.5));
}



}  // namespace

class CaptureZoo : public ::testing::TestWithParam<std::string> {};

TEST_P(CaptureZoo, FoldedFusedProgramMatchesTheModel) {
  Generator gen(5);
  models::CreateOptions co;
  co.gen = &gen;
  auto model = models::create(GetParam(), 1, 10, co);
  randomize_batch_norms(*model, gen);
  model->eval();
  runtime::Graph g = compile::capture_graph(*model, randn({1, 1, 28, 28}, gen));
  const int bns = count_op(g, "batch_norm");
  const int folded = compile::fold_batch_norm(g);
  EXPECT_EQ(folded, bns) << "every conv+BN pair of the zoo folds";
  compile::fuse_activations(g);
  compile::remove_dead(g);
  EXPECT_EQ(count_op(g, "batch_norm"), 0);
  EXPECT_EQ(count_op(g, "relu") + count_op(g, "relu6"), 0) << "activations after conv/add fuse";
  runtime::Program p(g, GetParam());
  for (int64_t n : {1, 3}) {
    const Tensor x = randn({n, 1, 28, 28}, gen);
    Tensor want;
    {
      NoGradGuard ng;
      want = model->forward(x);
    }
    const Tensor got = p.run(x);
    ASSERT_EQ(got.shape(), want.shape());
    EXPECT_LT(max_abs_diff(got, want), 2e-3f) << GetParam() << " batch " << n;
  }
  EXPECT_GT(p.memory().arena_bytes, 0);
  EXPECT_LT(p.memory().arena_bytes, p.memory().total_bytes) << "buffers are reused";
}

INSTANTIATE_TEST_SUITE_P(Models, CaptureZoo, ::testing::Values("lenet5", "resnet20", "mobilenetv2", "mobilenet_v1"));

namespace {
// A model whose forward uses an op a program cannot hold (exp).
struct ExpNet : nn::Module {
  std::shared_ptr<nn::Linear> fc;
  ExpNet() { fc = register_module("fc", std::make_shared<nn::Linear>(4, 3)); }
  Tensor forward_impl(const Tensor& x) override { return fc->forward(finch::exp(x)); }
};
}  // namespace

TEST(Capture, UnknownOpIsRefusedWithASentence) {
  ExpNet m;
  try {
    compile::capture_graph(m, ones({1, 4}));
    FAIL() << "capture accepted an op it cannot record";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("graph capture does not record"), std::string::npos) << e.what();
  }
}

TEST(Capture, ParametersBecomeNamedConstants) {
  Generator gen(1);
  models::CreateOptions co;
  co.gen = &gen;
  auto model = models::create("lenet5", 1, 10, co);
  const runtime::Graph g = compile::capture_graph(*model, randn({1, 1, 28, 28}, gen));
  bool found = false;
  for (const auto& v : g.values) found = found || (v.is_constant() && v.name == "conv1.weight");
  EXPECT_TRUE(found);
  ASSERT_EQ(g.inputs.size(), 1u);
  EXPECT_EQ(g.values[size_t(g.outputs[0])].name, "output");
}
