// Optimizer construction and LR schedules as functions of the step (see optim_config.h).
#include "train/optim_config.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "autograd/optim/optim.h"
#include "framework/error.h"

namespace finch::train {

std::unique_ptr<optim::Optimizer> make_optimizer(const OptimizerConfig& c, const nn::Module& model) {
  if (c.name == "sgd") {
    optim::SGDOptions so;
    so.lr = c.lr;
    so.momentum = c.momentum;
    so.weight_decay = c.weight_decay;
    so.nesterov = c.nesterov && c.momentum > 0;  // torch rejects Nesterov without momentum
    return std::make_unique<optim::SGD>(model.parameters(), so);
  }
  optim::AdamOptions ao;
  ao.lr = c.lr;
  ao.weight_decay = c.weight_decay;
  if (c.name == "adam") return std::make_unique<optim::Adam>(model.parameters(), ao);
  if (c.name == "adamw") return std::make_unique<optim::AdamW>(model.parameters(), ao);
  fail("make_optimizer: unknown optimizer '", c.name, "' (expected sgd, adam or adamw)");
}

ScheduleValue schedule_at(const ScheduleConfig& c, int64_t step, int64_t steps_per_epoch) {
  const int64_t total = std::max<int64_t>(1, steps_per_epoch * c.epochs);
  const int64_t warmup = std::min<int64_t>(total - 1, std::llround(c.warmup_epochs * double(steps_per_epoch)));
  ScheduleValue v{c.lr, std::nullopt};
  if (c.kind == "cosine") {
    v.lr = optim::warmup_cosine_lr(c.lr, step, warmup, total);
  } else if (c.kind == "step") {
    // Linear warm-up, then ×0.1 at 50 % and 75 % of the run (the classic ResNet recipe, scaled).
    if (step < warmup) {
      v.lr = c.lr * (1.0 / 3.0 + (2.0 / 3.0) * double(step) / double(warmup));
    } else {
      v.lr = optim::multistep_lr(c.lr, step, {total / 2, total * 3 / 4}, 0.1);
    }
  } else if (c.kind == "onecycle") {
    optim::OneCycleLR s{c.lr, total};
    const int64_t t = std::min(step, total - 1);
    v.lr = s.lr(t);
    v.momentum = s.momentum(t);
  } else if (c.kind == "cyclic") {
    optim::CyclicLR s{c.lr / 10.0, c.lr};
    s.step_size_up = std::max<int64_t>(1, total / 4);  // two full triangles over the run
    v.lr = s.lr(step);
    v.momentum = s.momentum(step);
  } else if (c.kind != "constant" && c.kind != "plateau") {
    fail("schedule: unknown schedule '", c.kind, "' (expected cosine, step, onecycle, cyclic, plateau or constant)");
  }
  return v;
}

double plateau_lr(const ScheduleConfig& c, const std::vector<double>& epoch_losses) {
  double lr = c.lr, best = std::numeric_limits<double>::infinity();
  int64_t wait = 0;
  for (double loss : epoch_losses) {
    if (loss < best - c.plateau_min_delta) {
      best = loss;
      wait = 0;
    } else if (++wait >= c.plateau_patience) {
      // Keras compares against min_lr as a float32; lr is always ≥ min_lr here, so '>' suffices.
      if (lr > c.plateau_min_lr) lr = std::max(lr * c.plateau_factor, c.plateau_min_lr);
      wait = 0;
    }
  }
  return lr;
}

double apply_schedule(const ScheduleConfig& c, optim::Optimizer& opt, int64_t step, int64_t steps_per_epoch) {
  const ScheduleValue v = schedule_at(c, step, steps_per_epoch);
  if (v.momentum) {
    if (auto* sgd = dynamic_cast<optim::SGD*>(&opt)) {
      if (sgd->options().momentum > 0) sgd->set_momentum(*v.momentum);
    } else if (auto* adam = dynamic_cast<optim::Adam*>(&opt)) {
      adam->set_beta1(*v.momentum);
    }
  }
  opt.set_lr(v.lr);
  return v.lr;
}

std::vector<std::pair<double, double>> schedule_curve(const ScheduleConfig& c, int64_t steps_per_epoch,
                                                      int64_t points) {
  const int64_t spe = std::max<int64_t>(1, steps_per_epoch);
  const int64_t total = std::max<int64_t>(1, spe * c.epochs);
  const int64_t stride = std::max<int64_t>(1, total / std::max<int64_t>(1, points));
  std::vector<std::pair<double, double>> curve;
  for (int64_t s = 0; s < total; s += stride) curve.emplace_back(double(s) / double(spe), schedule_at(c, s, spe).lr);
  if (curve.back().first != double(total - 1) / double(spe))
    curve.emplace_back(double(total - 1) / double(spe), schedule_at(c, total - 1, spe).lr);
  return curve;
}

}  // namespace finch::train
