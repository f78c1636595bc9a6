// Training that goes wrong without a NaN: a loss far above the range it started in, or weights
// that are no longer finite. Only NaN/inf losses were caught before, so `--lr 30` trained to a
// loss of 1e34 and exited 0 with a useless model.
//
// The rule: the early range R is the largest loss of the first `early_steps` steps of a run (a
// fresh or resumed model's loss is at its highest then). One step by default: with --lr 30 the
// loss of LeNet-5 is already 9e3 at the third step, so a longer window lets the blow-up set R. The run has diverged when one step's
// loss exceeds `spike_factor`·R, or when `sustained_steps` steps in a row exceed
// `sustained_factor`·R. Healthy runs (including the first steps of a warm-up, and resumed runs,
// whose R is their own starting loss) stay well below both.
#pragma once

#include <cstdint>
#include <string>

#include "autograd/nn/module.h"

namespace finch::train {

struct DivergenceConfig {
  int64_t early_steps = 1;
  double spike_factor = 1000;
  double sustained_factor = 10;
  int64_t sustained_steps = 20;
};

class DivergenceGuard {
 public:
  explicit DivergenceGuard(DivergenceConfig c = {}) : c_(c) {}
  // Empty while the run looks healthy; otherwise what went wrong ("the training loss exploded to
  // 4.2e+05, over 1000× its early range (2.31, the first step's)"). `loss` must
  // be finite (non-finite losses are reported before this is asked).
  std::string observe(double loss);

 private:
  DivergenceConfig c_;
  int64_t steps_ = 0, above_ = 0;
  double early_max_ = 0;
};

// The first parameter or buffer of `model` holding a NaN or an infinity, by state-dict name, or
// "" when all are finite.
std::string first_non_finite_tensor(const nn::Module& model);

}  // namespace finch::train
