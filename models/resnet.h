// ResNets with torchvision's module names, so PyTorch checkpoints load with strict=true:
//  - ResNet: ResNet-18/34 (BasicBlock) and ResNet-50 (Bottleneck, ResNet v1.5: stride on the 3×3)
//    as torchvision.models.resnet (He et al. 2015, "Deep Residual Learning", Table 1), with a
//    CIFAR variant: 3×3 stride-1 conv1 and no max pool (names unchanged, conv1.weight [64, C, 3, 3]).
//  - ResNetCifar: He et al.'s CIFAR ResNet-20/32/56 (§4.2: 16/32/64 channels, 3 stages of n
//    BasicBlocks, depth 6n+2) with 1×1-conv + BN `downsample` shortcuts (option B), named like
//    torchvision's (conv1, bn1, layer1..3, fc) — the project's peer reference (peer/models.py).
// The parameterless layers are registered children too (relu, maxpool, avgpool), so
// named_modules() lists the same names as torchvision's model (the CIFAR variant's maxpool is an
// Identity, as one gets by replacing it in torchvision).
// Both initialize as torchvision: convs kaiming_normal_(fan_out, relu), BN weight 1 / bias 0, fc
// keeps nn.Linear's default.
// Shapes: x [N, C, H, W] -> logits [N, num_classes].
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "autograd/nn/nn.h"

namespace finch::models {

// conv1 3×3(stride) bn1 relu conv2 3×3 bn2 (+ downsample(x) or x) relu; expansion 1.
class BasicBlock : public nn::Module {
 public:
  static constexpr int64_t expansion = 1;
  BasicBlock(int64_t inplanes, int64_t planes, int64_t stride,
             std::shared_ptr<nn::Sequential> downsample, Generator* gen = nullptr);
  std::string type_name() const override { return "BasicBlock"; }
  Tensor forward_impl(const Tensor& x) override;

  std::shared_ptr<nn::Conv2d> conv1, conv2;
  std::shared_ptr<nn::BatchNorm2d> bn1, bn2;
  std::shared_ptr<nn::ReLU> relu;
  std::shared_ptr<nn::Sequential> downsample;  // null: identity shortcut
};

// conv1 1×1 bn1 relu conv2 3×3(stride) bn2 relu conv3 1×1 bn3 (+ shortcut) relu; expansion 4.
class Bottleneck : public nn::Module {
 public:
  static constexpr int64_t expansion = 4;
  Bottleneck(int64_t inplanes, int64_t planes, int64_t stride,
             std::shared_ptr<nn::Sequential> downsample, Generator* gen = nullptr);
  std::string type_name() const override { return "Bottleneck"; }
  Tensor forward_impl(const Tensor& x) override;

  std::shared_ptr<nn::Conv2d> conv1, conv2, conv3;
  std::shared_ptr<nn::BatchNorm2d> bn1, bn2, bn3;
  std::shared_ptr<nn::ReLU> relu;
  std::shared_ptr<nn::Sequential> downsample;
};

enum class BlockKind { basic, bottleneck };

// torchvision's ResNet: conv1 bn1 relu [maxpool] layer1..layer4 avgpool fc.
class ResNet : public nn::Module {
 public:
  // layers: blocks per stage ({2,2,2,2} for 18, {3,4,6,3} for 34 and 50).
  ResNet(BlockKind block, std::vector<int64_t> layers, int64_t in_channels, int64_t num_classes,
         bool cifar = false, Generator* gen = nullptr);
  std::string type_name() const override { return "ResNet"; }
  Tensor forward_impl(const Tensor& x) override;

  bool cifar;
  std::shared_ptr<nn::Conv2d> conv1;
  std::shared_ptr<nn::BatchNorm2d> bn1;
  std::shared_ptr<nn::ReLU> relu;
  nn::ModulePtr maxpool;  // MaxPool2d(3, 2, 1); Identity in the CIFAR variant
  std::vector<std::shared_ptr<nn::Sequential>> stages;  // layer1..layer4
  std::shared_ptr<nn::AdaptiveAvgPool2d> avgpool;
  std::shared_ptr<nn::Linear> fc;
};

// He et al.'s CIFAR ResNet of depth 6n+2 (20, 32, 56, 110, ...): conv1 bn1 relu layer1..3 avgpool fc.
class ResNetCifar : public nn::Module {
 public:
  ResNetCifar(int64_t depth, int64_t in_channels, int64_t num_classes, Generator* gen = nullptr);
  std::string type_name() const override { return "ResNetCifar"; }
  Tensor forward_impl(const Tensor& x) override;

  std::shared_ptr<nn::Conv2d> conv1;
  std::shared_ptr<nn::BatchNorm2d> bn1;
  std::shared_ptr<nn::ReLU> relu;
  std::vector<std::shared_ptr<nn::Sequential>> stages;  // layer1..layer3
  std::shared_ptr<nn::AdaptiveAvgPool2d> avgpool;
  std::shared_ptr<nn::Linear> fc;
};

std::shared_ptr<ResNet> resnet18(int64_t in_channels = 3, int64_t num_classes = 1000, bool cifar = false,
                                 Generator* gen = nullptr);
std::shared_ptr<ResNet> resnet34(int64_t in_channels = 3, int64_t num_classes = 1000, bool cifar = false,
                                 Generator* gen = nullptr);
std::shared_ptr<ResNet> resnet50(int64_t in_channels = 3, int64_t num_classes = 1000, bool cifar = false,
                                 Generator* gen = nullptr);

}  // namespace finch::models
