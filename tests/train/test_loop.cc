// The training loop on a tiny synthetic task: the loss falls, callbacks run in order, a resumed
// run is bit-identical to an uninterrupted one, checkpoints are written atomically, and a
// diverging loss is a clear error.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <csignal>
#include <fstream>
#include <iterator>
#include <filesystem>
#include <string>
#include <vector>

#include "autograd/functional.h"
#include "framework/error.h"
#include "framework/random.h"
#include "tests/error_text.h"
#include "tests/train/train_test_util.h"
#include "train/callbacks.h"
#include "train/checkpoint.h"
#include "train/evaluate.h"
#include "train/divergence.h"
#include "train/loop.h"

using namespace finch;
using namespace finch::train;
namespace fs = std::filesystem;

namespace {

class Loop : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("finch_train_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    train_ = fixtures::separable_images(96, 1);
    test_ = fixtures::separable_images(48, 2);
  }
  void TearDown() override { fs::remove_all(dir_); }

  data::DataLoaderOptions loader_options() const {
    data::DataLoaderOptions lo;
    lo.batch_size = 16;
    lo.seed = 5;
    return lo;
  }
  Evaluator evaluator() const {
    return [this](nn::Module& m) { return evaluate(m, test_, 32, 3); };
  }

  fs::path dir_;
  std::shared_ptr<const data::Dataset> train_, test_;
};

LossFn ce() {
  return [](const Tensor& logits, const Tensor& y) { return cross_entropy(logits, y); };
}

OptimizerConfig sgd() {
  OptimizerConfig c;
  c.lr = 0.2;
  c.weight_decay = 1e-4;
  return c;
}

ScheduleConfig cosine(int64_t epochs) {
  ScheduleConfig s;
  s.lr = 0.2;
  s.epochs = epochs;
  s.warmup_epochs = 1;
  return s;
}

LoopConfig quiet(int64_t epochs) {
  LoopConfig c;
  c.epochs = epochs;
  c.quiet = true;
  return c;
}

std::vector<std::vector<float>> weights(const nn::Module& m) {
  std::vector<std::vector<float>> w;
  for (const auto& [name, t] : m.state_dict()) w.push_back(t.to(DType::f32).contiguous().to_vector<float>());
  return w;
}

struct Recorder : Callback {
  std::vector<std::string> events;
  void on_train_begin(Context&) override { events.push_back("train_begin"); }
  void on_epoch_begin(Context&, int64_t e) override { events.push_back("epoch_begin " + std::to_string(e)); }
  void on_batch_end(Context&, int64_t e, int64_t s, double) override {
    events.push_back("batch_end " + std::to_string(e) + "." + std::to_string(s));
  }
  void on_epoch_end(Context& ctx, const EpochEnd& e) override {
    // The epoch's row is already in the history when callbacks see it.
    events.push_back("epoch_end " + std::to_string(e.epoch) + " rows " + std::to_string(ctx.state.history.size()));
  }
  void on_train_end(Context&) override { events.push_back("train_end"); }
};

}  // namespace

TEST_F(Loop, LossFallsAndTheModelLearns) {
  manual_seed(3);
  nn::ModulePtr model = fixtures::small_mlp(7);
  auto opt = make_optimizer(sgd(), *model);
  data::DataLoader loader(train_, loader_options());
  TrainState state;
  const EvalResult r = fit(*model, *opt, loader, ce(), cosine(6), quiet(6), state, evaluator());
  ASSERT_EQ(state.history.size(), 6u);
  const double first = state.history[0]["train_loss"].get<double>();
  const double last = state.history[5]["train_loss"].get<double>();
  EXPECT_LT(last, 0.5 * first) << first << " -> " << last;
  EXPECT_GT(r.accuracy, 0.9);
  EXPECT_EQ(r.count, 48);
  EXPECT_EQ(state.epochs_done, 6);
  EXPECT_EQ(state.history[0]["images"].get<int64_t>(), 96);
}

TEST_F(Loop, CallbacksRunInOrder) {
  manual_seed(3);
  nn::ModulePtr model = fixtures::small_mlp(7);
  auto opt = make_optimizer(sgd(), *model);
  data::DataLoaderOptions lo = loader_options();
  lo.batch_size = 48;  // two steps per epoch
  data::DataLoader loader(train_, lo);
  TrainState state;
  Recorder rec;
  fit(*model, *opt, loader, ce(), cosine(2), quiet(2), state, evaluator(), {&rec});
  const std::vector<std::string> want = {"train_begin",     "epoch_begin 0", "batch_end 0.0", "batch_end 0.1",
                                         "epoch_end 0 rows 1", "epoch_begin 1", "batch_end 1.0", "batch_end 1.1",
                                         "epoch_end 1 rows 2", "train_end"};
  EXPECT_EQ(rec.events, want);
}

TEST_F(Loop, ResumeIsBitIdenticalToAnUninterruptedRun) {
  const int64_t epochs = 4;
  // Uninterrupted.
  manual_seed(11);
  nn::ModulePtr a = fixtures::small_mlp(7);
  auto opt_a = make_optimizer(sgd(), *a);
  data::DataLoader loader_a(train_, loader_options());
  TrainState sa;
  fit(*a, *opt_a, loader_a, ce(), cosine(epochs), quiet(epochs), sa, evaluator());

  // Two epochs with checkpoints, then a fresh process's worth of objects resumes from the file.
  std::vector<std::vector<float>> weights_at_stop;
  std::vector<std::vector<double>> opt_at_stop;
  Generator::State rng_at_stop{};
  {
    manual_seed(11);
    nn::ModulePtr b = fixtures::small_mlp(7);
    auto opt_b = make_optimizer(sgd(), *b);
    data::DataLoader loader_b(train_, loader_options());
    TrainState sb;
    LoopConfig c = quiet(epochs);
    c.stop_after_epochs = 2;
    CheckpointCallback ck(dir_.string(), {{"model", "mlp"}}, {{"model", "mlp"}});
    fit(*b, *opt_b, loader_b, ce(), cosine(epochs), c, sb, evaluator(), {&ck});
    EXPECT_EQ(sb.epochs_done, 2);
    weights_at_stop = weights(*b);
    for (const auto& [n, t] : opt_b->state_dict()) opt_at_stop.push_back(t.to(DType::f64).contiguous().to_vector<double>());
    rng_at_stop = default_generator().state();
  }
  manual_seed(999);  // whatever the generator holds now, the checkpoint restores it
  nn::ModulePtr b = fixtures::small_mlp(8);  // other initial weights: all overwritten
  auto opt_b = make_optimizer(sgd(), *b);
  const LoadedCheckpoint loaded = load_checkpoint((dir_ / "checkpoint.safetensors").string(), *b, *opt_b);
  EXPECT_EQ(loaded.state.epochs_done, 2);
  EXPECT_EQ(weights_at_stop, weights(*b));
  std::vector<std::vector<double>> opt_loaded;
  for (const auto& [n, t] : opt_b->state_dict()) opt_loaded.push_back(t.to(DType::f64).contiguous().to_vector<double>());
  EXPECT_EQ(opt_at_stop, opt_loaded);
  EXPECT_TRUE(rng_at_stop == default_generator().state());  // every bit, dropout's stream included
  EXPECT_EQ(loaded.metadata.at("model"), "mlp");
  TrainState sb = loaded.state;
  data::DataLoader loader_b(train_, loader_options());
  fit(*b, *opt_b, loader_b, ce(), cosine(epochs), quiet(epochs), sb, evaluator());
  EXPECT_EQ(weights(*a), weights(*b));  // exact
  ASSERT_EQ(sa.history.size(), sb.history.size());
  for (size_t i = 0; i < sa.history.size(); ++i)
    for (const char* k : {"lr", "train_loss", "train_acc", "test_loss", "test_acc"})
      EXPECT_EQ(sa.history[i][k], sb.history[i][k]) << "epoch " << i + 1 << " " << k;
  EXPECT_TRUE(fs::exists(dir_ / "best.safetensors"));
}

TEST_F(Loop, ACheckpointWriteThatFailsLeavesTheOldFileWhole) {
  manual_seed(3);
  nn::ModulePtr model = fixtures::small_mlp(7);
  auto opt = make_optimizer(sgd(), *model);
  data::DataLoader loader(train_, loader_options());
  TrainState state;
  LoopConfig c = quiet(2);
  c.stop_after_epochs = 1;
  CheckpointCallback ck(dir_.string(), {}, {});
  fit(*model, *opt, loader, ce(), cosine(2), c, state, evaluator(), {&ck});
  const fs::path path = dir_ / "checkpoint.safetensors";
  const auto size = fs::file_size(path);
  // The next write dies after a few hundred bytes (the file-size limit makes write(2) fail with
  // EFBIG, as a full disk would): the previous checkpoint must survive intact, with no partial
  // file left beside it.
  state.epochs_done = 99;
  rlimit old{};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old), 0);
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  rlimit small = old;
  small.rlim_cur = 300;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  bool threw = false;
  try {
    save_checkpoint(path.string(), *model, *opt, state, {});
  } catch (const Error&) {
    threw = true;
  }
  setrlimit(RLIMIT_FSIZE, &old);
  std::signal(SIGXFSZ, old_handler);
  EXPECT_TRUE(threw);
  EXPECT_EQ(fs::file_size(path), size);
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir_)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"best.safetensors", "checkpoint.safetensors"}));
  nn::ModulePtr other = fixtures::small_mlp(8);
  auto opt2 = make_optimizer(sgd(), *other);
  EXPECT_EQ(load_checkpoint(path.string(), *other, *opt2).state.epochs_done, 1);
}

TEST_F(Loop, ADivergingLossIsAnErrorNamingTheStep) {
  nn::ModulePtr model = fixtures::small_mlp(7);
  auto opt = make_optimizer(sgd(), *model);
  data::DataLoader loader(train_, loader_options());
  TrainState state;
  LoopConfig c = quiet(1);
  c.name = "tiny";
  const LossFn nan_loss = [](const Tensor& logits, const Tensor& y) {
    return cross_entropy(logits, y) * std::numeric_limits<double>::quiet_NaN();
  };
  try {
    fit(*model, *opt, loader, nan_loss, cosine(1), c, state, evaluator());
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tiny: the training loss became nan at epoch 1 step 1"), std::string::npos)
        << e.what();
  }
}

TEST_F(Loop, SchedulesAreFunctionsOfTheStep) {
  ScheduleConfig s = cosine(2);
  s.warmup_epochs = 0;
  EXPECT_DOUBLE_EQ(schedule_at(s, 0, 10).lr, 0.2);
  EXPECT_NEAR(schedule_at(s, 10, 10).lr, 0.1, 0.2 * 0.05);  // half way down the cosine
  s.kind = "constant";
  EXPECT_EQ(schedule_at(s, 17, 10).lr, 0.2);
  s.kind = "onecycle";
  EXPECT_TRUE(schedule_at(s, 3, 10).momentum.has_value());
  s.kind = "bogus";
  EXPECT_THROW(schedule_at(s, 0, 10), Error);
  const auto curve = schedule_curve(cosine(3), 50, 30);
  EXPECT_EQ(curve.front().first, 0.0);
  EXPECT_DOUBLE_EQ(curve.back().first, 149.0 / 50.0);
  EXPECT_GE(curve.size(), 30u);
}

TEST_F(Loop, MetricsAndReportCallbacksRewriteTheirFilesEachEpoch) {
  manual_seed(3);
  nn::ModulePtr model = fixtures::small_mlp(7);
  auto opt = make_optimizer(sgd(), *model);
  data::DataLoader loader(train_, loader_options());
  TrainState state;
  const std::string csv_path = (dir_ / "metrics.csv").string(), html_path = (dir_ / "report.html").string();
  MetricsCsvCallback csv(csv_path, {"epoch", "lr", "train_loss", "images"});
  int summaries = 0;
  ReportCallback report(html_path, [&] {
    ++summaries;
    return nlohmann::json{{"model", "mlp"}, {"dataset", "rows"}};
  });
  struct Check : Callback {
    std::string csv, html;
    std::vector<size_t> lines;
    void on_epoch_end(Context&, const EpochEnd&) override {
      std::ifstream in(csv);
      std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      lines.push_back(size_t(std::count(text.begin(), text.end(), '\n')));
      EXPECT_TRUE(fs::exists(html));
    }
  } check;
  check.csv = csv_path;
  check.html = html_path;
  fit(*model, *opt, loader, ce(), cosine(3), quiet(3), state, evaluator(), {&csv, &report, &check});
  EXPECT_EQ(check.lines, (std::vector<size_t>{2, 3, 4}));  // header + one row per epoch so far
  EXPECT_EQ(summaries, 3);
  std::ifstream in(csv_path);
  std::string header, row;
  std::getline(in, header);
  std::getline(in, row);
  EXPECT_EQ(header, "epoch,lr,train_loss,images");
  EXPECT_EQ(row.substr(0, 2), "1,");
  EXPECT_EQ(row.substr(row.rfind(',') + 1), "96");
}

// A finite loss far above the range it started in stops the run (--lr 30 used to reach 1e34 and
// exit 0); healthy noise and a warm-up bump do not.
TEST(Divergence, SpikesAndSustainedClimbsAreCaughtNoiseIsNot) {
  DivergenceGuard healthy;
  for (int i = 0; i < 500; ++i) {
    const double loss = 2.3 * std::exp(-i / 100.0) + 0.05 * ((i * 7919) % 13) / 13.0 + (i == 30 ? 8.0 : 0.0);
    ASSERT_EQ(healthy.observe(loss), "") << "step " << i;
  }
  DivergenceGuard spike;
  ASSERT_EQ(spike.observe(2.3), "");
  EXPECT_EQ(spike.observe(2000.0), "");
  const std::string why = spike.observe(2.4e3 * 2.3);
  EXPECT_NE(why.find("exploded"), std::string::npos) << why;
  DivergenceGuard climb;
  ASSERT_EQ(climb.observe(1.0), "");
  std::string msg;
  int steps = 0;
  while (msg.empty() && steps < 100) msg = climb.observe(50.0), ++steps;
  EXPECT_EQ(steps, 20);
  EXPECT_NE(msg.find("for 20 steps"), std::string::npos) << msg;
}

TEST_F(Loop, AnExplodingFiniteLossStopsTheRunNamingTheStep) {
  nn::ModulePtr model = fixtures::small_mlp(7);
  auto opt = make_optimizer(sgd(), *model);
  data::DataLoader loader(train_, loader_options());
  TrainState state;
  LoopConfig c = quiet(3);
  c.name = "tiny";
  int64_t step = 0;
  // The loss grows 10× a step from step 12 on: finite all the way to the stop.
  const LossFn exploding = [&](const Tensor& logits, const Tensor& y) {
    ++step;
    return cross_entropy(logits, y) * (step > 11 ? std::pow(10.0, double(step - 11)) : 1.0);
  };
  const std::string m = finch::test::error_of([&] { fit(*model, *opt, loader, exploding, cosine(3), c, state, evaluator()); });
  EXPECT_NE(m.find("tiny: the training loss exploded"), std::string::npos) << m;
  EXPECT_NE(m.find("step"), std::string::npos) << m;
  EXPECT_NE(m.find("lower the learning rate"), std::string::npos) << m;
}

TEST_F(Loop, NonFiniteWeightsAfterAnEpochAreAnErrorNamingTheTensor) {
  nn::ModulePtr model = fixtures::small_mlp(7);
  auto opt = make_optimizer(sgd(), *model);
  data::DataLoader loader(train_, loader_options());
  TrainState state;
  // After the epoch's last step a weight turns infinite (the loss never saw it).
  struct Poison : Callback {
    int64_t last = 0;
    void on_batch_end(Context& ctx, int64_t, int64_t step, double) override {
      if (step != last) return;
      Tensor w = ctx.model.state_dict().begin()->second;
      w.data<float>()[0] = std::numeric_limits<float>::infinity();
    }
  } poison;
  poison.last = loader.num_batches() - 1;
  const std::string name = model->state_dict().begin()->first;
  const std::string m = finch::test::error_of([&] { fit(*model, *opt, loader, ce(), cosine(1), quiet(1), state, evaluator(), {&poison}); });
  EXPECT_NE(m.find(name + " holds a NaN or an infinity after epoch 1"), std::string::npos) << m;
}
