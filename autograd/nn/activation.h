// Activation and dropout modules: thin wrappers that call the functional API (no parameters).
#pragma once

#include <string>

#include "autograd/nn/module.h"
#include "framework/random.h"

namespace finch::nn {

class ReLU : public Module {
 public:
  std::string type_name() const override { return "ReLU"; }
  Tensor forward_impl(const Tensor& x) override;
};

class ReLU6 : public Module {
 public:
  std::string type_name() const override { return "ReLU6"; }
  Tensor forward_impl(const Tensor& x) override;
};

class LeakyReLU : public Module {
 public:
  explicit LeakyReLU(double negative_slope = 0.01) : negative_slope(negative_slope) {}
  std::string type_name() const override { return "LeakyReLU"; }
  Tensor forward_impl(const Tensor& x) override;
  double negative_slope;
};

class Sigmoid : public Module {
 public:
  std::string type_name() const override { return "Sigmoid"; }
  Tensor forward_impl(const Tensor& x) override;
};

class Tanh : public Module {
 public:
  std::string type_name() const override { return "Tanh"; }
  Tensor forward_impl(const Tensor& x) override;
};

// approximate: "none" (exact erf form) or "tanh".
class GELU : public Module {
 public:
  explicit GELU(std::string approximate = "none");
  std::string type_name() const override { return "GELU"; }
  Tensor forward_impl(const Tensor& x) override;
  std::string approximate;
};

class SiLU : public Module {
 public:
  std::string type_name() const override { return "SiLU"; }
  Tensor forward_impl(const Tensor& x) override;
};

class Hardswish : public Module {
 public:
  std::string type_name() const override { return "Hardswish"; }
  Tensor forward_impl(const Tensor& x) override;
};

// Zeroes elements with probability p in training mode (scaling the rest by 1/(1-p)); the
// identity in eval mode. Draws from `gen` when given, else the default generator.
class Dropout : public Module {
 public:
  explicit Dropout(double p = 0.5, Generator* gen = nullptr);
  std::string type_name() const override { return "Dropout"; }
  Tensor forward_impl(const Tensor& x) override;
  double p;
  Generator* gen;
};

}  // namespace finch::nn
