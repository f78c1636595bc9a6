// Unstructured pruning: magnitude masks per layer and global, 2:4 patterns, the schedules (Zhu &
// Gupta's polynomial, seed 003's iterative rounds), and masks that survive optimizer steps.
#include <gtest/gtest.h>

#include <cmath>

#include "autograd/engine.h"
#include "autograd/functional.h"
#include "autograd/nn/nn.h"
#include "autograd/optim/sgd.h"
#include "compress/unstructured.h"
#include "framework/grad_mode.h"
#include "framework/random.h"
#include "models/factory.h"

using namespace finch;
using namespace finch::compress;

namespace {

int64_t zeros_in(const Tensor& t) {
  int64_t n = 0;
  for (float v : t.to_vector<float>()) n += v == 0.0f;
  return n;
}

}  // namespace

TEST(Magnitude, PerLayerRemovesTheSmallest) {
  nn::Linear l(4, 2, false);
  NoGradGuard ng;
  l.weight.copy_(from_vector<float>({0.1f, -5, 0.3f, 2, -0.2f, 4, 1, -0.05f}, {2, 4}));
  MaskSet m = prunable_weights(l);
  ASSERT_EQ(m.entries.size(), 1u);
  magnitude_prune(m, 0.5);
  m.apply();
  EXPECT_EQ(l.weight.to_vector<float>(), (std::vector<float>{0, -5, 0, 2, 0, 4, 1, 0}));
  EXPECT_DOUBLE_EQ(m.sparsity(), 0.5);
  // Masks only grow: at 0.25 the pruned weights (now zero) still go first.
  magnitude_prune(m, 0.25);
  EXPECT_EQ(m.pruned(), 2);
  EXPECT_THROW(magnitude_prune(m, 1.0), Error);
  EXPECT_THROW(magnitude_prune(m, -0.1), Error);
}

TEST(Magnitude, GlobalRanksAcrossLayers) {
  nn::Sequential s({std::make_shared<nn::Linear>(2, 2, false), std::make_shared<nn::Linear>(2, 2, false)});
  auto* a = dynamic_cast<nn::Linear*>(s.named_children()[0].second.get());
  auto* b = dynamic_cast<nn::Linear*>(s.named_children()[1].second.get());
  NoGradGuard ng;
  a->weight.copy_(from_vector<float>({0.1f, 0.2f, 0.3f, 0.4f}, {2, 2}));
  b->weight.copy_(from_vector<float>({10, 20, 30, 40}, {2, 2}));
  MaskSet m = prunable_weights(s);
  magnitude_prune(m, 0.5, /*global=*/true);
  m.apply();
  EXPECT_EQ(zeros_in(a->weight), 4);
  EXPECT_EQ(zeros_in(b->weight), 0);
  MaskSet again = masks_from_zeros(s);
  EXPECT_EQ(again.pruned(), 4);
}

TEST(NM, TwoOfFourInEveryRun) {
  Generator gen(1);
  nn::Conv2d c(4, 3, 3, 1, 1, 1, 1, false, &gen);  // rows of 36 = 9 runs of 4
  nn::Conv2d stem(1, 4, 3, 1, 1, 1, 1, false, &gen);  // rows of 9: left dense
  MaskSet m = prunable_weights(c);
  MaskSet ms = prunable_weights(stem);
  m.entries.push_back(ms.entries[0]);
  std::vector<std::string> skipped;
  nm_prune(m, 2, 4, &skipped);
  m.apply();
  ASSERT_EQ(skipped.size(), 1u);
  const auto w = c.weight.to_vector<float>();
  for (size_t i = 0; i < w.size(); i += 4) {
    int nz = 0;
    for (size_t j = 0; j < 4; ++j) nz += w[i + j] != 0.0f;
    EXPECT_EQ(nz, 2) << i;
  }
  EXPECT_EQ(zeros_in(stem.weight), 0);
  EXPECT_THROW(nm_prune(m, 4, 4), Error);
  EXPECT_THROW(nm_prune(m, 0, 4), Error);
}

TEST(Schedules, PolynomialAndIterative) {
  EXPECT_DOUBLE_EQ(polynomial_sparsity(0, 10, 110, 0.0, 0.9), 0.0);
  EXPECT_DOUBLE_EQ(polynomial_sparsity(10, 10, 110, 0.0, 0.9), 0.0);
  EXPECT_NEAR(polynomial_sparsity(60, 10, 110, 0.0, 0.9), 0.9 - 0.9 * 0.125, 1e-12);  // (1 − ½)³
  EXPECT_DOUBLE_EQ(polynomial_sparsity(110, 10, 110, 0.0, 0.9), 0.9);
  EXPECT_DOUBLE_EQ(polynomial_sparsity(500, 10, 110, 0.0, 0.9), 0.9);
  EXPECT_THROW(polynomial_sparsity(0, 10, 5, 0.0, 0.9), Error);
  EXPECT_NEAR(iterative_sparsity(1, 2, 0.75), 0.5, 1e-12);  // p = ½ of what remains per round
  EXPECT_NEAR(iterative_sparsity(2, 2, 0.75), 0.75, 1e-12);
  EXPECT_THROW(iterative_sparsity(3, 2, 0.75), Error);
  EXPECT_THROW(iterative_sparsity(1, 0, 0.75), Error);
}

TEST(Gradual, MasksSurviveOptimizerStepsAndReachTheTarget) {
  Generator gen(2);
  models::CreateOptions co;
  co.gen = &gen;
  auto model = models::create("resnet20", 1, 10, co);
  MaskSet masks = prunable_weights(*model);
  GradualPruner p;
  p.masks = &masks;
  p.begin = 0;
  p.end = 5;
  p.frequency = 2;
  p.final_sparsity = 0.9;
  optim::SGDOptions so;
  so.lr = 0.1;
  so.momentum = 0.9;
  optim::SGD opt(model->parameters(), so);
  const Tensor x = randn({4, 1, 8, 8}, gen);
  const Tensor y = from_vector<int64_t>({0, 1, 2, 3}, {4});
  for (int64_t step = 0; step < 8; ++step) {
    opt.zero_grad();
    backward(cross_entropy(model->forward(x), y));
    opt.step();
    p.after_step(step);
    // Pruning steps: 0, 2, 4 (every 2) and 5 (the end).
    const int64_t last = step >= 5 ? 5 : step - step % 2;
    const double want = polynomial_sparsity(last, 0, 5, 0.0, 0.9);
    EXPECT_NEAR(masks.sparsity(), want, 0.01) << step;
    int64_t zeros = 0;
    for (const auto& e : masks.entries) zeros += zeros_in(e.weight);
    EXPECT_GE(zeros, masks.pruned()) << "a masked weight came back after step " << step;
  }
  EXPECT_NEAR(masks.sparsity(), 0.9, 0.001);
}
