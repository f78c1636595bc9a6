// optim::Optimizer: the base of SGD/Adam/AdamW. It holds the parameter list and the learning
// rate (settable, so LR schedules can drive it), steps under NoGradGuard, and saves/restores
// its state as named tensors so a checkpoint resumes bit for bit:
//   "state.<i>.<buffer>"        per-parameter state (i = index in the parameter list), e.g.
//                               "state.3.exp_avg", "state.3.step" (as torch's state dict)
//   "param_groups.0.<name>"     hyperparameters as f64 scalars ("param_groups.0.lr")
#pragma once

#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "autograd/nn/state_dict.h"
#include "framework/tensor.h"

namespace finch::optim {

class Optimizer {
 public:
  Optimizer(std::vector<Tensor> params, double lr, const char* name);
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // One update of every parameter whose .grad is defined (others are skipped, keeping state).
  virtual void step() = 0;
  // Drops every parameter's gradient (torch's zero_grad(set_to_none=True)).
  void zero_grad();

  double lr() const { return lr_; }
  void set_lr(double lr);
  const std::vector<Tensor>& params() const { return params_; }

  nn::StateDict state_dict() const;
  // Restores state and hyperparameters saved by state_dict() of an optimizer of the same kind
  // over parameters of the same shapes. Throws naming the first entry that does not fit.
  void load_state_dict(const nn::StateDict& dict);

 protected:
  // Per-parameter state buffers by name ("momentum_buffer", "exp_avg", ...); an empty map
  // until the parameter's first step. A step count lives in `steps_`.
  std::vector<std::map<std::string, Tensor>> state_;
  std::vector<int64_t> steps_;  // per parameter, -1 = not tracked by this optimizer
  // The hyperparameters saved under param_groups.0 (besides lr), by name.
  virtual std::vector<std::pair<std::string, double*>> hyperparameters() = 0;
  // The state buffer names this optimizer expects (for checking loaded dicts).
  virtual std::vector<std::string> state_names() const = 0;
  virtual bool tracks_steps() const { return false; }
  // Parameter i's gradient as a contiguous tensor of the parameter's dtype, or an undefined
  // tensor when it has none (the parameter is skipped this step). Throws on a shape mismatch.
  Tensor step_grad(size_t i) const;

  std::vector<Tensor> params_;
  double lr_;
  const char* name_;
};

// Splits [0, n) over the thread pool for elementwise updates of big parameters (small ones
// run inline: a pool round trip costs more than updating a few thousand floats).
void for_chunks(int64_t n, const std::function<void(int64_t, int64_t)>& fn);

}  // namespace finch::optim
