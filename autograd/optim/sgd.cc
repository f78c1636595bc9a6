// SGD: one fused pass per parameter over p, grad and the momentum buffer.
#include "autograd/optim/sgd.h"

#include "framework/grad_mode.h"

namespace finch::optim {

namespace {

// Flat arrays of n elements. Scalars are cast to T first, as torch's kernels do, so f32 runs
// the same arithmetic as torch's float path.
template <typename T>
void sgd_kernel(T* __restrict p, const T* __restrict g, T* __restrict buf, int64_t n,
                const SGDOptions& o, double lr, bool first) {
  const T wd = T(o.weight_decay), mom = T(o.momentum), damp = T(1.0 - o.dampening), neg_lr = T(-lr);
  if (o.momentum == 0.0) {
    for (int64_t i = 0; i < n; ++i) {
      const T d = g[i] + wd * p[i];
      p[i] = p[i] + neg_lr * d;
    }
  } else if (first) {
    for (int64_t i = 0; i < n; ++i) {
      const T d = g[i] + wd * p[i];
      buf[i] = d;
      p[i] = p[i] + neg_lr * (o.nesterov ? d + mom * d : d);
    }
  } else if (o.nesterov) {
    for (int64_t i = 0; i < n; ++i) {
      const T d = g[i] + wd * p[i];
      const T b = buf[i] * mom + damp * d;
      buf[i] = b;
      p[i] = p[i] + neg_lr * (d + mom * b);
    }
  } else {
    for (int64_t i = 0; i < n; ++i) {
      const T d = g[i] + wd * p[i];
      const T b = buf[i] * mom + damp * d;
      buf[i] = b;
      p[i] = p[i] + neg_lr * b;
    }
  }
}

}  // namespace

SGD::SGD(std::vector<Tensor> params, const SGDOptions& o) : Optimizer(std::move(params), o.lr, "SGD"), opt_(o) {
  if (o.momentum < 0.0) fail("SGD: momentum must be non-negative, got ", o.momentum);
  if (o.weight_decay < 0.0) fail("SGD: weight_decay must be non-negative, got ", o.weight_decay);
  if (o.nesterov && (o.momentum <= 0.0 || o.dampening != 0.0))
    fail("SGD: Nesterov momentum requires a momentum and zero dampening");
}

std::vector<std::pair<std::string, double*>> SGD::hyperparameters() {
  return {{"momentum", &opt_.momentum}, {"dampening", &opt_.dampening},
          {"weight_decay", &opt_.weight_decay}};
}

void SGD::set_momentum(double momentum) {
  if (!(momentum >= 0.0)) fail("SGD.set_momentum: momentum must be non-negative, got ", momentum);
  if (opt_.momentum == 0.0 && momentum != 0.0)
    fail("SGD.set_momentum: this optimizer was built without momentum, so it has no momentum "
         "buffers to cycle; construct it with a non-zero momentum");
  opt_.momentum = momentum;
}

void SGD::step() {
  NoGradGuard ng;
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor& p = params_[i];
    const Tensor g = step_grad(i);
    if (!g.defined()) continue;
    const bool first = opt_.momentum != 0.0 && !state_[i].count("momentum_buffer");
    if (first) state_[i]["momentum_buffer"] = empty(p.shape(), p.dtype());
    Tensor buf = opt_.momentum != 0.0 ? state_[i]["momentum_buffer"] : Tensor();
    visit_dtype(p.dtype(), [&](auto tag) {
      using T = decltype(tag);
      if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
        T* pp = p.data<T>();
        const T* gp = g.data<T>();
        T* bp = buf.defined() ? buf.data<T>() : nullptr;
        for_chunks(p.numel(), [&](int64_t b, int64_t e) {
          sgd_kernel<T>(pp + b, gp + b, bp ? bp + b : nullptr, e - b, opt_, lr_, first);
        });
      }
    });
  }
}

}  // namespace finch::optim
