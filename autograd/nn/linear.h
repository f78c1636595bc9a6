// Linear (y = x Wᵀ + b with W [out, in]), Identity and Flatten, as torch.nn.
#pragma once

#include "autograd/nn/module.h"
#include "framework/random.h"

namespace finch::nn {

// Default init as torch: weight kaiming_uniform_(a=√5), i.e. U(-1/√in, 1/√in); bias the same.
class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias = true, Generator* gen = nullptr);
  std::string type_name() const override { return "Linear"; }
  Tensor forward_impl(const Tensor& x) override;  // x [..., in] -> [..., out]
  void reset_parameters(Generator* gen = nullptr);

  int64_t in_features, out_features;
  Tensor weight;  // [out, in]
  Tensor bias;    // [out] or undefined
};

class Identity : public Module {
 public:
  std::string type_name() const override { return "Identity"; }
  Tensor forward_impl(const Tensor& x) override { return x; }
};

// Flattens dims start_dim..end_dim into one (torch.nn.Flatten keeps the batch dim by default).
class Flatten : public Module {
 public:
  explicit Flatten(int64_t start_dim = 1, int64_t end_dim = -1) : start_dim(start_dim), end_dim(end_dim) {}
  std::string type_name() const override { return "Flatten"; }
  Tensor forward_impl(const Tensor& x) override;

  int64_t start_dim, end_dim;
};

}  // namespace finch::nn
