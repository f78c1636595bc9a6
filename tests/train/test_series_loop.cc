// The loop's sequence and regression paths: forward_batch picks forward_with_lengths for a
// length-aware model, the plateau schedule replays Keras's ReduceLROnPlateau
// (tests/golden/make_plateau_goldens.py) and is resumed exactly from the history.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

#include "autograd/functional.h"
#include "autograd/nn/sequence.h"
#include "framework/error.h"
#include "tests/golden/golden.h"
#include "tests/train/train_test_util.h"
#include "train/evaluate.h"
#include "train/loop.h"
#include "train/losses.h"
#include "train/optim_config.h"

using namespace finch;
using namespace finch::train;

namespace {

// Sums each sample's first `length` steps of x [B, T] (all T through forward()), so the two
// paths give different answers and the test sees which one ran.
class PrefixSum : public nn::Module, public nn::LengthAware {
 public:
  Tensor forward_impl(const Tensor& x) override { return sum(x, {1}, true); }
  Tensor forward_with_lengths(const Tensor& x, const Tensor& lengths) override {
    ++with_lengths_calls;
    const auto v = x.contiguous().to_vector<float>();
    const auto n = lengths.to_vector<int64_t>();
    const int64_t T = x.size(1);
    std::vector<float> out;
    for (size_t b = 0; b < n.size(); ++b) {
      float s = 0;
      for (int64_t t = 0; t < n[b]; ++t) s += v[b * size_t(T) + size_t(t)];
      out.push_back(s);
    }
    return from_vector<float>(out, {int64_t(n.size()), 1});
  }
  int with_lengths_calls = 0;
};

class PlainSum : public nn::Module {
 public:
  Tensor forward_impl(const Tensor& x) override { return sum(x, {1}, true); }
};

}  // namespace

TEST(SeriesLoop, ForwardBatchUsesLengthsOnlyWhenTheModelTakesThem) {
  data::Batch b;
  b.images = from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  PrefixSum seq;
  PlainSum plain;
  EXPECT_EQ(forward_batch(seq, b).to_vector<float>(), (std::vector<float>{6, 15}));  // no lengths: forward
  EXPECT_EQ(seq.with_lengths_calls, 0);
  b.lengths = from_vector<int64_t>({2, 3}, {2});
  EXPECT_EQ(forward_batch(seq, b).to_vector<float>(), (std::vector<float>{3, 15}));
  EXPECT_EQ(seq.with_lengths_calls, 1);
  EXPECT_EQ(forward_batch(plain, b).to_vector<float>(), (std::vector<float>{6, 15}));
}

TEST(SeriesLoop, PlateauScheduleMatchesKeras) {
  std::ifstream f(test::golden_path("plateau_keras.json"));
  ASSERT_TRUE(f.good());
  const nlohmann::json g = nlohmann::json::parse(f);
  ASSERT_EQ(g["cases"].size(), 4u);
  for (const auto& c : g["cases"]) {
    ScheduleConfig s;
    s.kind = "plateau";
    s.lr = c["lr"];
    s.plateau_factor = c["factor"];
    s.plateau_patience = c["patience"];
    s.plateau_min_lr = c["min_lr"];
    s.plateau_min_delta = c["min_delta"];
    const auto losses = c["losses"].get<std::vector<double>>();
    const auto want = c["lr_after"].get<std::vector<double>>();
    EXPECT_DOUBLE_EQ(plateau_lr(s, {}), s.lr);
    for (size_t e = 0; e < losses.size(); ++e) {
      const std::vector<double> seen(losses.begin(), losses.begin() + long(e) + 1);
      // Keras keeps the LR as a float32.
      EXPECT_NEAR(plateau_lr(s, seen), want[e], 1e-6 * want[e]) << "epoch " << e;
    }
  }
  // Without a history the plateau schedule is its base LR at every step (report curves).
  ScheduleConfig s;
  s.kind = "plateau";
  s.lr = 0.01;
  EXPECT_DOUBLE_EQ(schedule_at(s, 1000, 10).lr, 0.01);
}

TEST(SeriesLoop, FitFollowsThePlateauScheduleAndResumesIt) {
  auto train_set = fixtures::separable_images(64, 3);
  auto test_set = fixtures::separable_images(32, 4);
  ScheduleConfig s;
  s.kind = "plateau";
  s.lr = 0.05;
  s.epochs = 6;
  s.plateau_patience = 1;
  s.plateau_min_delta = 10;  // no epoch improves by 10: the LR halves after every epoch after the first
  s.plateau_min_lr = 0.01;
  LoopConfig lc;
  lc.epochs = 6;
  lc.quiet = true;
  auto run = [&](int64_t stop_after, TrainState& state, nn::Module& model, optim::Optimizer& opt) {
    data::DataLoaderOptions lo;
    lo.batch_size = 16;
    lo.seed = 2;
    data::DataLoader loader(train_set, lo);
    LoopConfig c = lc;
    c.stop_after_epochs = stop_after;
    fit(model, opt, loader, classification_loss(), s, c, state,
        [&](nn::Module& m) { return evaluate(m, test_set, 32, 3); });
  };
  OptimizerConfig oc;
  oc.name = "adam";
  oc.lr = s.lr;
  manual_seed(11);  // the MLP's dropout draws from the default generator
  auto m1 = fixtures::small_mlp(7);
  auto o1 = make_optimizer(oc, *m1);
  TrainState whole;
  run(0, whole, *m1, *o1);
  std::vector<double> lrs;
  for (const auto& row : whole.history) lrs.push_back(row["lr"]);
  EXPECT_EQ(lrs, (std::vector<double>{0.05, 0.05, 0.025, 0.0125, 0.01, 0.01}));
  // Stopping after 2 epochs and continuing in a new fit() gives the same LRs and losses.
  manual_seed(11);
  auto m2 = fixtures::small_mlp(7);
  auto o2 = make_optimizer(oc, *m2);
  TrainState split;
  run(2, split, *m2, *o2);
  run(0, split, *m2, *o2);
  ASSERT_EQ(split.history.size(), whole.history.size());
  for (size_t e = 0; e < whole.history.size(); ++e) {
    EXPECT_EQ(split.history[e]["lr"], whole.history[e]["lr"]);
    EXPECT_EQ(split.history[e]["train_loss"], whole.history[e]["train_loss"]);
  }
}
