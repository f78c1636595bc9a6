// optim::Optimizer: parameter bookkeeping, zero_grad, and state_dict save/restore.
#include "autograd/optim/optimizer.h"

#include <cmath>
#include <stdexcept>

#include "framework/parallel.h"

namespace finch::optim {

Tensor Optimizer::step_grad(size_t i) const {
  const Tensor& p = params_[i];
  const Tensor g = p.grad();
  if (!g.defined()) return g;
  if (g.shape() != p.shape())
    fail(name_, ".step: parameter ", i, " has shape ", shape_str(p.shape()), " but its grad has shape ",
         shape_str(g.shape()));
  return g.to(p.dtype()).contiguous();
}

Optimizer::Optimizer(std::vector<Tensor> params, double lr, const char* name)
    : state_(params.size()), steps_(params.size(), 0), params_(std::move(params)), lr_(lr), name_(name) {
  if (!(lr >= 0.0)) fail(name_, ": learning rate must be non-negative, got ", lr);
  if (params_.empty()) fail(name_, ": got an empty parameter list");
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i];
    if (!p.defined()) fail(name_, ": parameter ", i, " is an undefined tensor");
    if (p.dtype() != DType::f32 && p.dtype() != DType::f64)
      fail(name_, ": parameter ", i, " must be f32 or f64, got ", dtype_name(p.dtype()));
    if (!p.is_contiguous())
      fail(name_, ": parameter ", i, " of shape ", shape_str(p.shape()),
           " is not contiguous; optimizers update parameters as flat arrays");
    if (!p.is_leaf()) fail(name_, ": parameter ", i, " is not a leaf tensor (it has a grad_fn)");
  }
}

void Optimizer::zero_grad() {
  for (const auto& p : params_)
    if (p.grad().defined()) p.set_grad(Tensor());
}

void Optimizer::set_lr(double lr) {
  if (!(lr >= 0.0)) fail(name_, ".set_lr: learning rate must be non-negative, got ", lr);
  lr_ = lr;
}

nn::StateDict Optimizer::state_dict() const {
  nn::StateDict d;
  for (size_t i = 0; i < params_.size(); ++i) {
    const std::string prefix = "state." + std::to_string(i) + ".";
    if (tracks_steps() && steps_[i] > 0) d.insert(prefix + "step", scalar_tensor(double(steps_[i]), DType::i64));
    for (const auto& [name, t] : state_[i]) d.insert(prefix + name, t.clone());
  }
  d.insert("param_groups.0.lr", scalar_tensor(lr_, DType::f64));
  for (auto& [name, ptr] : const_cast<Optimizer*>(this)->hyperparameters())
    d.insert("param_groups.0." + name, scalar_tensor(*ptr, DType::f64));
  return d;
}

void Optimizer::load_state_dict(const nn::StateDict& dict) {
  auto scalar = [&](const std::string& key) -> double {
    const Tensor* t = dict.find(key);
    if (!t) fail(name_, ".load_state_dict: the dict has no entry '", key, "'");
    if (t->numel() != 1) fail(name_, ".load_state_dict: '", key, "' must hold one value, got shape ", shape_str(t->shape()));
    return t->item();
  };
  // Check everything before touching any state, so a bad dict leaves the optimizer as it was.
  std::vector<std::map<std::string, Tensor>> state(params_.size());
  std::vector<int64_t> steps(params_.size(), 0);
  const auto names = state_names();
  for (const auto& [key, t] : dict) {
    if (key.rfind("param_groups.0.", 0) == 0) continue;
    size_t i = 0;
    std::string buf;
    const size_t dot = key.find('.', 6);
    try {
      if (key.rfind("state.", 0) != 0 || dot == std::string::npos) throw std::invalid_argument(key);
      i = std::stoul(key.substr(6, dot - 6));
      buf = key.substr(dot + 1);
    } catch (const std::exception&) {
      fail(name_, ".load_state_dict: unexpected entry '", key, "'");
    }
    if (i >= params_.size())
      fail(name_, ".load_state_dict: entry '", key, "' refers to parameter ", i, " but the optimizer has ",
           params_.size(), " parameters");
    if (buf == "step" && tracks_steps()) {
      steps[i] = int64_t(t.item());
      continue;
    }
    bool known = false;
    for (const auto& n : names) known |= n == buf;
    if (!known) fail(name_, ".load_state_dict: unexpected entry '", key, "'");
    if (t.shape() != params_[i].shape())
      fail(name_, ".load_state_dict: '", key, "' has shape ", shape_str(t.shape()),
           " but parameter ", i, " has shape ", shape_str(params_[i].shape()));
    state[i][buf] = t.to(params_[i].dtype()).clone();
  }
  const double lr = scalar("param_groups.0.lr");
  std::vector<std::pair<double*, double>> hyper;
  for (auto& [name, ptr] : hyperparameters()) hyper.emplace_back(ptr, scalar("param_groups.0." + name));
  set_lr(lr);
  for (auto& [ptr, v] : hyper) *ptr = v;
  state_ = std::move(state);
  steps_ = std::move(steps);
}

void for_chunks(int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
  // 64K elements per chunk: large enough to amortize the pool hand-off, small enough that a
  // ResNet's big conv weights spread over all threads.
  constexpr int64_t kGrain = 1 << 16;
  if (n < 2 * kGrain) fn(0, n);
  else parallel_for(0, n, kGrain, fn);
}

}  // namespace finch::optim
