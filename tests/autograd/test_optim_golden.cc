// Optimizers, LR schedules and clip_grad_norm_ against numbers printed by PyTorch 1.13
// (tests/golden/make_optim_goldens.py writes tests/golden/data/optim_goldens.safetensors).
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <memory>

#include "autograd/optim/optim.h"
#include "tests/golden/golden.h"

using namespace finch;

namespace {

const SafetensorsFile& G() {
  static const SafetensorsFile g = test::load_golden("optim_goldens.safetensors");
  return g;
}

const Tensor& gold(const std::string& name) { return G().at(name); }

using test::expect_close;

using MakeOpt = std::function<std::unique_ptr<optim::Optimizer>(std::vector<Tensor>)>;

// Five steps with the golden gradients (p1 has none at step 2); after each step the
// parameters must match torch's to 1e-6 relative.
void run_trajectory(const std::string& name, const MakeOpt& make) {
  std::vector<Tensor> ps = {gold("init.p0").clone(), gold("init.p1").clone()};
  for (auto& p : ps) p.set_requires_grad(true);
  auto opt = make(ps);
  for (int k = 0; k < 5; ++k) {
    for (size_t i = 0; i < ps.size(); ++i) {
      const std::string g = "grad.s" + std::to_string(k) + ".p" + std::to_string(i);
      ps[i].set_grad(G().contains(g) ? gold(g).clone() : Tensor());
    }
    opt->step();
    for (size_t i = 0; i < ps.size(); ++i) {
      const std::string key = name + ".s" + std::to_string(k) + ".p" + std::to_string(i);
      expect_close(ps[i], gold(key), /*atol=*/1e-7, /*rtol=*/1e-6, key);
    }
  }
}

}  // namespace

TEST(OptimGolden, SGDNesterovWeightDecay) {
  run_trajectory("sgd_nesterov", [](std::vector<Tensor> ps) {
    return std::make_unique<optim::SGD>(ps, optim::SGDOptions{.lr = 0.1, .momentum = 0.9, .weight_decay = 0.01, .nesterov = true});
  });
}

TEST(OptimGolden, SGDDampening) {
  run_trajectory("sgd_dampening", [](std::vector<Tensor> ps) {
    return std::make_unique<optim::SGD>(ps, optim::SGDOptions{.lr = 0.05, .momentum = 0.8, .dampening = 0.3, .weight_decay = 0.001});
  });
}

TEST(OptimGolden, SGDPlain) {
  run_trajectory("sgd_plain", [](std::vector<Tensor> ps) {
    return std::make_unique<optim::SGD>(ps, optim::SGDOptions{.lr = 0.1, .weight_decay = 0.01});
  });
}

TEST(OptimGolden, AdamL2) {
  run_trajectory("adam", [](std::vector<Tensor> ps) {
    return std::make_unique<optim::Adam>(ps, optim::AdamOptions{.lr = 0.01, .weight_decay = 0.01});
  });
}

TEST(OptimGolden, AdamAmsgrad) {
  run_trajectory("adam_amsgrad", [](std::vector<Tensor> ps) {
    return std::make_unique<optim::Adam>(
        ps, optim::AdamOptions{.lr = 0.02, .beta1 = 0.8, .beta2 = 0.99, .eps = 1e-6, .amsgrad = true});
  });
}

TEST(OptimGolden, AdamW) {
  run_trajectory("adamw", [](std::vector<Tensor> ps) {
    return std::make_unique<optim::AdamW>(ps, optim::AdamOptions{.lr = 0.01, .weight_decay = 0.1});
  });
}

TEST(OptimGolden, AdamWAmsgrad) {
  run_trajectory("adamw_amsgrad", [](std::vector<Tensor> ps) {
    return std::make_unique<optim::AdamW>(ps, optim::AdamOptions{.lr = 0.01, .weight_decay = 0.05, .amsgrad = true});
  });
}

// ---- schedules: every value torch printed, to 1e-12 relative (torch chains multiplications,
// finch uses the closed forms) ----

void expect_schedule(const std::string& name, const std::function<double(int64_t)>& lr,
                     const std::function<double(int64_t)>& momentum = nullptr) {
  const auto want = gold("sched." + name + ".lr").to_vector<double>();
  const auto want_m = gold("sched." + name + ".momentum").to_vector<double>();
  for (size_t s = 0; s < want.size(); ++s) {
    EXPECT_NEAR(lr(int64_t(s)), want[s], 1e-12 * std::abs(want[s]) + 1e-15) << name << " step " << s;
    if (momentum) {
      EXPECT_NEAR(momentum(int64_t(s)), want_m[s], 1e-12) << name << " momentum step " << s;
    }
  }
}

TEST(OptimGolden, StepAndMultiStepLR) {
  expect_schedule("step", [](int64_t e) { return optim::step_lr(0.1, e, 3, 0.5); });
  expect_schedule("multistep", [](int64_t e) { return optim::multistep_lr(0.1, e, {2, 5, 9}, 0.1); });
}

TEST(OptimGolden, WarmupCosine) {
  expect_schedule("warmup_cosine", [](int64_t s) { return optim::warmup_cosine_lr(0.1, s, 5, 20, 1e-3, 0.25); });
}

TEST(OptimGolden, OneCycle) {
  optim::OneCycleLR cos{.max_lr = 0.5, .total_steps = 20, .pct_start = 0.3};
  expect_schedule("onecycle_cos", [&](int64_t s) { return cos.lr(s); }, [&](int64_t s) { return cos.momentum(s); });
  optim::OneCycleLR lin3{.max_lr = 0.2, .total_steps = 25, .pct_start = 0.25, .anneal_strategy = "linear",
                         .div_factor = 10, .final_div_factor = 100, .three_phase = true,
                         .base_momentum = 0.8, .max_momentum = 0.9};
  expect_schedule("onecycle_linear3", [&](int64_t s) { return lin3.lr(s); }, [&](int64_t s) { return lin3.momentum(s); });
  EXPECT_THROW(cos.lr(21), Error);
}

TEST(OptimGolden, Cyclic) {
  optim::CyclicLR tri{.base_lr = 0.01, .max_lr = 0.1, .step_size_up = 4};
  expect_schedule("cyclic_triangular", [&](int64_t s) { return tri.lr(s); }, [&](int64_t s) { return tri.momentum(s); });
  optim::CyclicLR tri2{.base_lr = 0.01, .max_lr = 0.1, .step_size_up = 3, .step_size_down = 5, .mode = "triangular2"};
  expect_schedule("cyclic_triangular2", [&](int64_t s) { return tri2.lr(s); }, [&](int64_t s) { return tri2.momentum(s); });
  optim::CyclicLR exp{.base_lr = 0.01, .max_lr = 0.1, .step_size_up = 4, .mode = "exp_range", .gamma = 0.97};
  expect_schedule("cyclic_exp_range", [&](int64_t s) { return exp.lr(s); }, [&](int64_t s) { return exp.momentum(s); });
}

// ---- clip_grad_norm_ ----

TEST(OptimGolden, ClipGradNorm) {
  struct Case {
    const char* name;
    double max_norm, norm_type;
  };
  for (const Case& c : {Case{"l2_clip", 1.0, 2.0}, Case{"l2_noclip", 1e3, 2.0}, Case{"inf", 0.5, INFINITY},
                        Case{"l1", 10.0, 1.0}, Case{"l3", 2.0, 3.0}}) {
    std::vector<Tensor> ps;
    for (int i = 0; i < 3; ++i) {
      const Tensor& g = gold("clip.g" + std::to_string(i));
      ps.push_back(zeros(g.shape()).set_requires_grad(true));
      ps.back().set_grad(g.clone());
    }
    ps.push_back(zeros({2}).set_requires_grad(true));  // no grad: skipped
    const double total = optim::clip_grad_norm_(ps, c.max_norm, c.norm_type);
    const double want = gold(std::string("clip.") + c.name + ".total").item();
    EXPECT_NEAR(total, want, 1e-6 * want) << c.name;
    for (int i = 0; i < 3; ++i)
      expect_close(ps[size_t(i)].grad(),
                   gold(std::string("clip.") + c.name + ".g" + std::to_string(i)),
                   /*atol=*/1e-7, /*rtol=*/1e-6, c.name);
    EXPECT_FALSE(ps[3].grad().defined());
  }
}
