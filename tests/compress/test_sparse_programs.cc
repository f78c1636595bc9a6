// Pruned models run on the sparse kernels (runtime/sparse_choice.h): a ResNet-20 pruned to 90 %
// unstructured sparsity (magnitude, per layer) compiles to fp32 and int8 programs whose
// groups-1 convs and Linear run sparse with ProgramOptions::sparse = always, and give what the
// dense kernels give: int8 every value bit for bit, fp32 within float rounding. With the measured
// table the unpruned model keeps every node dense, and `dense` never runs a sparse kernel.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "autograd/nn/nn.h"
#include "compile/capture.h"
#include "compile/passes.h"
#include "compress/unstructured.h"
#include "framework/grad_mode.h"
#include "framework/random.h"
#include "models/factory.h"
#include "quant/prepare.h"
#include "quant/qconfig.h"
#include "runtime/executor.h"
#include "tests/compile/graph_test_util.h"

namespace finch::compress {
namespace {

using runtime::Program;
using runtime::ProgramOptions;
using runtime::SparseKernels;
using test::count_op;

// ResNet-20 (CIFAR variant, one input channel) with trained-like BN statistics, pruned to
// `sparsity` of its conv/linear weights.
nn::ModulePtr pruned_resnet20(Generator& gen, double sparsity) {
  models::CreateOptions co;
  co.cifar = true;
  co.gen = &gen;
  nn::ModulePtr m = models::create("resnet20", 1, 10, co);
  {
    NoGradGuard ng;
    m->train();
    for (int i = 0; i < 2; ++i) m->forward(randn({4, 1, 16, 16}, gen));
  }
  m->eval();
  if (sparsity > 0) {
    MaskSet masks = prunable_weights(*m);
    magnitude_prune(masks, sparsity);
    masks.apply();
  }
  return m;
}

runtime::Graph fp32_graph(nn::Module& m, const Tensor& example) {
  runtime::Graph g = compile::capture_graph(m, example);
  compile::fold_batch_norm(g);
  compile::fuse_activations(g);
  compile::fold_constants(g);
  compile::remove_dead(g);
  return g;
}

int64_t sparse_count(const Program& p) {
  const auto& s = p.sparse_nodes();
  return std::count_if(s.begin(), s.end(), [](double v) { return v >= 0; });
}

Program load(const runtime::Graph& g, SparseKernels k) {
  ProgramOptions o;
  o.sparse = k;
  return Program(g, "resnet20", o);
}

TEST(SparsePrograms, PrunedResNet20Fp32RunsSparseWithinRounding) {
  Generator gen(31);
  nn::ModulePtr m = pruned_resnet20(gen, 0.9);
  const runtime::Graph g = fp32_graph(*m, randn({1, 1, 16, 16}, gen));
  Program sparse = load(g, SparseKernels::always), dense = load(g, SparseKernels::dense);
  EXPECT_EQ(sparse_count(sparse), count_op(g, "conv2d") + count_op(g, "linear")) << "ResNet-20 has no grouped conv";
  EXPECT_EQ(sparse_count(dense), 0);
  for (size_t i = 0; i < g.nodes.size(); ++i)
    if (sparse.sparse_nodes()[i] >= 0) {
      EXPECT_GE(sparse.sparse_nodes()[i], 0.89) << g.nodes[i].name;
    }
  const Tensor x = randn({2, 1, 16, 16}, gen);
  const auto a = sparse.run_all({x}), b = dense.run_all({x});
  for (size_t v = 0; v < a.size(); ++v) {
    if (!a[v].defined() || a[v].dtype() != DType::f32) continue;
    const auto got = a[v].contiguous().to_vector<float>(), want = b[v].contiguous().to_vector<float>();
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i)
      ASSERT_NEAR(got[i], want[i], 1e-4 + 1e-4 * std::fabs(want[i])) << g.values[v].name << " element " << i;
  }
}

TEST(SparsePrograms, PrunedResNet20Int8RunsSparseBitForBit) {
  Generator gen(32);
  nn::ModulePtr m = pruned_resnet20(gen, 0.9);
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
  ASSERT_GT(compile::lower_quantized(g), 0);
  compile::fold_constants(g);
  compile::remove_dead(g);
  Program sparse = load(g, SparseKernels::always), dense = load(g, SparseKernels::dense);
  EXPECT_EQ(sparse_count(sparse), count_op(g, "qconv2d") + count_op(g, "qlinear"));
  EXPECT_GT(sparse_count(sparse), 20);
  EXPECT_EQ(sparse_count(dense), 0);
  EXPECT_EQ(dense.fused_nodes(), 9) << "every residual add fuses into its dense conv";
  EXPECT_EQ(sparse.fused_nodes(), 0) << "a sparse conv has no fused add";
  const Tensor x = randn({3, 1, 16, 16}, gen);
  EXPECT_EQ(test::differing(sparse.run(x), dense.run(x)), 0);
  const auto a = sparse.run_all({x}), b = dense.run_all({x});
  for (size_t v = 0; v < a.size(); ++v) {
    if (!a[v].defined()) continue;
    EXPECT_EQ(test::differing(a[v], b[v]), 0) << g.values[v].name;
  }
}

TEST(SparsePrograms, TheMeasuredTableKeepsAnUnprunedModelDense) {
  Generator gen(33);
  nn::ModulePtr m = pruned_resnet20(gen, 0.0);
  const runtime::Graph g = fp32_graph(*m, randn({1, 1, 16, 16}, gen));
  EXPECT_EQ(sparse_count(load(g, SparseKernels::measured)), 0);
  for (bool int8 : {false, true})
    for (auto s : {runtime::SparseShape::conv1x1, runtime::SparseShape::conv, runtime::SparseShape::linear,
                   runtime::SparseShape::linear_row}) {
      // Every crossover is a measured fraction in (0, 1], or above 1 (never).
      EXPECT_GT(runtime::sparse_crossover(int8, s), 0.0) << runtime::sparse_shape_name(s);
      EXPECT_FALSE(runtime::choose_sparse(SparseKernels::measured, int8, s, 0.0));
      EXPECT_FALSE(runtime::choose_sparse(SparseKernels::dense, int8, s, 1.0));
      EXPECT_TRUE(runtime::choose_sparse(SparseKernels::always, int8, s, 0.0));
    }
  EXPECT_EQ(runtime::sparse_kernels_from_name("dense", "--sparse"), SparseKernels::dense);
  EXPECT_THROW(runtime::sparse_kernels_from_name("fast", "--sparse"), Error);
}

}  // namespace
}  // namespace finch::compress
