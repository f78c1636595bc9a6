// MobileNet v1 built from nn modules.
#include "models/mobilenet_v1.h"

#include "autograd/functional.h"
#include "models/common.h"

namespace finch::models {

namespace {

std::shared_ptr<nn::Conv2d> conv(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t groups,
                                 Generator* gen) {
  return std::make_shared<nn::Conv2d>(in, out, k, stride, (k - 1) / 2, 1, groups, /*bias=*/false, gen);
}

}  // namespace

MobileNetV1::MobileNetV1(int64_t in_channels, int64_t num_classes, double width_mult, bool cifar,
                         Generator* gen) {
  if (in_channels <= 0 || num_classes <= 0)
    fail("MobileNetV1: in_channels and num_classes must be positive, got ", in_channels, " and ",
         num_classes);
  if (!(width_mult > 0)) fail("MobileNetV1: width_mult must be positive, got ", width_mult);
  // (output channels, stride) of the 13 depthwise-separable blocks — the paper's Table 1.
  const int64_t blocks[13][2] = {{64, 1},  {128, 2}, {128, 1}, {256, 2}, {256, 1},
                                 {512, 2}, {512, 1}, {512, 1}, {512, 1}, {512, 1},
                                 {512, 1}, {1024, 2}, {1024, 1}};
  int64_t c = make_divisible(32 * width_mult);
  features = register_module("features", std::make_shared<nn::Sequential>());
  features->push_back(std::make_shared<nn::Sequential>(std::initializer_list<nn::ModulePtr>{
      conv(in_channels, c, 3, cifar ? 1 : 2, 1, gen), std::make_shared<nn::BatchNorm2d>(c),
      std::make_shared<nn::ReLU6>()}));
  for (const auto& [out_c, stride] : blocks) {
    const int64_t out = make_divisible(double(out_c) * width_mult);
    features->push_back(std::make_shared<nn::Sequential>(std::initializer_list<nn::ModulePtr>{
        conv(c, c, 3, stride, /*groups=*/c, gen), std::make_shared<nn::BatchNorm2d>(c),
        std::make_shared<nn::ReLU6>(), conv(c, out, 1, 1, 1, gen),
        std::make_shared<nn::BatchNorm2d>(out), std::make_shared<nn::ReLU6>()}));
    c = out;
  }
  last_channel = c;
  classifier = register_module("classifier", std::make_shared<nn::Linear>(c, num_classes, true, gen));
  torchvision_init(*this, LinearInit::normal_001, gen);
}

Tensor MobileNetV1::forward_impl(const Tensor& x) {
  if (x.dim() != 4) fail("MobileNetV1: expected a 4-D input [N, C, H, W], got ", x.dim(), " dims");
  return classifier->forward(flatten(adaptive_avg_pool2d(features->forward(x), {1, 1}), 1));
}

}  // namespace finch::models
