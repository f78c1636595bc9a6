// models::create: builds a zoo model by name, for command-line programs and configs.
#pragma once

#include <string>
#include <vector>

#include "autograd/nn/module.h"
#include "framework/random.h"

namespace finch::models {

struct CreateOptions {
  // CIFAR variant: ResNet-18/34/50 get a 3×3 stride-1 conv1 and no max pool; MobileNetV2 stride
  // 1 in the stem and second stage; MobileNet v1 a stride-1 stem. ResNet-20/32/56 are always
  // CIFAR networks and LeNet-5 has no variant: the flag does not change them.
  bool cifar = false;
  double width_mult = 1.0;  // MobileNet v1/v2 only (must stay 1 for the others)
  double dropout = 0.2;     // MobileNetV2's classifier dropout
  int64_t input_size = 28;  // LeNet-5 only: 28 pads conv1 by 2; others use no padding
  Generator* gen = nullptr;  // initialization draws (default generator when null)
};

// Names: lenet5, resnet20, resnet32, resnet56, resnet18, resnet34, resnet50, mobilenetv2,
// mobilenet_v1. An unknown name throws finch::Error listing the valid ones.
nn::ModulePtr create(const std::string& name, int64_t in_channels, int64_t num_classes,
                     const CreateOptions& options = {});
// The names create() accepts, in the order above.
const std::vector<std::string>& model_names();

}  // namespace finch::models
