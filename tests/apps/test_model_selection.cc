// Model selection on held-out training data (apps/lib/model_selection.h): the validation split
// is stratified, seeded and disjoint; the best epoch follows the validation metric even where the
// test set disagrees; patience stops the run; a resumed run chooses and stops exactly as an
// uninterrupted one.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "apps/lib/model_selection.h"
#include "autograd/functional.h"
#include "framework/error.h"
#include "framework/random.h"
#include "framework/safetensors.h"
#include "tests/train/train_test_util.h"
#include "train/checkpoint.h"
#include "train/evaluate.h"
#include "train/loop.h"
#include "train/optim_config.h"

using namespace finch;
using namespace finch::apps;
namespace fs = std::filesystem;

namespace {

std::vector<int64_t> labels_of(const std::vector<int64_t>& counts) {
  std::vector<int64_t> l;
  for (size_t k = 0; k < counts.size(); ++k)
    for (int64_t i = 0; i < counts[k]; ++i) l.push_back(int64_t(k));
  // Interleave the classes, as files usually hold them.
  std::vector<int64_t> out;
  Generator g(9);
  while (!l.empty()) {
    const size_t j = size_t(g.below(l.size()));
    out.push_back(l[j]);
    l.erase(l.begin() + int64_t(j));
  }
  return out;
}

}  // namespace

TEST(ValidationSplit, StratifiedDeterministicAndDisjoint) {
  const std::vector<int64_t> labels = labels_of({60, 30, 10});
  const data::Split a = validation_split(labels, 0.2, 7, "toy");
  // Each class gives round(0.2 · count) examples: 12, 6 and 2.
  std::map<int64_t, int64_t> per_class;
  for (int64_t i : a.val) ++per_class[labels[size_t(i)]];
  EXPECT_EQ(per_class, (std::map<int64_t, int64_t>{{0, 12}, {1, 6}, {2, 2}}));
  // Disjoint, together every example once, both ascending.
  std::set<int64_t> all(a.train.begin(), a.train.end());
  for (int64_t i : a.val) EXPECT_TRUE(all.insert(i).second) << "example " << i << " is on both sides";
  EXPECT_EQ(all.size(), labels.size());
  EXPECT_TRUE(std::is_sorted(a.val.begin(), a.val.end()));
  EXPECT_TRUE(std::is_sorted(a.train.begin(), a.train.end()));
  // The same seed gives the same split; another seed another one.
  const data::Split b = validation_split(labels, 0.2, 7, "toy"), c = validation_split(labels, 0.2, 8, "toy");
  EXPECT_EQ(a.val, b.val);
  EXPECT_EQ(a.train, b.train);
  EXPECT_NE(a.val, c.val);
}

TEST(ValidationSplit, AnEmptySideIsOneSentence) {
  try {
    validation_split(labels_of({3, 3}), 0.1, 1, "tiny.ts");  // round(0.3) = 0 per class
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("tiny.ts"), std::string::npos) << m;
    EXPECT_NE(m.find("no validation example"), std::string::npos) << m;
  }
  try {
    validation_split(labels_of({20, 1}), 0.6, 1, "skewed.ts");  // class 1's only example
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("class 1"), std::string::npos) << e.what();
  }
}

TEST(ValidationChoice, AccuracyThenLossRegressionByLoss) {
  const SelectionConfig cls{false, 0}, reg{true, 0};
  EXPECT_TRUE(better_validation(cls, 0.8, 0.5, 0.7, 0.1));
  EXPECT_FALSE(better_validation(cls, 0.7, 0.5, 0.8, 0.9));
  EXPECT_TRUE(better_validation(cls, 0.8, 0.4, 0.8, 0.5));   // a tie: the lower loss
  EXPECT_FALSE(better_validation(cls, 0.8, 0.5, 0.8, 0.5));  // a full tie: the earlier epoch stays
  EXPECT_FALSE(better_validation(cls, NAN, 0.1, 0.5, 0.5));
  EXPECT_TRUE(better_validation(reg, NAN, 0.4, NAN, 0.5));
  EXPECT_FALSE(better_validation(reg, NAN, NAN, NAN, 0.5));
}

namespace {

// fit() on a small MLP with scripted validation and test accuracies, so the test knows which
// epoch each set would choose.
class Selection : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("finch_selection_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    train_ = train::fixtures::separable_images(64, 1);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // The accuracy of epoch k (1-based) is script[k - 1]; the loss 1 − accuracy.
  static train::Evaluator scripted(std::vector<double> script) {
    return [script, epoch = size_t(0)](nn::Module&) mutable {
      train::EvalResult r;
      r.count = 10;
      r.accuracy = script.at(epoch++);
      r.loss = 1 - r.accuracy;
      return r;
    };
  }

  struct Run {
    train::TrainState state;
    std::vector<std::vector<std::vector<float>>> weights_after;  // per epoch run
    bool stopped = false;
  };

  // Trains `epochs` (with stop_after / a given state), the validation and test scripts starting
  // at the state's epoch, weights recorded after each epoch.
  Run run(const std::vector<double>& val, const std::vector<double>& test, int64_t epochs, int64_t patience,
          const fs::path& out, int64_t stop_after = 0, const fs::path& resume = {}) {
    fs::create_directories(out);
    manual_seed(3);
    nn::ModulePtr model = train::fixtures::small_mlp(7);
    train::OptimizerConfig oc;
    oc.lr = 0.1;
    auto opt = train::make_optimizer(oc, *model);
    Run r;
    if (!resume.empty()) r.state = train::load_checkpoint(resume.string(), *model, *opt).state;
    const size_t from = size_t(r.state.epochs_done);
    data::DataLoaderOptions lo;
    lo.batch_size = 16;
    lo.seed = 5;
    data::DataLoader loader(train_, lo);
    train::ScheduleConfig sc;
    sc.kind = "constant";
    sc.lr = 0.1;
    sc.epochs = epochs;
    train::LoopConfig lc;
    lc.epochs = epochs;
    lc.quiet = true;
    lc.stop_after_epochs = stop_after;
    struct Snap : train::Callback {
      Run* r;
      void on_epoch_end(train::Context& ctx, const train::EpochEnd&) override {
        std::vector<std::vector<float>> w;
        for (const auto& [name, t] : ctx.model.state_dict()) w.push_back(t.contiguous().to_vector<float>());
        r->weights_after.push_back(w);
      }
    } snap;
    snap.r = &r;
    train::CheckpointCallback ck(out.string(), {{"model", "mlp"}}, {{"model", "mlp"}});
    const SelectionConfig cfg{false, patience};
    prepare_best_file(out.string(), resume.string(), r.state.history, cfg);
    ValidationSelection sel(scripted({val.begin() + int64_t(from), val.end()}), cfg, {&ck, &snap});
    auto ce = [](const Tensor& logits, const Tensor& y) { return cross_entropy(logits, y); };
    train::fit(*model, *opt, loader, ce, sc, lc, r.state, scripted({test.begin() + int64_t(from), test.end()}),
               {&sel});
    r.stopped = sel.stopped_early();
    return r;
  }

  static std::vector<std::vector<float>> file_weights(const fs::path& p) {
    std::vector<std::vector<float>> w;
    for (const auto& [name, t] : load_safetensors(p.string()).tensors) w.push_back(t.contiguous().to_vector<float>());
    return w;
  }

  fs::path dir_;
  std::shared_ptr<const data::Dataset> train_;
};

}  // namespace

// Test and validation disagree: the test set would choose epoch 1, validation chooses epoch 3.
// A selection that looked at the test set fails every check below.
TEST_F(Selection, TheBestEpochIsTheBestValidationEpochNotTheBestTestEpoch) {
  const std::vector<double> val = {0.50, 0.60, 0.90, 0.70, 0.80}, test = {0.95, 0.50, 0.60, 0.70, 0.90};
  const Run r = run(val, test, 5, 0, dir_ / "a");
  ASSERT_EQ(r.state.epochs_done, 5);
  EXPECT_FALSE(r.stopped);
  // The history has the validation columns (metrics.csv and resume read them).
  EXPECT_DOUBLE_EQ(r.state.history[2]["val_acc"].get<double>(), 0.90);
  EXPECT_DOUBLE_EQ(r.state.history[2]["val_loss"].get<double>(), 1 - 0.90);
  // best.safetensors holds epoch 3's weights (state_dict and the file list parameters by name).
  std::map<std::string, std::vector<float>> by_name;
  for (const auto& [name, t] : load_safetensors((dir_ / "a" / "best.safetensors").string()).tensors)
    by_name[name] = t.contiguous().to_vector<float>();
  manual_seed(3);
  nn::ModulePtr probe = train::fixtures::small_mlp(7);
  size_t k = 0;
  for (const auto& [name, t] : probe->state_dict()) {
    ASSERT_TRUE(by_name.count(name)) << name;
    EXPECT_EQ(by_name[name], r.weights_after[2][k]) << name << ": best.safetensors is not epoch 3";
    EXPECT_NE(by_name[name], r.weights_after[0][k]) << name << ": best.safetensors is epoch 1 (the test set's choice)";
    ++k;
  }
  EXPECT_EQ(kept_epoch(r.state.history, {false, 0}, "best"), 3);
  EXPECT_EQ(kept_epoch(r.state.history, {false, 0}, "last"), 0);
  SelectionReport rep;
  rep.validation_source = "scripted";
  rep.validation_samples = 10;
  rep.kept = "best";
  const nlohmann::json s = selection_summary(r.state.history, rep);
  EXPECT_EQ(s["best_epoch"], 3);
  EXPECT_DOUBLE_EQ(s["best_val_accuracy"].get<double>(), 0.90);
  EXPECT_DOUBLE_EQ(s["best_epoch_test_accuracy"].get<double>(), 0.60);  // the chosen epoch's, not the max 0.95
  EXPECT_EQ(s["last_epoch"], 5);
  EXPECT_DOUBLE_EQ(s["last_epoch_test_accuracy"].get<double>(), 0.90);
  EXPECT_EQ(s["kept"], "best");
  EXPECT_EQ(s["model_epoch"], 3);
  // Without validation nothing is chosen: no best.safetensors, the last epoch is kept.
  SelectionReport none;
  const nlohmann::json n = selection_summary(nlohmann::json::array(), none);
  EXPECT_TRUE(n["best_epoch"].is_null());
  EXPECT_EQ(n["kept"], "last");
}

TEST_F(Selection, PatienceStopsAfterThatManyEpochsWithoutABetterOne) {
  // Best at epoch 2; epochs 3 and 4 are not better (epoch 4 is a full tie — the loss is
  // 1 − accuracy — and the earlier epoch stays).
  const std::vector<double> val = {0.5, 0.8, 0.7, 0.8, 0.9, 0.95, 0.99, 0.99}, test(8, 0.5);
  const Run r = run(val, test, 8, 2, dir_ / "p");
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(r.state.epochs_done, 4);
  EXPECT_EQ(selection_from_history(r.state.history, {false, 2}).best_epoch, 2);
  EXPECT_EQ(selection_from_history(r.state.history, {false, 2}).since_best, 2);
  // Patience 3 lets epoch 5 improve: the run goes on to the end.
  const Run longer = run(val, test, 8, 3, dir_ / "q");
  EXPECT_FALSE(longer.stopped);
  EXPECT_EQ(longer.state.epochs_done, 8);
  EXPECT_EQ(selection_from_history(longer.state.history, {false, 3}).best_epoch, 7);
}

// A run stopped after 2 epochs and resumed from its checkpoint chooses the same epoch, stops at
// the same epoch and leaves the same weights and best.safetensors as an uninterrupted one, also
// when it continues in another folder (best.safetensors copied from beside the checkpoint), and
// a resumed run that had already run out of patience trains no further.
TEST_F(Selection, ResumeChoosesAndStopsExactlyAsAnUninterruptedRun) {
  const std::vector<double> val = {0.6, 0.7, 0.65, 0.68, 0.9, 0.9}, test = {0.9, 0.1, 0.2, 0.3, 0.4, 0.5};
  const Run whole = run(val, test, 6, 2, dir_ / "whole");
  ASSERT_EQ(whole.state.epochs_done, 4);  // best at 2, then 3 and 4 are worse
  const Run first = run(val, test, 6, 2, dir_ / "split", 2);
  ASSERT_EQ(first.state.epochs_done, 2);
  const Run rest = run(val, test, 6, 2, dir_ / "moved", 0, dir_ / "split" / "checkpoint.safetensors");
  EXPECT_TRUE(rest.stopped);
  EXPECT_EQ(rest.state.epochs_done, 4);
  for (size_t e = 0; e < 4; ++e) {
    EXPECT_EQ(rest.state.history[e]["val_acc"], whole.state.history[e]["val_acc"]) << e;
    EXPECT_EQ(rest.state.history[e]["train_loss"], whole.state.history[e]["train_loss"]) << e;
  }
  EXPECT_EQ(rest.weights_after.back(), whole.weights_after.back());
  EXPECT_EQ(file_weights(dir_ / "moved" / "best.safetensors"), file_weights(dir_ / "whole" / "best.safetensors"));
  // Resuming the finished run again: patience is already spent, nothing trains.
  const Run again = run(val, test, 6, 2, dir_ / "moved", 0, dir_ / "moved" / "checkpoint.safetensors");
  EXPECT_TRUE(again.stopped);
  EXPECT_EQ(again.state.epochs_done, 4);
  EXPECT_TRUE(again.weights_after.empty());
}
