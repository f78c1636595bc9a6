// Distillation (train/distill.h): the loss and its gradient equal PyTorch's (torch 1.13 goldens,
// tests/golden/make_distill_goldens.py), α = 0 is plain cross-entropy, bad T/α are sentences;
// the Distiller runs the teacher once per training batch beside the student inside fit(), mixes
// its logits into the loss, leaves evaluation alone and removes itself afterwards.
#include <gtest/gtest.h>

#include <string>

#include "autograd/engine.h"
#include "autograd/functional.h"
#include "framework/grad_mode.h"
#include "framework/random.h"
#include "tests/error_text.h"
#include "tests/golden/golden.h"
#include "tests/train/train_test_util.h"
#include "train/distill.h"
#include "train/evaluate.h"
#include "train/loop.h"

using namespace finch;
using namespace finch::train;

namespace {

TEST(Distill, LossAndGradientEqualPyTorch) {
  const SafetensorsFile g = test::load_golden("distill_torch.safetensors");
  const int cases = std::stoi(g.metadata.at("cases"));
  ASSERT_EQ(cases, 5);
  for (int i = 0; i < cases; ++i) {
    const std::string c = "case" + std::to_string(i) + "_";
    Tensor s = g.at(c + "student").clone().set_requires_grad(true);
    const auto ta = g.at(c + "ta").to_vector<double>();
    const Tensor loss = distillation_loss(s, g.at(c + "teacher"), g.at(c + "labels"), ta[0], ta[1]);
    EXPECT_NEAR(loss.item(), g.at(c + "loss").item(), 1e-12 * (1 + std::fabs(g.at(c + "loss").item()))) << c;
    backward(loss);
    EXPECT_TRUE(test::all_close(s.grad(), g.at(c + "grad"), 1e-12, 1e-10)) << c;
  }
}

TEST(Distill, AlphaZeroIsCrossEntropyAndBadArgumentsAreSentences) {
  Generator gen(1);
  const Tensor s = randn({4, 3}, gen), t = randn({4, 3}, gen), y = randint(0, 3, {4}, gen, DType::i64);
  EXPECT_EQ(distillation_loss(s, t, y, 3.0, 0.0).item(), cross_entropy(s, y).item());
  EXPECT_ERROR_HAS(distillation_loss(s, t, y, 0.0, 0.5), "expected a temperature > 0, found 0");
  EXPECT_ERROR_HAS(distillation_loss(s, t, y, NAN, 0.5), "expected a temperature > 0");
  EXPECT_ERROR_HAS(distillation_loss(s, t, y, 2.0, 1.5), "expected α in [0, 1], found 1.5");
  EXPECT_ERROR_HAS(distillation_loss(s, randn({4, 5}, gen), y, 2.0, 0.5), "[4, 3] and [4, 5]");
}

// Counts the batches a teacher sees.
struct CountingTeacher : nn::Module {
  nn::ModulePtr inner;
  int64_t calls = 0;
  explicit CountingTeacher(nn::ModulePtr m) : inner(register_module("inner", std::move(m))) {}
  Tensor forward_impl(const Tensor& x) override {
    ++calls;
    return inner->forward(x);
  }
};

TEST(Distill, DistillerRunsTheTeacherBesideTheStudentInFit) {
  manual_seed(4);
  auto train_set = fixtures::separable_images(96, 1), test_set = fixtures::separable_images(48, 2);
  data::DataLoaderOptions lo;
  lo.batch_size = 16;
  lo.seed = 5;
  LoopConfig cfg;
  cfg.quiet = true;
  ScheduleConfig sched;
  sched.lr = 0.2;
  OptimizerConfig oc;
  oc.lr = 0.2;
  auto evaluator = [&](nn::Module& m) { return evaluate(m, test_set, 32, 3); };
  // A teacher trained on the labels.
  nn::ModulePtr trained = fixtures::small_mlp(7);
  {
    data::DataLoader loader(train_set, lo);
    auto opt = make_optimizer(oc, *trained);
    TrainState st;
    cfg.epochs = sched.epochs = 6;
    fit(*trained, *opt, loader, [](const Tensor& o, const Tensor& y) { return cross_entropy(o, y); }, sched, cfg, st,
        evaluator);
  }
  CountingTeacher teacher(trained);
  nn::ModulePtr student = fixtures::small_mlp(8);
  {
    Distiller d(*student, teacher, 2.0, 0.7);
    // In training mode the loss is the mix against the teacher's logits of the same batch.
    Generator gen(9);
    const Tensor x = randn({5, 1, 4, 4}, gen);
    const Tensor y = randint(0, 3, {5}, gen, DType::i64);
    student->train();
    const Tensor out = student->forward(x);
    Tensor t_logits;
    {
      NoGradGuard ng;
      t_logits = trained->forward(x);
    }
    EXPECT_EQ(d.loss()(out, y).item(), distillation_loss(out, t_logits, y, 2.0, 0.7).item());
    EXPECT_ERROR_HAS(d.loss()(out, y), "did not come from the student's training-mode forward");
    student->eval();
    EXPECT_ERROR_HAS(d.loss()(student->forward(x), y), "no teacher logits");
    teacher.calls = 0;
    data::DataLoader loader(train_set, lo);
    auto opt = make_optimizer(oc, *student);
    TrainState st;
    cfg.epochs = sched.epochs = 6;
    const EvalResult r = fit(*student, *opt, loader, d.loss(), sched, cfg, st, evaluator);
    EXPECT_EQ(teacher.calls, 6 * loader.num_batches()) << "one teacher forward per training batch, none in evaluation";
    EXPECT_GE(r.accuracy, 0.9);
  }
  EXPECT_EQ(student->interceptor(), nullptr) << "the Distiller removes itself";
  EXPECT_ERROR_HAS(Distiller(*student, teacher, -1.0, 0.5), "temperature");
}

}  // namespace
