// Adam / AdamW: one fused pass per parameter over p, grad, exp_avg, exp_avg_sq (and
// max_exp_avg_sq with amsgrad), instead of torch's five separate tensor ops; the kernels are in
// update_kernels.h (reference) and update_hwy.cc (Highway F32).
#include "autograd/optim/adam.h"

#include <cmath>

#include "autograd/optim/update_kernels.h"
#include "framework/grad_mode.h"

namespace finch::optim {

using kernels::AdamScalars;

Adam::Adam(std::vector<Tensor> params, const AdamOptions& o) : Adam(std::move(params), o, false, "Adam") {}

Adam::Adam(std::vector<Tensor> params, const AdamOptions& o, bool decoupled, const char* name)
    : Optimizer(std::move(params), o.lr, name), opt_(o), decoupled_(decoupled) {
  if (!(o.eps >= 0.0)) fail(name, ": eps must be non-negative, got ", o.eps);
  if (!(o.beta1 >= 0.0 && o.beta1 < 1.0)) fail(name, ": beta1 must be in [0, 1), got ", o.beta1);
  if (!(o.beta2 >= 0.0 && o.beta2 < 1.0)) fail(name, ": beta2 must be in [0, 1), got ", o.beta2);
  if (!(o.weight_decay >= 0.0)) fail(name, ": weight_decay must be non-negative, got ", o.weight_decay);
}

void Adam::set_beta1(double beta1) {
  if (!(beta1 >= 0.0 && beta1 < 1.0)) fail(name_, ".set_beta1: beta1 must be in [0, 1), got ", beta1);
  opt_.beta1 = beta1;
}

std::vector<std::pair<std::string, double*>> Adam::hyperparameters() {
  // amsgrad is structural (it decides which buffers exist) and is not restored.
  return {{"beta1", &opt_.beta1}, {"beta2", &opt_.beta2}, {"eps", &opt_.eps},
          {"weight_decay", &opt_.weight_decay}};
}

std::vector<std::string> Adam::state_names() const {
  if (opt_.amsgrad) return {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"};
  return {"exp_avg", "exp_avg_sq"};
}

void Adam::step() {
  NoGradGuard ng;
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor& p = params_[i];
    const Tensor g = step_grad(i);
    if (!g.defined()) continue;
    auto& st = state_[i];
    for (const auto& name : state_names())
      if (!st.count(name)) st[name] = zeros(p.shape(), p.dtype());
    const int64_t t = ++steps_[i];
    // Bias corrections in double, as torch computes them in Python floats.
    AdamScalars s;
    s.decay = decoupled_ ? 1.0 - lr_ * opt_.weight_decay : 1.0;
    s.l2 = decoupled_ ? 0.0 : opt_.weight_decay;
    s.beta1 = opt_.beta1;
    s.beta2 = opt_.beta2;
    s.step_size = lr_ / (1.0 - std::pow(opt_.beta1, double(t)));
    s.bc2_sqrt = std::sqrt(1.0 - std::pow(opt_.beta2, double(t)));
    s.eps = opt_.eps;
    Tensor m = st["exp_avg"], v = st["exp_avg_sq"];
    Tensor vmax = opt_.amsgrad ? st["max_exp_avg_sq"] : Tensor();
    visit_dtype(p.dtype(), [&](auto tag) {
      using T = decltype(tag);
      if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
        T *pp = p.data<T>(), *mp = m.data<T>(), *vp = v.data<T>();
        T* xp = vmax.defined() ? vmax.data<T>() : nullptr;
        const T* gp = g.data<T>();
        for_chunks(p.numel(), [&](int64_t b, int64_t e) {
          T* xb = xp ? xp + b : nullptr;
          if constexpr (std::is_same_v<T, float>) kernels::adam_f32(pp + b, gp + b, mp + b, vp + b, xb, e - b, s);
          else kernels::adam_reference<T>(pp + b, gp + b, mp + b, vp + b, xb, e - b, s);
        });
      }
    });
  }
}

}  // namespace finch::optim
