// Each IR pass on its own (compile/passes.h): BN folding, activation fusion, constant folding and
// dead-node removal, on captured layers and on graphs built by hand, checking both the rewritten
// structure and that the program computes what it computed before.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "autograd/nn/nn.h"
#include "framework/grad_mode.h"
#include "framework/random.h"
#include "ops/activation.h"
#include "ops/elementwise.h"
#include "compile/capture.h"
#include "compile/passes.h"
#include "runtime/executor.h"
#include "tests/compile/graph_test_util.h"

namespace finch::compile {
namespace {

using runtime::Graph;
using runtime::Node;
using runtime::Value;
using test::count_op;
using test::max_abs_diff;



int32_t add_input(Graph& g, const std::string& name, Shape s) {
  Value v;
  v.name = name;
  v.shape = std::move(s);
  const int32_t i = g.add_value(std::move(v));
  g.inputs.push_back(i);
  return i;
}
int32_t add_const(Graph& g, const std::string& name, Tensor t) {
  Value v;
  v.name = name;
  v.shape = t.shape();
  v.dtype = t.dtype();
  v.data = t;
  return g.add_value(std::move(v));
}
int32_t add_node(Graph& g, const std::string& op, std::vector<int32_t> in, Shape out_shape,
                 nlohmann::json attrs = nlohmann::json::object()) {
  Value v;
  v.name = op + std::to_string(g.nodes.size()) + ".out";
  v.shape = std::move(out_shape);
  const int32_t o = g.add_value(std::move(v));
  g.nodes.push_back({op, op + std::to_string(g.nodes.size()), std::move(in), {o}, std::move(attrs)});
  return o;
}

// conv → BN (eval, non-trivial statistics) → ReLU, captured from real modules.
struct ConvBnRelu : nn::Module {
  std::shared_ptr<nn::Conv2d> conv = register_module("conv", std::make_shared<nn::Conv2d>(3, 8, 3, 1, 1, 1, 1, false));
  std::shared_ptr<nn::BatchNorm2d> bn = register_module("bn", std::make_shared<nn::BatchNorm2d>(8));
  std::shared_ptr<nn::ReLU> relu = register_module("relu", std::make_shared<nn::ReLU>());
  Tensor forward_impl(const Tensor& x) override { return (*relu)((*bn)((*conv)(x))); }
};

TEST(Passes, FoldBatchNormKeepsTheOutputAndDropsTheNode) {
  Generator gen(3);
  ConvBnRelu m;
  NoGradGuard ng;
  m.bn->running_mean.copy_(randn({8}, gen));
  m.bn->running_var.copy_(ops::add_scalar(rand({8}, gen), 0.5));
  m.bn->weight.copy_(randn({8}, gen));
  m.bn->bias.copy_(randn({8}, gen));
  m.eval();
  const Tensor x = randn({2, 3, 6, 6}, gen);
  Graph g = capture_graph(m, x.narrow(0, 0, 1).contiguous());
  ASSERT_EQ(count_op(g, "batch_norm"), 1);
  const Tensor before = runtime::Program(g).run(x);
  EXPECT_EQ(fold_batch_norm(g), 1);
  remove_dead(g);
  EXPECT_EQ(count_op(g, "batch_norm"), 0);
  EXPECT_EQ(count_op(g, "conv2d"), 1);
  const Tensor after = runtime::Program(g).run(x);
  EXPECT_LT(max_abs_diff(before, after), 1e-5f);
  // The folded conv gained a bias (the BN shift).
  const Node& conv = g.nodes[0];
  ASSERT_EQ(conv.op, "conv2d");
  ASSERT_EQ(conv.inputs.size(), 3u);
  EXPECT_TRUE(g.values[size_t(conv.inputs[2])].is_constant());
}

TEST(Passes, FuseActivationsOnlyWhereTheActivationIsTheOnlyReader) {
  Graph g;
  const int32_t x = add_input(g, "x", {1, 4});
  const int32_t y = add_input(g, "y", {1, 4});
  const int32_t s = add_node(g, "add", {x, y}, {1, 4});
  const int32_t r = add_node(g, "relu", {s}, {1, 4});
  // A second add whose result is read twice: fusing would change the other reader's input.
  const int32_t s2 = add_node(g, "add", {r, y}, {1, 4});
  const int32_t r2 = add_node(g, "relu6", {s2}, {1, 4});
  const int32_t o = add_node(g, "add", {r2, s2}, {1, 4});
  g.outputs = {o};
  Generator gen(5);
  const Tensor a = ops::mul_scalar(randn({3, 4}, gen), 4.0), b = ops::mul_scalar(randn({3, 4}, gen), 4.0);
  const Tensor before = runtime::Program(g).run(std::vector<Tensor>{a, b})[0];
  EXPECT_EQ(fuse_activations(g), 1);
  remove_dead(g);
  EXPECT_EQ(count_op(g, "relu"), 0);
  EXPECT_EQ(count_op(g, "relu6"), 1);
  EXPECT_EQ(g.nodes[0].attrs.value("act", ""), "relu");
  const Tensor after = runtime::Program(g).run(std::vector<Tensor>{a, b})[0];
  EXPECT_EQ(max_abs_diff(before, after), 0.0f);
}

TEST(Passes, FoldConstantsEvaluatesConstantSubgraphsExactly) {
  Generator gen(7);
  Graph g;
  const int32_t x = add_input(g, "x", {1, 6});
  const Tensor wt = randn({2, 3}, gen), ct = randn({6}, gen);
  const int32_t w = add_const(g, "w", wt);
  const int32_t c = add_const(g, "c", ct);
  // reshape(w) + c is constant; x + (that) is not.
  const int32_t rw = add_node(g, "reshape", {w}, {6}, {{"shape", {6}}});
  const int32_t k = add_node(g, "add", {rw, c}, {6});
  const int32_t o = add_node(g, "mul", {x, k}, {1, 6});
  g.outputs = {o};
  const Tensor in = randn({4, 6}, gen);
  const Tensor before = runtime::Program(g).run(in);
  EXPECT_EQ(fold_constants(g), 2);
  ASSERT_EQ(g.nodes.size(), 1u);
  EXPECT_EQ(g.nodes[0].op, "mul");
  const Value& folded = g.values[size_t(g.nodes[0].inputs[1])];
  ASSERT_TRUE(folded.is_constant());
  EXPECT_EQ(folded.shape, (Shape{6}));
  EXPECT_EQ(max_abs_diff(folded.data, ops::add(wt.reshape({6}), ct)), 0.0f);
  EXPECT_EQ(g.values.size(), 3u);  // x, the folded constant, the output: w and c are gone
  const Tensor after = runtime::Program(g).run(in);
  EXPECT_EQ(max_abs_diff(before, after), 0.0f);  // the same op implementation computed it
}

TEST(Passes, FoldConstantsNeverFoldsAGraphOutput) {
  Generator gen(9);
  Graph g;
  add_input(g, "x", {1, 4});
  const int32_t w = add_const(g, "w", randn({2, 2}, gen));
  const int32_t o = add_node(g, "reshape", {w}, {4}, {{"shape", {4}}});
  g.outputs = {o};
  EXPECT_EQ(fold_constants(g), 0);
  EXPECT_EQ(g.nodes.size(), 1u);
}

TEST(Passes, RemoveDeadDropsUnreadBranchesAndRenumbers) {
  Graph g;
  const int32_t x = add_input(g, "x", {1, 4});
  const int32_t unused = add_node(g, "sigmoid", {x}, {1, 4});
  add_node(g, "tanh", {unused}, {1, 4});
  const int32_t kept = add_node(g, "relu", {x}, {1, 4});
  g.outputs = {kept};
  EXPECT_EQ(remove_dead(g), 2);
  ASSERT_EQ(g.nodes.size(), 1u);
  EXPECT_EQ(g.nodes[0].op, "relu");
  EXPECT_EQ(g.values.size(), 2u);
  EXPECT_EQ(g.inputs, (std::vector<int32_t>{0}));
  EXPECT_EQ(g.outputs, (std::vector<int32_t>{1}));
  EXPECT_EQ(g.nodes[0].inputs, (std::vector<int32_t>{0}));
  Generator gen(1);
  const Tensor in = randn({2, 4}, gen);
  EXPECT_EQ(max_abs_diff(runtime::Program(g).run(in), ops::relu(in)), 0.0f);
}

}  // namespace
}  // namespace finch::compile
