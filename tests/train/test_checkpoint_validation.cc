// A damaged training checkpoint is refused before training starts, with one sentence naming the
// file and the entry: an optimizer buffer removed or reshaped, a malformed history, bad epoch
// counts or accuracy, non-finite weights, a missing generator state. The model is left untouched.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "autograd/functional.h"
#include "framework/error.h"
#include "framework/random.h"
#include "framework/safetensors.h"
#include "tests/error_text.h"
#include "tests/train/train_test_util.h"
#include "train/checkpoint.h"
#include "train/evaluate.h"
#include "train/loop.h"
#include "train/optim_config.h"

using namespace finch;
using namespace finch::train;
namespace fs = std::filesystem;

namespace {

class CheckpointValidation : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("finch_ckpt_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // One epoch of training with `c`, leaving dir_/checkpoint.safetensors.
  std::string train_one_epoch(const OptimizerConfig& c) {
    manual_seed(3);
    nn::ModulePtr model = fixtures::small_mlp(7);
    auto opt = make_optimizer(c, *model);
    data::DataLoaderOptions lo;
    lo.batch_size = 16;
    data::DataLoader loader(fixtures::separable_images(64, 1), lo);
    TrainState state;
    LoopConfig lc;
    lc.epochs = 1;
    lc.quiet = true;
    ScheduleConfig s;
    s.lr = c.lr;
    CheckpointCallback ck(dir_.string(), {}, {});
    const auto test = fixtures::separable_images(16, 2);
    fit(*model, *opt, loader, [](const Tensor& l, const Tensor& y) { return cross_entropy(l, y); }, s, lc, state,
        [&](nn::Module& m) { return evaluate(m, test, 16, 3); }, {&ck});
    return ck.checkpoint_path();
  }

  // Rewrites the checkpoint at `path` as dir_/bad.safetensors after `edit`.
  std::string damaged(const std::string& path,
                      const std::function<void(NamedTensors&, std::map<std::string, std::string>&)>& edit) {
    SafetensorsFile f = load_safetensors(path);
    edit(f.tensors, f.metadata);
    const std::string out = (dir_ / "bad.safetensors").string();
    save_safetensors(out, f.tensors, f.metadata);
    return out;
  }

  // The error of loading `path` into a fresh model/optimizer built with `c`; checks the model's
  // weights were not touched when the file is refused.
  std::string load_error(const std::string& path, const OptimizerConfig& c) {
    nn::ModulePtr model = fixtures::small_mlp(8);
    auto opt = make_optimizer(c, *model);
    const auto before = model->state_dict().begin()->second.to_vector<float>();
    const std::string msg = test::error_of([&] { load_checkpoint(path, *model, *opt); });
    if (!msg.empty()) {
      EXPECT_EQ(before, model->state_dict().begin()->second.to_vector<float>());
    }
    return msg;
  }

  fs::path dir_;
};

OptimizerConfig sgd() {
  OptimizerConfig c;
  c.lr = 0.1;
  return c;
}

// A history row with every column of history_row but "seconds", plus `more`.
std::string row(const std::string& more) {
  return "{\"epoch\": 1, \"lr\": 0.1, \"train_loss\": 1, \"train_acc\": 0.5, \"test_loss\": 1, \"test_acc\": "
         "0.5, \"images_per_second\": 100, " + more + "}";
}

void drop(NamedTensors& t, const std::string& name) {
  for (auto it = t.begin(); it != t.end(); ++it)
    if (it->first == name) {
      t.erase(it);
      return;
    }
  FAIL() << "no tensor " << name;
}

}  // namespace

TEST_F(CheckpointValidation, AnIntactCheckpointLoads) {
  const std::string path = train_one_epoch(sgd());
  EXPECT_EQ(load_error(path, sgd()), "");
}

TEST_F(CheckpointValidation, AMissingMomentumBufferIsNamed) {
  const std::string path = train_one_epoch(sgd());
  const std::string bad = damaged(path, [](NamedTensors& t, auto&) { drop(t, "optimizer.state.2.momentum_buffer"); });
  const std::string msg = load_error(bad, sgd());
  EXPECT_NE(msg.find("bad.safetensors"), std::string::npos) << msg;
  EXPECT_NE(msg.find("optimizer.state.2.momentum_buffer"), std::string::npos) << msg;
}

TEST_F(CheckpointValidation, AMissingAdamStepOrMomentIsNamed) {
  OptimizerConfig adam;
  adam.name = "adam";
  adam.lr = 1e-3;
  const std::string path = train_one_epoch(adam);
  EXPECT_EQ(load_error(path, adam), "");
  for (const char* name : {"optimizer.state.0.step", "optimizer.state.3.exp_avg_sq"}) {
    const std::string bad = damaged(path, [&](NamedTensors& t, auto&) { drop(t, name); });
    const std::string msg = load_error(bad, adam);
    EXPECT_NE(msg.find(name), std::string::npos) << msg;
  }
}

TEST_F(CheckpointValidation, AReshapedBufferIsNamedWithBothShapes) {
  const std::string path = train_one_epoch(sgd());
  const std::string bad = damaged(path, [](NamedTensors& t, auto&) {
    for (auto& [name, v] : t)
      if (name == "optimizer.state.0.momentum_buffer") v = zeros({3, 4});
  });
  const std::string msg = load_error(bad, sgd());
  EXPECT_NE(msg.find("bad.safetensors"), std::string::npos) << msg;
  EXPECT_NE(msg.find("optimizer.state.0.momentum_buffer' has shape [3, 4]"), std::string::npos) << msg;
}

TEST_F(CheckpointValidation, AMalformedHistoryIsRefused) {
  const std::string path = train_one_epoch(sgd());
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{\"epoch\": 1}", "should be a JSON array"},
      {"[]", "has 0 rows but 'epochs_done' is 1"},
      {"[[1, 2]]", "row 1 should be a JSON object"},
      {"[{\"epoch\": 2}]", "should have \"epoch\": 1"},
      {"[{\"epoch\": 1}]", "has no \"lr\""},
      {"[" + row("\"seconds\": \"fast\"") + "]", "\"seconds\" should be a number, found \"fast\""},
      {"[" + row("\"seconds\": null") + "]", "\"seconds\" should be a number, found null"},
      {"[" + row("\"seconds\": 1, \"extra\": [1]") + "]", "\"extra\" should be a number"},
      {"not json", "should be a JSON array"}};
  for (const auto& [history, expected] : cases) {
    const std::string bad = damaged(path, [&](auto&, auto& m) { m["history"] = history; });
    const std::string msg = load_error(bad, sgd());
    EXPECT_NE(msg.find("bad.safetensors"), std::string::npos) << history << ": " << msg;
    EXPECT_NE(msg.find(expected), std::string::npos) << history << ": " << msg;
  }
}

TEST_F(CheckpointValidation, BadCountsAccuracyAndGeneratorStateAreRefused) {
  const std::string path = train_one_epoch(sgd());
  const std::vector<std::pair<std::string, std::string>> meta = {
      {"epochs_done", "-1"}, {"epochs_done", "1x"}, {"epochs_done", "99999999999999999999"},
      {"best_test_accuracy", "\"high\""}, {"best_test_accuracy", "1.5"}, {"best_test_accuracy", "nan"}};
  for (const auto& [key, value] : meta) {
    const std::string bad = damaged(path, [&](auto&, auto& m) { m[key] = value; });
    const std::string msg = load_error(bad, sgd());
    EXPECT_NE(msg.find("bad.safetensors: checkpoint metadata '" + key + "'"), std::string::npos) << value << ": " << msg;
  }
  const std::string no_rng = damaged(path, [](NamedTensors& t, auto&) { drop(t, "rng.default"); });
  EXPECT_NE(load_error(no_rng, sgd()).find("no 'rng.default'"), std::string::npos);
}

TEST_F(CheckpointValidation, NonFiniteWeightsAreRefusedNamingTheTensor) {
  const std::string path = train_one_epoch(sgd());
  const std::string bad = damaged(path, [](NamedTensors& t, auto&) {
    for (auto& [name, v] : t)
      if (name == "model.1.weight") {
        Tensor w = v.clone();
        w.data<float>()[5] = std::numeric_limits<float>::quiet_NaN();
        v = w;
      }
  });
  const std::string msg = load_error(bad, sgd());
  EXPECT_NE(msg.find("'model.1.weight' holds a NaN"), std::string::npos) << msg;
}

TEST_F(CheckpointValidation, AMissingModelWeightNamesTheFile) {
  const std::string path = train_one_epoch(sgd());
  const std::string bad = damaged(path, [](NamedTensors& t, auto&) { drop(t, "model.4.bias"); });
  const std::string msg = load_error(bad, sgd());
  EXPECT_NE(msg.find("bad.safetensors: the weights do not fit the model: there is no 'model.4.bias'"), std::string::npos) << msg;
}
