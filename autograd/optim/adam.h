// Adam (Kingma & Ba 2015) with L2 weight decay, and AdamW (Loshchilov & Hutter 2019) with
// decoupled weight decay, in torch.optim's exact order; amsgrad optional for both.
#pragma once

#include "autograd/optim/optimizer.h"

namespace finch::optim {

struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9, beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
  bool amsgrad = false;
};

// Per parameter at step t (torch 1.13 _single_tensor_adam):
//   g = g + wd·p                                (Adam; AdamW instead does p = p·(1 − lr·wd))
//   m = β1·m + (1 − β1)·g
//   v = β2·v + (1 − β2)·g²                      (amsgrad: v̂ = max(v̂, v), used below for v)
//   p = p − lr/(1 − β1ᵗ) · m / (√v / √(1 − β2ᵗ) + eps)
class Adam : public Optimizer {
 public:
  Adam(std::vector<Tensor> params, const AdamOptions& options);
  void step() override;
  // The construction options (options().lr is the initial lr; lr() is the live one).
  const AdamOptions& options() const { return opt_; }
  // For momentum cycling (OneCycleLR::momentum drives beta1, as torch does for Adam).
  void set_beta1(double beta1);

 protected:
  Adam(std::vector<Tensor> params, const AdamOptions& options, bool decoupled, const char* name);
  std::vector<std::pair<std::string, double*>> hyperparameters() override;
  std::vector<std::string> state_names() const override;
  bool tracks_steps() const override { return true; }

 private:
  AdamOptions opt_;
  bool decoupled_;  // AdamW
};

// AdamW's default weight_decay is 1e-2 (torch's), set it in the options explicitly.
class AdamW : public Adam {
 public:
  AdamW(std::vector<Tensor> params, const AdamOptions& options)
      : Adam(std::move(params), options, /*decoupled=*/true, "AdamW") {}
};

}  // namespace finch::optim
