// MobileNetV2 (Sandler et al. 2018, "Inverted Residuals and Linear Bottlenecks", Table 2) with
// torchvision.models.mobilenet_v2's module names, so PyTorch checkpoints load with strict=true:
//   features.0          stem: Conv2dNormActivation = Sequential(conv "0", bn "1", ReLU6 "2")
//   features.1..17      InvertedResidual blocks, each `conv` = Sequential(
//                         [expand: Conv2dNormActivation 1×1 (only when t != 1)],
//                         depthwise Conv2dNormActivation 3×3, 1×1 projection conv, bn)
//                       e.g. features.2.conv.0.0.weight, features.2.conv.1.1.running_var,
//                       features.2.conv.2.weight, features.2.conv.3.bias
//   features.18         last 1×1 Conv2dNormActivation to last_channel (1280·max(1, width))
//   classifier          Sequential(Dropout(0.2) "0", Linear "1")
// Channel counts follow torchvision's _make_divisible(c·width_mult, 8).
// CIFAR variant (the peer's mobilenetv2_cifar): stride 1 in the stem and in the first block of
// the second stage (features.2), so a 32×32 input ends at 4×4 instead of 1×1.
// Init as torchvision: convs kaiming_normal_(fan_out), BN 1/0, Linear N(0, 0.01²) with bias 0.
// Shapes: x [N, C, H, W] -> logits [N, num_classes].
#pragma once

#include <memory>
#include <string>

#include "autograd/nn/nn.h"

namespace finch::models {

// torchvision.ops.Conv2dNormActivation with BatchNorm2d and ReLU6 (or no activation):
// children "0" conv (bias=False, padding (k-1)/2), "1" bn, "2" ReLU6.
std::shared_ptr<nn::Sequential> conv_bn_relu6(int64_t in, int64_t out, int64_t kernel, int64_t stride,
                                              int64_t groups, Generator* gen);

class InvertedResidual : public nn::Module {
 public:
  InvertedResidual(int64_t inp, int64_t oup, int64_t stride, int64_t expand_ratio, Generator* gen = nullptr);
  std::string type_name() const override { return "InvertedResidual"; }
  Tensor forward_impl(const Tensor& x) override;  // x + conv(x) when stride 1 and inp == oup

  bool use_res_connect;
  std::shared_ptr<nn::Sequential> conv;
};

struct MobileNetV2Options {
  double width_mult = 1.0;
  double dropout = 0.2;
  bool cifar = false;
  int64_t round_nearest = 8;
};

class MobileNetV2 : public nn::Module {
 public:
  MobileNetV2(int64_t in_channels, int64_t num_classes, const MobileNetV2Options& options = {},
              Generator* gen = nullptr);
  std::string type_name() const override { return "MobileNetV2"; }
  Tensor forward_impl(const Tensor& x) override;

  int64_t last_channel;
  std::shared_ptr<nn::Sequential> features, classifier;
};

}  // namespace finch::models
