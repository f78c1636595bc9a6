// LR schedules: torch.optim.lr_scheduler's closed forms.
#include "autograd/optim/lr_schedule.h"

#include <cmath>

#include "framework/error.h"

namespace finch::optim {

double step_lr(double base_lr, int64_t epoch, int64_t step_size, double gamma) {
  if (step_size <= 0) fail("step_lr: step_size must be positive, got ", step_size);
  if (epoch < 0) fail("step_lr: epoch must be non-negative, got ", epoch);
  return base_lr * std::pow(gamma, double(epoch / step_size));
}

double multistep_lr(double base_lr, int64_t epoch, const std::vector<int64_t>& milestones, double gamma) {
  int64_t passed = 0;
  for (int64_t m : milestones) passed += m <= epoch;
  return base_lr * std::pow(gamma, double(passed));
}

double warmup_cosine_lr(double base_lr, int64_t step, int64_t warmup, int64_t total, double eta_min,
                        double start_factor) {
  if (warmup < 0 || total <= warmup)
    fail("warmup_cosine_lr: expected 0 <= warmup_steps < total_steps, got warmup_steps=", warmup,
         ", total_steps=", total);
  if (step < 0) fail("warmup_cosine_lr: step must be non-negative, got ", step);
  if (step < warmup) return base_lr * (start_factor + (1.0 - start_factor) * double(step) / double(warmup));
  const double t = double(step - warmup), T = double(total - warmup);
  return eta_min + (base_lr - eta_min) * (1.0 + std::cos(M_PI * t / T)) / 2.0;
}

namespace {

double anneal(const std::string& strategy, double start, double end, double pct) {
  if (strategy == "cos") return end + (start - end) / 2.0 * (std::cos(M_PI * pct) + 1.0);
  return (end - start) * pct + start;
}

struct Phase {
  double end_step, start_lr, end_lr, start_m, end_m;
};

// torch OneCycleLR._schedule_phases and get_lr's phase walk.
void one_cycle(const OneCycleLR& s, int64_t step, double& lr, double& mom) {
  if (s.total_steps <= 0) fail("OneCycleLR: total_steps must be positive, got ", s.total_steps);
  if (s.pct_start < 0 || s.pct_start > 1) fail("OneCycleLR: pct_start must be in [0, 1], got ", s.pct_start);
  if (s.anneal_strategy != "cos" && s.anneal_strategy != "linear")
    fail("OneCycleLR: anneal_strategy must be \"cos\" or \"linear\", got \"", s.anneal_strategy, "\"");
  if (step < 0 || step > s.total_steps)
    fail("OneCycleLR: step ", step, " is outside [0, total_steps=", s.total_steps, "]");
  const double initial = s.max_lr / s.div_factor, min_lr = initial / s.final_div_factor;
  const double n = double(s.total_steps);
  std::vector<Phase> phases;
  if (s.three_phase) {
    phases = {{s.pct_start * n - 1, initial, s.max_lr, s.max_momentum, s.base_momentum},
              {2 * s.pct_start * n - 2, s.max_lr, initial, s.base_momentum, s.max_momentum},
              {n - 1, initial, min_lr, s.max_momentum, s.max_momentum}};
  } else {
    phases = {{s.pct_start * n - 1, initial, s.max_lr, s.max_momentum, s.base_momentum},
              {n - 1, s.max_lr, min_lr, s.base_momentum, s.max_momentum}};
  }
  double start = 0;
  for (size_t i = 0; i < phases.size(); ++i) {
    const Phase& ph = phases[i];
    if (double(step) <= ph.end_step || i + 1 == phases.size()) {
      const double pct = (double(step) - start) / (ph.end_step - start);
      lr = anneal(s.anneal_strategy, ph.start_lr, ph.end_lr, pct);
      mom = anneal(s.anneal_strategy, ph.start_m, ph.end_m, pct);
      return;
    }
    start = ph.end_step;
  }
}

}  // namespace

double OneCycleLR::lr(int64_t step) const {
  double lr = 0, mom = 0;
  one_cycle(*this, step, lr, mom);
  return lr;
}

double OneCycleLR::momentum(int64_t step) const {
  double lr = 0, mom = 0;
  one_cycle(*this, step, lr, mom);
  return mom;
}

// torch CyclicLR.get_lr.
void CyclicLR::phase(int64_t step, double& height, double& scale) const {
  if (step_size_up <= 0) fail("CyclicLR: step_size_up must be positive, got ", step_size_up);
  const double up = double(step_size_up);
  const double down = step_size_down > 0 ? double(step_size_down) : up;
  const double total = up + down, ratio = up / total;
  const double cycle = std::floor(1.0 + double(step) / total);
  const double x = 1.0 + double(step) / total - cycle;
  height = x <= ratio ? x / ratio : (x - 1.0) / (ratio - 1.0);
  if (mode == "triangular") scale = 1.0;
  else if (mode == "triangular2") scale = 1.0 / std::pow(2.0, cycle - 1.0);
  else if (mode == "exp_range") scale = std::pow(gamma, double(step));  // scale_mode "iterations"
  else fail("CyclicLR: mode must be \"triangular\", \"triangular2\" or \"exp_range\", got \"", mode, "\"");
}

double CyclicLR::lr(int64_t step) const {
  double h, scale;
  phase(step, h, scale);
  return base_lr + (max_lr - base_lr) * h * scale;
}

double CyclicLR::momentum(int64_t step) const {
  double h, scale;
  phase(step, h, scale);
  return max_momentum - (max_momentum - base_momentum) * h * scale;
}

}  // namespace finch::optim
