// Optimizer and learning-rate schedule of a training run, configured by two small structs:
// which optimizer with which hyper-parameters, and the LR (and momentum) as a pure function of
// the global step, so resuming at any step needs no scheduler state.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "autograd/nn/module.h"
#include "autograd/optim/optimizer.h"

namespace finch::train {

struct OptimizerConfig {
  std::string name = "sgd";  // sgd, adam or adamw
  double lr = 0.1;
  double momentum = 0.9;     // SGD only
  bool nesterov = true;      // SGD only, and only with momentum > 0 (torch rejects it otherwise)
  double weight_decay = 0;
};

std::unique_ptr<optim::Optimizer> make_optimizer(const OptimizerConfig& c, const nn::Module& model);

struct ScheduleConfig {
  // cosine: linear warm-up then cosine decay to 0; step: warm-up then ×0.1 at 50 % and 75 %;
  // onecycle: Smith's 1cycle (LR and momentum); cyclic: two triangles between lr/10 and lr;
  // constant: lr throughout.
  std::string kind = "cosine";
  double lr = 0.1;            // the peak (base) learning rate
  int64_t epochs = 1;         // the length of the schedule (not of one run that stops early)
  double warmup_epochs = 0;
};

struct ScheduleValue {
  double lr = 0;
  std::optional<double> momentum;  // onecycle and cyclic also cycle the momentum (β1 for Adam)
};

// The schedule at global step `step` (0-based) of a run of steps_per_epoch × c.epochs steps.
// Unknown kinds are a finch::Error sentence.
ScheduleValue schedule_at(const ScheduleConfig& c, int64_t step, int64_t steps_per_epoch);

// Sets schedule_at(...) on `opt` (momentum only where the optimizer has it); returns the lr.
double apply_schedule(const ScheduleConfig& c, optim::Optimizer& opt, int64_t step, int64_t steps_per_epoch);

// The schedule's learning rate at up to `points` evenly spaced steps of the whole run (and its
// last step), as (x in epochs, lr) pairs for the report's learning-rate curve.
std::vector<std::pair<double, double>> schedule_curve(const ScheduleConfig& c, int64_t steps_per_epoch,
                                                      int64_t points = 200);

}  // namespace finch::train
