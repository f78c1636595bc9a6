// Divergence detection (train/divergence.h).
#include "train/divergence.h"

#include <cmath>
#include <sstream>

#include "framework/grad_mode.h"

namespace finch::train {

std::string DivergenceGuard::observe(double loss) {
  ++steps_;
  if (steps_ <= c_.early_steps) {
    early_max_ = std::max(early_max_, std::fabs(loss));
    return "";
  }
  // A loss of exactly 0 early on (a solved toy task) leaves no scale: use a tiny one.
  const double range = std::max(early_max_, 1e-6);
  std::ostringstream why;
  why.precision(3);
  const auto factor = [](double f) { return std::to_string(int64_t(f)); };
  const auto early = [&] {
    return c_.early_steps == 1 ? std::string("the first step's") : "the largest of the first " + std::to_string(c_.early_steps) + " steps";
  };
  if (loss > c_.spike_factor * range) {
    why << "the training loss exploded to " << loss << ", over " << factor(c_.spike_factor) << "× its early range ("
        << early_max_ << ", " << early() << ")";
    return why.str();
  }
  above_ = loss > c_.sustained_factor * range ? above_ + 1 : 0;
  if (above_ >= c_.sustained_steps) {
    why << "the training loss stayed over " << factor(c_.sustained_factor) << "× its early range (" << early_max_
        << ", " << early() << ") for " << above_ << " steps, now " << loss;
    return why.str();
  }
  return "";
}

std::string first_non_finite_tensor(const nn::Module& model) {
  NoGradGuard ng;
  for (const auto& [name, t] : model.state_dict())
    if (first_non_finite(t) >= 0) return name;
  return "";
}

}  // namespace finch::train
