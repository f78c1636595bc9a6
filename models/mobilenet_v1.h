// MobileNet v1 (Howard et al. 2017, "MobileNets", Table 1): a 3×3 stride-2 stem and 13
// depthwise-separable blocks (3×3 depthwise conv + BN + ReLU6, 1×1 pointwise conv + BN + ReLU6),
// global average pool, one Linear. Width multiplier α scales every channel count, rounded as
// torchvision rounds MobileNetV2's: make_divisible(c·α, 8). ReLU6 as in the reference TF code.
// There is no torchvision MobileNet v1, so the names are ours, chosen to read like v2's:
//   features.0.0 conv, features.0.1 bn                  stem (Sequential: conv, bn, ReLU6)
//   features.N.0 depthwise conv, features.N.1 bn        N = 1..13 (Sequential: dw conv, bn,
//   features.N.3 pointwise conv, features.N.4 bn          ReLU6, pw conv, bn, ReLU6)
//   classifier.weight / classifier.bias                 the Linear
// Built for 224×224 input (7×7 before the pool); the CIFAR variant makes the stem stride 1
// (32×32 -> 2×2). Init as torchvision's MobileNetV2: convs kaiming_normal_(fan_out), BN 1/0,
// Linear N(0, 0.01²) with bias 0.
// Shapes: x [N, C, H, W] -> logits [N, num_classes].
#pragma once

#include <memory>
#include <string>

#include "autograd/nn/nn.h"

namespace finch::models {

class MobileNetV1 : public nn::Module {
 public:
  MobileNetV1(int64_t in_channels, int64_t num_classes, double width_mult = 1.0, bool cifar = false,
              Generator* gen = nullptr);
  std::string type_name() const override { return "MobileNetV1"; }
  Tensor forward_impl(const Tensor& x) override;

  int64_t last_channel;
  std::shared_ptr<nn::Sequential> features;
  std::shared_ptr<nn::Linear> classifier;
};

}  // namespace finch::models
