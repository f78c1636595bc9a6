// Learning-rate schedules as pure functions of the step (or epoch) number, with torch's
// formulas, so a schedule is reproducible from the step counter alone (no hidden state to
// checkpoint). Drive an optimizer with `opt.set_lr(schedule(step))`.
// `step` counts scheduler steps as torch's last_epoch does: 0 before the first
// scheduler.step(), 1 after it, ...
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace finch::optim {

// torch StepLR: base_lr · gamma^⌊epoch / step_size⌋.
double step_lr(double base_lr, int64_t epoch, int64_t step_size, double gamma = 0.1);

// torch MultiStepLR: base_lr · gamma^(number of milestones <= epoch).
double multistep_lr(double base_lr, int64_t epoch, const std::vector<int64_t>& milestones,
                    double gamma = 0.1);

// Linear warm-up then cosine annealing, equal to torch's
// SequentialLR([LinearLR(start_factor, 1.0, warmup_steps), CosineAnnealingLR(total_steps −
// warmup_steps, eta_min)], milestones=[warmup_steps]):
//   step < warmup: base_lr · (start_factor + (1 − start_factor)·step/warmup)
//   after:         eta_min + (base_lr − eta_min)·(1 + cos(π·(step − warmup)/(total − warmup)))/2
// Steps past total_steps continue the cosine (as torch's CosineAnnealingLR does).
double warmup_cosine_lr(double base_lr, int64_t step, int64_t warmup_steps, int64_t total_steps,
                        double eta_min = 0.0, double start_factor = 1.0 / 3.0);

// torch OneCycleLR (Smith & Topin 2017): lr rises from max_lr/div_factor to max_lr over
// pct_start of total_steps, then falls to max_lr/(div_factor·final_div_factor); momentum
// (or Adam's beta1) moves the opposite way between max_momentum and base_momentum.
struct OneCycleLR {
  double max_lr;
  int64_t total_steps;
  double pct_start = 0.3;
  std::string anneal_strategy = "cos";  // or "linear"
  double div_factor = 25.0;
  double final_div_factor = 1e4;
  bool three_phase = false;
  double base_momentum = 0.85, max_momentum = 0.95;

  double lr(int64_t step) const;        // step in [0, total_steps)
  double momentum(int64_t step) const;  // for cycle_momentum=True
};

// torch CyclicLR, modes "triangular", "triangular2" and "exp_range" (scale_mode as torch's
// default for each mode). Momentum cycles inversely (cycle_momentum=True).
struct CyclicLR {
  double base_lr, max_lr;
  int64_t step_size_up = 2000;
  int64_t step_size_down = 0;  // 0: = step_size_up
  std::string mode = "triangular";
  double gamma = 1.0;
  double base_momentum = 0.8, max_momentum = 0.9;

  double lr(int64_t step) const;
  double momentum(int64_t step) const;

 private:
  // The position in the cycle (0..1 up, 1..0 down) and the mode's amplitude scale.
  void phase(int64_t step, double& height, double& scale) const;
};

}  // namespace finch::optim
