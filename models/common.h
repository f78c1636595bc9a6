// Helpers shared by the model zoo: torchvision's channel rounding and its weight-init recipes.
#pragma once

#include <cstdint>

#include "autograd/nn/module.h"
#include "framework/random.h"

namespace finch::models {

// torchvision's _make_divisible (from the TensorFlow MobileNet code): rounds `v` to the nearest
// multiple of `divisor` (at least `min_value`, default `divisor`) but never more than 10% below v.
int64_t make_divisible(double v, int64_t divisor = 8, int64_t min_value = 0);

// How the Linear layers of a model are initialized (convs and batch norms are the same in both
// torchvision recipes below).
enum class LinearInit {
  torch_default,  // keep nn.Linear's own init (ResNet)
  normal_001,     // weight N(0, 0.01²), bias 0 (MobileNetV2)
};

// torchvision's init loop over self.modules(): every Conv2d weight kaiming_normal_(mode="fan_out",
// nonlinearity="relu") and bias 0; every BatchNorm weight 1 and bias 0; Linear as `linear`.
// (MobileNetV2's kaiming_normal_ uses the default leaky_relu with a = 0, whose gain √2 equals relu's.)
void torchvision_init(nn::Module& model, LinearInit linear, Generator* gen);

}  // namespace finch::models
