// fit() on padded variable-length regression batches: the loss gets Batch::targets, a
// length-aware model sees each sample's lengths (so padding changes nothing: batch 1 and batch 8
// evaluate alike), accuracy is NaN, and the best epoch is the lowest test loss.
#include <gtest/gtest.h>

#include <cmath>

#include "autograd/functional.h"
#include "autograd/nn/nn.h"
#include "autograd/nn/sequence.h"
#include "data/series_dataset.h"
#include "framework/random.h"
#include "train/evaluate.h"
#include "train/loop.h"
#include "train/losses.h"

using namespace finch;
using namespace finch::train;

namespace {

// y = w · (mean of the valid steps of x [B, 1, T]) + b. forward() averages every step, padding
// included, so only forward_with_lengths gets padded batches right.
class MaskedMean : public nn::Module, public nn::LengthAware {
 public:
  MaskedMean() {
    w_ = register_parameter("w", from_vector<float>({0.1f}, {1}));
    b_ = register_parameter("b", from_vector<float>({0.0f}, {1}));
  }
  Tensor forward_impl(const Tensor& x) override { return affine(mean(x, {1, 2}, false)); }
  Tensor forward_with_lengths(const Tensor& x, const Tensor& lengths) override {
    const int64_t B = x.size(0), T = x.size(2);
    const auto n = lengths.to_vector<int64_t>();
    std::vector<float> mask(size_t(B * T), 0.0f);
    for (int64_t i = 0; i < B; ++i)
      for (int64_t t = 0; t < n[size_t(i)]; ++t) mask[size_t(i * T + t)] = 1.0f / float(n[size_t(i)]);
    return affine(sum(mul(reshape(x, {B, T}), from_vector<float>(mask, {B, T})), {1}, false));
  }

 private:
  Tensor affine(const Tensor& m) { return add(mul(reshape(m, {m.size(0), 1}), w_), b_); }
  Tensor w_, b_;
};

// Series of lengths 3..12 with value levels; target = 2 · level + 1 (the mean of the valid steps).
std::shared_ptr<data::SeriesDataset> series(int64_t n, uint64_t seed) {
  Generator g(seed);
  data::SeriesSet s;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t T = 3 + int64_t(g.below(10));
    const float level = float(g.below(100)) / 50.0f - 1.0f;
    s.series.push_back(full({1, T}, level, DType::f32));
    s.labels.push_back(0);
    s.targets.push_back(from_vector<float>({2 * level + 1}, {1}));
  }
  return std::make_shared<data::SeriesDataset>(std::move(s));
}

}  // namespace

TEST(SeriesFit, PaddedRegressionBatchesTrainThroughLengths) {
  auto train_set = series(64, 1), test_set = series(24, 2);
  MaskedMean model;
  OptimizerConfig oc;
  oc.name = "adam";
  oc.lr = 0.05;
  auto opt = make_optimizer(oc, model);
  data::DataLoaderOptions lo;
  lo.batch_size = 8;
  lo.seed = 3;
  data::DataLoader loader(train_set, lo);
  ScheduleConfig sc;
  sc.kind = "constant";
  sc.lr = 0.05;
  LoopConfig lc;
  lc.epochs = 40;
  lc.quiet = true;
  TrainState state;
  EvalConfig ec;
  ec.batch_size = 8;
  ec.target_std = {3.0};
  const EvalResult r = fit(model, *opt, loader, regression_loss(), sc, lc, state,
                           [&](nn::Module& m) { return evaluate(m, test_set, ec); });
  EXPECT_TRUE(r.regression);
  EXPECT_LT(r.mse, 1e-3);  // w → 2, b → 1 exactly representable: the fit is near perfect
  EXPECT_NEAR(r.mse_original, 9 * r.mse, 1e-9);
  EXPECT_TRUE(state.history[0]["train_acc"].is_null() || std::isnan(state.history[0]["train_acc"].get<double>()));
  // Padding changes nothing: every sample alone gives the batched result.
  EvalConfig one = ec;
  one.batch_size = 1;
  EXPECT_NEAR(evaluate(model, test_set, one).mse, r.mse, 1e-9);
  // The first epoch's loss is far above the last's, and the best epoch is the lowest test loss.
  EXPECT_GT(state.history[0]["test_loss"].get<double>(), 10 * r.loss);
  EXPECT_EQ(state.best_test_accuracy, 0.0);  // no accuracy for regression
}
