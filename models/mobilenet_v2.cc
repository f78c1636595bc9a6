// MobileNetV2 (torchvision layout) built from nn modules.
#include "models/mobilenet_v2.h"

#include <cmath>

#include "autograd/functional.h"
#include "models/common.h"

namespace finch::models {

std::shared_ptr<nn::Sequential> conv_bn_relu6(int64_t in, int64_t out, int64_t kernel, int64_t stride,
                                              int64_t groups, Generator* gen) {
  return std::make_shared<nn::Sequential>(std::initializer_list<nn::ModulePtr>{
      std::make_shared<nn::Conv2d>(in, out, kernel, stride, (kernel - 1) / 2, 1, groups,
                                   /*bias=*/false, gen),
      std::make_shared<nn::BatchNorm2d>(out), std::make_shared<nn::ReLU6>()});
}

InvertedResidual::InvertedResidual(int64_t inp, int64_t oup, int64_t stride, int64_t expand_ratio,
                                   Generator* gen) {
  if (stride != 1 && stride != 2) fail("InvertedResidual: stride must be 1 or 2, got ", stride);
  const int64_t hidden = int64_t(std::nearbyint(double(inp * expand_ratio)));
  use_res_connect = stride == 1 && inp == oup;
  conv = register_module("conv", std::make_shared<nn::Sequential>());
  if (expand_ratio != 1) conv->push_back(conv_bn_relu6(inp, hidden, 1, 1, 1, gen));
  conv->push_back(conv_bn_relu6(hidden, hidden, 3, stride, hidden, gen));  // depthwise
  conv->push_back(std::make_shared<nn::Conv2d>(hidden, oup, 1, 1, 0, 1, 1, /*bias=*/false, gen));
  conv->push_back(std::make_shared<nn::BatchNorm2d>(oup));  // linear bottleneck: no activation
}

Tensor InvertedResidual::forward_impl(const Tensor& x) {
  return use_res_connect ? add(x, conv->forward(x)) : conv->forward(x);
}

MobileNetV2::MobileNetV2(int64_t in_channels, int64_t num_classes, const MobileNetV2Options& o,
                         Generator* gen) {
  if (in_channels <= 0 || num_classes <= 0)
    fail("MobileNetV2: in_channels and num_classes must be positive, got ", in_channels, " and ",
         num_classes);
  if (!(o.width_mult > 0)) fail("MobileNetV2: width_mult must be positive, got ", o.width_mult);
  // t (expansion), c (channels), n (repeats), s (stride of the first) — the paper's Table 2.
  const int64_t setting[7][4] = {{1, 16, 1, 1},  {6, 24, 2, 2},  {6, 32, 3, 2}, {6, 64, 4, 2},
                                 {6, 96, 3, 1},  {6, 160, 3, 2}, {6, 320, 1, 1}};
  int64_t input_channel = make_divisible(32 * o.width_mult, o.round_nearest);
  last_channel = make_divisible(1280 * std::max(1.0, o.width_mult), o.round_nearest);
  features = register_module("features", std::make_shared<nn::Sequential>());
  features->push_back(conv_bn_relu6(in_channels, input_channel, 3, o.cifar ? 1 : 2, 1, gen));
  for (int stage = 0; stage < 7; ++stage) {
    const auto& [t, c, n, s] = setting[stage];
    const int64_t output_channel = make_divisible(double(c) * o.width_mult, o.round_nearest);
    for (int64_t i = 0; i < n; ++i) {
      int64_t stride = i == 0 ? s : 1;
      if (o.cifar && stage == 1 && i == 0) stride = 1;  // the peer's features[2] stride (1, 1)
      features->push_back(std::make_shared<InvertedResidual>(input_channel, output_channel, stride, t, gen));
      input_channel = output_channel;
    }
  }
  features->push_back(conv_bn_relu6(input_channel, last_channel, 1, 1, 1, gen));
  classifier = register_module("classifier", std::make_shared<nn::Sequential>(std::initializer_list<nn::ModulePtr>{
      // The dropout draws from the default generator: `gen` may not outlive the model.
      std::make_shared<nn::Dropout>(o.dropout),
      std::make_shared<nn::Linear>(last_channel, num_classes, true, gen)}));
  torchvision_init(*this, LinearInit::normal_001, gen);
}

Tensor MobileNetV2::forward_impl(const Tensor& x) {
  if (x.dim() != 4) fail("MobileNetV2: expected a 4-D input [N, C, H, W], got ", x.dim(), " dims");
  return classifier->forward(flatten(adaptive_avg_pool2d(features->forward(x), {1, 1}), 1));
}

}  // namespace finch::models
