// Optimizer behavior beyond the torch goldens: checkpoint round trips (bit-identical resume),
// state_dict names, load errors, skipped parameters, lr control, thread-count independence,
// f64 parameters, clip_grad_norm_/clip_grad_value_ edge cases and schedule argument checks.
#include <gtest/gtest.h>
#include <hwy/targets.h>

#include <cmath>
#include <functional>
#include <memory>

#include "tests/hwy_targets.h"
#include "autograd/optim/optim.h"
#include "autograd/optim/update_kernels.h"
#include "framework/parallel.h"
#include "framework/random.h"

using namespace finch;

namespace {

std::vector<Tensor> make_params(uint64_t seed, DType dt = DType::f32) {
  Generator g(seed);
  std::vector<Tensor> ps = {randn({6, 5}, g, dt), randn({5}, g, dt), randn({3, 2, 2}, g, dt)};
  for (auto& p : ps) p.set_requires_grad(true);
  return ps;
}

// Deterministic gradients for step k (parameter 2 gets none on odd steps).
void set_grads(std::vector<Tensor>& ps, int k) {
  Generator g(100 + uint64_t(k));
  for (size_t i = 0; i < ps.size(); ++i)
    ps[i].set_grad(i == 2 && k % 2 ? Tensor() : randn(ps[i].shape(), g, ps[i].dtype()));
}

std::vector<Tensor> clone_all(const std::vector<Tensor>& ps) {
  std::vector<Tensor> out;
  for (const auto& p : ps) {
    out.push_back(p.detach().clone());
    out.back().set_requires_grad(true);
  }
  return out;
}

using MakeOpt = std::function<std::unique_ptr<optim::Optimizer>(std::vector<Tensor>)>;

const std::vector<std::pair<std::string, MakeOpt>>& optimizers() {
  static const std::vector<std::pair<std::string, MakeOpt>> v = {
      {"sgd", [](std::vector<Tensor> p) {
         return std::make_unique<optim::SGD>(p, optim::SGDOptions{.lr = 0.05, .momentum = 0.9, .weight_decay = 1e-3, .nesterov = true});
       }},
      {"adam", [](std::vector<Tensor> p) {
         return std::make_unique<optim::Adam>(p, optim::AdamOptions{.lr = 0.01, .weight_decay = 1e-2, .amsgrad = true});
       }},
      {"adamw", [](std::vector<Tensor> p) {
         return std::make_unique<optim::AdamW>(p, optim::AdamOptions{.lr = 0.01, .weight_decay = 0.1});
       }},
  };
  return v;
}

}  // namespace

// Save after 2 steps, restore into a fresh optimizer over copies of the parameters, go on for
// 3 more: the result is bit-identical to 5 uninterrupted steps.
TEST(Optim, StateRoundTripResumesBitIdentically) {
  for (const auto& [name, make] : optimizers()) {
    auto ref = make_params(1);
    auto ref_opt = make(ref);
    for (int k = 0; k < 5; ++k) {
      set_grads(ref, k);
      ref_opt->step();
      if (k == 2) ref_opt->set_lr(ref_opt->lr() * 0.5);  // the lr is part of the state too
    }
    auto ps = make_params(1);
    auto opt = make(ps);
    for (int k = 0; k < 2; ++k) {
      set_grads(ps, k);
      opt->step();
    }
    const nn::StateDict saved = opt->state_dict();
    auto resumed = clone_all(ps);
    auto opt2 = make(resumed);
    opt2->set_lr(123.0);  // overwritten by the load
    opt2->load_state_dict(saved);
    for (int k = 2; k < 5; ++k) {
      set_grads(resumed, k);
      opt2->step();
      if (k == 2) opt2->set_lr(opt2->lr() * 0.5);
    }
    for (size_t i = 0; i < ps.size(); ++i)
      EXPECT_EQ(resumed[i].to_vector<float>(), ref[i].to_vector<float>()) << name << " param " << i;
    // The saved state is a copy: stepping the first optimizer again does not change it.
    const auto before = saved.begin()->second.to_vector<float>();
    set_grads(ps, 9);
    opt->step();
    EXPECT_EQ(saved.begin()->second.to_vector<float>(), before) << name;
  }
}

TEST(Optim, StateDictNames) {
  auto ps = make_params(2);
  optim::Adam adam(ps, {.amsgrad = true});
  set_grads(ps, 1);  // parameter 2 has no grad: no state for it
  adam.step();
  EXPECT_EQ(adam.state_dict().keys(),
            (std::vector<std::string>{"state.0.step", "state.0.exp_avg", "state.0.exp_avg_sq",
                                      "state.0.max_exp_avg_sq", "state.1.step", "state.1.exp_avg",
                                      "state.1.exp_avg_sq", "state.1.max_exp_avg_sq",
                                      "param_groups.0.lr", "param_groups.0.beta1", "param_groups.0.beta2",
                                      "param_groups.0.eps", "param_groups.0.weight_decay"}));
  EXPECT_EQ(adam.state_dict().at("state.1.step").item(), 1.0);
  optim::SGD sgd(ps, {.lr = 0.1, .momentum = 0.5});
  sgd.step();
  EXPECT_EQ(sgd.state_dict().keys(),
            (std::vector<std::string>{"state.0.momentum_buffer", "state.1.momentum_buffer",
                                      "param_groups.0.lr", "param_groups.0.momentum",
                                      "param_groups.0.dampening", "param_groups.0.weight_decay"}));
}

TEST(Optim, LoadStateDictRejectsMismatches) {
  auto ps = make_params(3);
  optim::Adam adam(ps, {});
  set_grads(ps, 0);
  adam.step();
  auto good = adam.state_dict();
  auto with = [&](const std::string& key, const Tensor& t) {
    nn::StateDict d;
    for (const auto& [n, v] : good) d.insert(n, n == key ? t : v);
    if (!good.contains(key)) d.insert(key, t);
    return d;
  };
  EXPECT_THROW(adam.load_state_dict(with("state.0.exp_avg", zeros({5, 6}))), Error);
  EXPECT_THROW(adam.load_state_dict(with("state.7.exp_avg", zeros({5}))), Error);
  EXPECT_THROW(adam.load_state_dict(with("state.0.momentum_buffer", zeros({6, 5}))), Error);
  EXPECT_THROW(adam.load_state_dict(with("bogus", zeros({1}))), Error);
  nn::StateDict no_lr;
  for (const auto& [n, v] : good)
    if (n != "param_groups.0.lr") no_lr.insert(n, v);
  try {
    adam.load_state_dict(no_lr);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("param_groups.0.lr"), std::string::npos) << e.what();
  }
  // A failed load leaves the optimizer untouched.
  EXPECT_EQ(adam.state_dict().at("state.0.exp_avg").to_vector<float>(),
            good.at("state.0.exp_avg").to_vector<float>());
}

TEST(Optim, SkipsParametersWithoutGradient) {
  for (const auto& [name, make] : optimizers()) {
    auto ps = make_params(4);
    const auto p2 = ps[2].to_vector<float>();
    auto opt = make(ps);
    set_grads(ps, 1);  // odd step: parameter 2 has no gradient
    const auto p0 = ps[0].to_vector<float>();
    opt->step();
    EXPECT_EQ(ps[2].to_vector<float>(), p2) << name;
    EXPECT_NE(ps[0].to_vector<float>(), p0) << name;
    EXPECT_FALSE(opt->state_dict().contains("state.2.exp_avg")) << name;
    EXPECT_FALSE(opt->state_dict().contains("state.2.momentum_buffer")) << name;
    opt->zero_grad();
    for (auto& p : ps) EXPECT_FALSE(p.grad().defined()) << name;
  }
}

TEST(Optim, LearningRateIsSettableAndValidated) {
  std::vector<Tensor> ps = {ones({4}).set_requires_grad(true)};
  optim::SGD sgd(ps, {.lr = 0.5});
  ps[0].set_grad(ones({4}));
  sgd.step();
  EXPECT_FLOAT_EQ(float(ps[0].get({0})), 0.5f);
  sgd.set_lr(0.25);
  EXPECT_EQ(sgd.lr(), 0.25);
  sgd.step();
  EXPECT_FLOAT_EQ(float(ps[0].get({3})), 0.25f);
  EXPECT_THROW(sgd.set_lr(-1.0), Error);
  EXPECT_THROW(optim::SGD(ps, {.lr = 0.1, .nesterov = true}), Error);  // Nesterov needs momentum
  EXPECT_THROW(optim::Adam(ps, {.beta1 = 1.0}), Error);
  EXPECT_THROW(optim::SGD(std::vector<Tensor>{}, {}), Error);
  EXPECT_THROW(sgd.set_momentum(0.9), Error);  // built without momentum buffers
  // Momentum cycling: the schedule drives SGD's momentum / Adam's beta1, saved with the state.
  const optim::OneCycleLR oc{.max_lr = 0.1, .total_steps = 10};
  optim::SGD msgd(ps, {.lr = 0.1, .momentum = 0.9});
  msgd.set_momentum(oc.momentum(3));
  EXPECT_EQ(msgd.state_dict().at("param_groups.0.momentum").item(), oc.momentum(3));
  optim::Adam madam(ps, {});
  madam.set_beta1(oc.momentum(4));
  EXPECT_EQ(madam.state_dict().at("param_groups.0.beta1").item(), oc.momentum(4));
  EXPECT_THROW(madam.set_beta1(1.5), Error);
  std::vector<Tensor> ints = {zeros({2}, DType::i64)};
  EXPECT_THROW(optim::SGD(ints, {}), Error);
  Tensor nc = zeros({4, 3}).t();
  EXPECT_THROW(optim::SGD({nc}, {}), Error);
  ps[0].set_grad(ones({5}));
  EXPECT_THROW(sgd.step(), Error);  // gradient shape differs from the parameter's
}

// Big parameters go through parallel_for; elementwise updates must not depend on the split.
TEST(Optim, ResultIndependentOfThreadCount) {
  const int saved = get_num_threads();
  std::vector<std::vector<float>> results;
  for (int threads : {1, 2, 3}) {
    set_num_threads(threads);
    Generator g(8);
    std::vector<Tensor> ps = {randn({300001}, g).set_requires_grad(true)};
    optim::AdamW opt(ps, {.lr = 1e-3, .weight_decay = 0.01, .amsgrad = true});
    for (int k = 0; k < 3; ++k) {
      ps[0].set_grad(randn({300001}, g));
      opt.step();
    }
    results.push_back(ps[0].to_vector<float>());
  }
  set_num_threads(saved);
  EXPECT_EQ(results[0], results[1]);
  EXPECT_EQ(results[0], results[2]);
}

// f64 parameters: one Adam step against the formula evaluated in double.
TEST(Optim, AdamF64MatchesFormula) {
  std::vector<Tensor> ps = {from_vector<double>({0.5, -1.25, 2.0}, {3}).set_requires_grad(true)};
  const std::vector<double> g = {0.1, -0.3, 2.5};
  optim::Adam adam(ps, {.lr = 0.1, .beta1 = 0.8, .beta2 = 0.9, .eps = 1e-3, .weight_decay = 0.2});
  ps[0].set_grad(from_vector<double>(g, {3}));
  adam.step();
  const std::vector<double> p0 = {0.5, -1.25, 2.0};
  for (int i = 0; i < 3; ++i) {
    const double gi = g[i] + 0.2 * p0[i];
    const double m = 0.2 * gi, v = 0.1 * gi * gi;
    const double want = p0[i] - 0.1 / 0.2 * m / (std::sqrt(v) / std::sqrt(0.1) + 1e-3);
    EXPECT_NEAR(ps[0].get({i}), want, 1e-14);
  }
}

TEST(ClipGrad, NormsAndEdgeCases) {
  std::vector<Tensor> ps = {zeros({2}).set_requires_grad(true), zeros({1}).set_requires_grad(true),
                            zeros({3}).set_requires_grad(true)};
  ps[0].set_grad(from_vector<float>({3, 0}, {2}));
  ps[1].set_grad(from_vector<float>({-4}, {1}));  // ps[2] has no gradient
  const double total = optim::clip_grad_norm_(ps, 1.0);
  EXPECT_NEAR(total, 5.0, 1e-6);
  EXPECT_NEAR(ps[0].grad().get({0}), 3.0 / (5.0 + 1e-6), 1e-6);
  EXPECT_NEAR(ps[1].grad().get({0}), -4.0 / (5.0 + 1e-6), 1e-6);
  // Under the limit: untouched.
  EXPECT_NEAR(optim::clip_grad_norm_(ps, 10.0), 1.0, 1e-5);
  EXPECT_NEAR(ps[1].grad().get({0}), -4.0 / (5.0 + 1e-6), 1e-6);
  // No gradients at all: 0, as torch.
  std::vector<Tensor> none = {zeros({2}).set_requires_grad(true)};
  EXPECT_EQ(optim::clip_grad_norm_(none, 1.0), 0.0);
  // Non-finite norms.
  ps[0].set_grad(from_vector<float>({NAN, 1}, {2}));
  EXPECT_THROW(optim::clip_grad_norm_(ps, 1.0, 2.0, /*error_if_nonfinite=*/true), Error);
  EXPECT_TRUE(std::isnan(optim::clip_grad_norm_(ps, 1.0)));
  // Value clipping.
  ps[0].set_grad(from_vector<float>({-3, 0.5}, {2}));
  optim::clip_grad_value_(ps, 1.0);
  EXPECT_EQ(ps[0].grad().to_vector<float>(), (std::vector<float>{-1, 0.5}));
  // A big gradient (parallel path) scaled exactly like a small one.
  std::vector<Tensor> big = {zeros({500000}).set_requires_grad(true)};
  big[0].set_grad(full({500000}, 2.0));
  EXPECT_NEAR(optim::clip_grad_norm_(big, 1.0), 2.0 * std::sqrt(500000.0), 1e-2);
  EXPECT_NEAR(big[0].grad().get({499999}), 1.0 / std::sqrt(500000.0), 1e-7);
}

TEST(LrSchedule, ArgumentChecksAndShapes) {
  EXPECT_THROW(optim::step_lr(0.1, 3, 0), Error);
  EXPECT_THROW(optim::warmup_cosine_lr(0.1, 0, 10, 10), Error);
  EXPECT_DOUBLE_EQ(optim::warmup_cosine_lr(0.1, 0, 0, 10, 0.0), 0.1);  // no warm-up
  EXPECT_NEAR(optim::warmup_cosine_lr(0.1, 10, 0, 10, 0.01), 0.01, 1e-15);
  optim::OneCycleLR oc{.max_lr = 1.0, .total_steps = 10};
  EXPECT_NEAR(oc.lr(0), 1.0 / 25, 1e-15);
  EXPECT_NEAR(oc.lr(9), 1.0 / 25 / 1e4, 1e-15);
  optim::OneCycleLR bad{.max_lr = 1.0, .total_steps = 10, .anneal_strategy = "step"};
  EXPECT_THROW(bad.lr(0), Error);
  optim::CyclicLR c{.base_lr = 0.1, .max_lr = 1.0, .step_size_up = 2, .mode = "sawtooth"};
  EXPECT_THROW(c.lr(0), Error);
}

// The Highway Adam kernel against the scalar reference, bit for bit (neither fuses a
// multiply-add), on every compiled target, with and without amsgrad, over sizes that hit
// whole vectors, tails and misaligned starts.
TEST(OptimKernels, AdamHighwayMatchesReferenceOnEveryTarget) {
  using optim::kernels::AdamScalars;
  const AdamScalars s{.decay = 1.0 - 1e-3 * 0.1, .l2 = 0.01, .beta1 = 0.9, .beta2 = 0.999,
                      .step_size = 1e-3 / (1.0 - std::pow(0.9, 3.0)),
                      .bc2_sqrt = std::sqrt(1.0 - std::pow(0.999, 3.0)), .eps = 1e-8};
  std::vector<int64_t> sizes;
  for (int64_t n = 1; n <= 40; ++n) sizes.push_back(n);
  for (int64_t n : {63, 64, 65, 127, 128, 129, 255, 256, 257, 1000}) sizes.push_back(n);
  for (int64_t target : ::finch::test::hwy_targets_to_test()) {
    hwy::SetSupportedTargetsForTest(target);
    for (int64_t n : sizes)
      for (int64_t offset : {0, 1, 3})
        for (bool ams : {false, true}) {
          Generator g(uint64_t(n * 7 + offset));
          std::vector<float> base[5];
          for (auto& b : base) {
            Tensor t = randn({n + offset}, g);
            b = t.to_vector<float>();
          }
          for (float& x : base[3]) x = std::abs(x);  // v >= 0
          for (float& x : base[4]) x = std::abs(x);
          auto ref = std::vector<std::vector<float>>(std::begin(base), std::end(base));
          auto hw = ref;
          optim::kernels::adam_reference<float>(ref[0].data() + offset, ref[1].data() + offset,
                                                ref[2].data() + offset, ref[3].data() + offset,
                                                ams ? ref[4].data() + offset : nullptr, n, s);
          optim::kernels::adam_f32(hw[0].data() + offset, hw[1].data() + offset, hw[2].data() + offset,
                                   hw[3].data() + offset, ams ? hw[4].data() + offset : nullptr, n, s);
          ASSERT_EQ(hw, ref) << hwy::TargetName(target) << " n=" << n << " offset=" << offset << " amsgrad=" << ams;
        }
  }
  hwy::SetSupportedTargetsForTest(0);
}
