// SGD with momentum, dampening, Nesterov and L2 weight decay, in torch.optim.SGD's exact order.
#pragma once

#include "autograd/optim/optimizer.h"

namespace finch::optim {

struct SGDOptions {
  double lr = 0.01;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;
};

// Per parameter, with g its gradient (torch 1.13 _single_tensor_sgd):
//   d = g + wd·p
//   buf = d (first step) or momentum·buf + (1 − dampening)·d
//   d = d + momentum·buf (nesterov) or buf
//   p = p − lr·d
class SGD : public Optimizer {
 public:
  SGD(std::vector<Tensor> params, const SGDOptions& options);
  void step() override;
  // The construction options (options().lr is the initial lr; lr() is the live one).
  const SGDOptions& options() const { return opt_; }
  // For momentum cycling (OneCycleLR::momentum, CyclicLR::momentum), like setting
  // param_groups[0]["momentum"] in torch. Saved and restored with the state dict.
  void set_momentum(double momentum);

 protected:
  std::vector<std::pair<std::string, double*>> hyperparameters() override;
  std::vector<std::string> state_names() const override { return {"momentum_buffer"}; }

 private:
  SGDOptions opt_;
};

}  // namespace finch::optim
