// ResNet (torchvision) and ResNetCifar (He et al. CIFAR) built from nn modules.
#include "models/resnet.h"

#include "autograd/functional.h"
#include "models/common.h"

namespace finch::models {

namespace {

std::shared_ptr<nn::Conv2d> conv3x3(int64_t in, int64_t out, int64_t stride, Generator* gen) {
  return std::make_shared<nn::Conv2d>(in, out, 3, stride, /*padding=*/1, /*dilation=*/1,
                                      /*groups=*/1, /*bias=*/false, gen);
}

std::shared_ptr<nn::Conv2d> conv1x1(int64_t in, int64_t out, int64_t stride, Generator* gen) {
  return std::make_shared<nn::Conv2d>(in, out, 1, stride, 0, 1, 1, /*bias=*/false, gen);
}

// torchvision's shortcut: 1×1 conv (stride) + BN, children "0" and "1".
std::shared_ptr<nn::Sequential> downsample(int64_t in, int64_t out, int64_t stride, Generator* gen) {
  return std::make_shared<nn::Sequential>(std::initializer_list<nn::ModulePtr>{
      conv1x1(in, out, stride, gen), std::make_shared<nn::BatchNorm2d>(out)});
}

// One stage of `blocks` blocks; the first takes `stride` and a downsample when the shape changes.
// Updates `inplanes` to the stage's output channels, as torchvision's _make_layer.
std::shared_ptr<nn::Sequential> make_layer(BlockKind kind, int64_t& inplanes, int64_t planes,
                                           int64_t blocks, int64_t stride, Generator* gen) {
  const int64_t expansion = kind == BlockKind::basic ? BasicBlock::expansion : Bottleneck::expansion;
  auto layer = std::make_shared<nn::Sequential>();
  for (int64_t i = 0; i < blocks; ++i) {
    const int64_t s = i == 0 ? stride : 1;
    std::shared_ptr<nn::Sequential> ds;
    if (s != 1 || inplanes != planes * expansion) ds = downsample(inplanes, planes * expansion, s, gen);
    if (kind == BlockKind::basic)
      layer->push_back(std::make_shared<BasicBlock>(inplanes, planes, s, ds, gen));
    else
      layer->push_back(std::make_shared<Bottleneck>(inplanes, planes, s, ds, gen));
    inplanes = planes * expansion;
  }
  return layer;
}

}  // namespace

BasicBlock::BasicBlock(int64_t inplanes, int64_t planes, int64_t stride,
                       std::shared_ptr<nn::Sequential> ds, Generator* gen) {
  conv1 = register_module("conv1", conv3x3(inplanes, planes, stride, gen));
  bn1 = register_module("bn1", std::make_shared<nn::BatchNorm2d>(planes));
  relu = register_module("relu", std::make_shared<nn::ReLU>());
  conv2 = register_module("conv2", conv3x3(planes, planes, 1, gen));
  bn2 = register_module("bn2", std::make_shared<nn::BatchNorm2d>(planes));
  if (ds) downsample = register_module("downsample", ds);
}

Tensor BasicBlock::forward_impl(const Tensor& x) {
  Tensor out = relu->forward(bn1->forward(conv1->forward(x)));
  out = bn2->forward(conv2->forward(out));
  return relu->forward(add(out, downsample ? downsample->forward(x) : x));
}

Bottleneck::Bottleneck(int64_t inplanes, int64_t planes, int64_t stride,
                       std::shared_ptr<nn::Sequential> ds, Generator* gen) {
  const int64_t width = planes;  // base_width 64, groups 1
  conv1 = register_module("conv1", conv1x1(inplanes, width, 1, gen));
  bn1 = register_module("bn1", std::make_shared<nn::BatchNorm2d>(width));
  conv2 = register_module("conv2", conv3x3(width, width, stride, gen));
  bn2 = register_module("bn2", std::make_shared<nn::BatchNorm2d>(width));
  conv3 = register_module("conv3", conv1x1(width, planes * expansion, 1, gen));
  bn3 = register_module("bn3", std::make_shared<nn::BatchNorm2d>(planes * expansion));
  relu = register_module("relu", std::make_shared<nn::ReLU>());
  if (ds) downsample = register_module("downsample", ds);
}

Tensor Bottleneck::forward_impl(const Tensor& x) {
  Tensor out = relu->forward(bn1->forward(conv1->forward(x)));
  out = relu->forward(bn2->forward(conv2->forward(out)));
  out = bn3->forward(conv3->forward(out));
  return relu->forward(add(out, downsample ? downsample->forward(x) : x));
}

ResNet::ResNet(BlockKind block, std::vector<int64_t> layers, int64_t in_channels,
               int64_t num_classes, bool cifar, Generator* gen)
    : cifar(cifar) {
  if (layers.size() != 4) fail("ResNet: expected 4 stage sizes, got ", layers.size());
  if (in_channels <= 0 || num_classes <= 0)
    fail("ResNet: in_channels and num_classes must be positive, got ", in_channels, " and ", num_classes);
  conv1 = register_module("conv1", cifar ? conv3x3(in_channels, 64, 1, gen)
                                         : std::make_shared<nn::Conv2d>(in_channels, 64, 7, 2, 3, 1, 1,
                                                                        /*bias=*/false, gen));
  bn1 = register_module("bn1", std::make_shared<nn::BatchNorm2d>(64));
  relu = register_module("relu", std::make_shared<nn::ReLU>());
  maxpool = cifar ? register_module("maxpool", std::make_shared<nn::Identity>())
                  : nn::ModulePtr(register_module("maxpool", std::make_shared<nn::MaxPool2d>(3, 2, 1)));
  int64_t inplanes = 64;
  const int64_t planes[4] = {64, 128, 256, 512};
  for (int i = 0; i < 4; ++i)
    stages.push_back(register_module("layer" + std::to_string(i + 1),
                                     make_layer(block, inplanes, planes[i], layers[size_t(i)],
                                                i == 0 ? 1 : 2, gen)));
  avgpool = register_module("avgpool", std::make_shared<nn::AdaptiveAvgPool2d>(1));
  fc = register_module("fc", std::make_shared<nn::Linear>(inplanes, num_classes, true, gen));
  torchvision_init(*this, LinearInit::torch_default, gen);
}

Tensor ResNet::forward_impl(const Tensor& x) {
  if (x.dim() != 4) fail("ResNet: expected a 4-D input [N, C, H, W], got ", x.dim(), " dims");
  Tensor h = maxpool->forward(relu->forward(bn1->forward(conv1->forward(x))));
  for (auto& s : stages) h = s->forward(h);
  return fc->forward(flatten(avgpool->forward(h), 1));
}

ResNetCifar::ResNetCifar(int64_t depth, int64_t in_channels, int64_t num_classes, Generator* gen) {
  if (depth < 8 || (depth - 2) % 6 != 0)
    fail("ResNetCifar: depth must be 6n+2 with n >= 1 (20, 32, 44, 56, 110), got ", depth);
  if (in_channels <= 0 || num_classes <= 0)
    fail("ResNetCifar: in_channels and num_classes must be positive, got ", in_channels, " and ",
         num_classes);
  const int64_t n = (depth - 2) / 6;
  conv1 = register_module("conv1", conv3x3(in_channels, 16, 1, gen));
  bn1 = register_module("bn1", std::make_shared<nn::BatchNorm2d>(16));
  relu = register_module("relu", std::make_shared<nn::ReLU>());
  int64_t inplanes = 16;
  const int64_t planes[3] = {16, 32, 64};
  for (int i = 0; i < 3; ++i)
    stages.push_back(register_module("layer" + std::to_string(i + 1),
                                     make_layer(BlockKind::basic, inplanes, planes[i], n,
                                                i == 0 ? 1 : 2, gen)));
  avgpool = register_module("avgpool", std::make_shared<nn::AdaptiveAvgPool2d>(1));
  fc = register_module("fc", std::make_shared<nn::Linear>(64, num_classes, true, gen));
  torchvision_init(*this, LinearInit::torch_default, gen);
}

Tensor ResNetCifar::forward_impl(const Tensor& x) {
  if (x.dim() != 4) fail("ResNetCifar: expected a 4-D input [N, C, H, W], got ", x.dim(), " dims");
  Tensor h = relu->forward(bn1->forward(conv1->forward(x)));
  for (auto& s : stages) h = s->forward(h);
  return fc->forward(flatten(avgpool->forward(h), 1));
}

std::shared_ptr<ResNet> resnet18(int64_t in_channels, int64_t num_classes, bool cifar, Generator* gen) {
  return std::make_shared<ResNet>(BlockKind::basic, std::vector<int64_t>{2, 2, 2, 2}, in_channels,
                                  num_classes, cifar, gen);
}
std::shared_ptr<ResNet> resnet34(int64_t in_channels, int64_t num_classes, bool cifar, Generator* gen) {
  return std::make_shared<ResNet>(BlockKind::basic, std::vector<int64_t>{3, 4, 6, 3}, in_channels,
                                  num_classes, cifar, gen);
}
std::shared_ptr<ResNet> resnet50(int64_t in_channels, int64_t num_classes, bool cifar, Generator* gen) {
  return std::make_shared<ResNet>(BlockKind::bottleneck, std::vector<int64_t>{3, 4, 6, 3},
                                  in_channels, num_classes, cifar, gen);
}

}  // namespace finch::models
