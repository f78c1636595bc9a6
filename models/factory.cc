// models::create: name -> model.
#include "models/factory.h"

#include <algorithm>
#include <memory>

#include "models/lenet.h"
#include "models/mobilenet_v1.h"
#include "models/mobilenet_v2.h"
#include "models/resnet.h"

namespace finch::models {

const std::vector<std::string>& model_names() {
  static const std::vector<std::string> names = {"lenet5",   "resnet20", "resnet32",
                                                 "resnet56", "resnet18", "resnet34",
                                                 "resnet50", "mobilenetv2", "mobilenet_v1"};
  return names;
}

nn::ModulePtr create(const std::string& name, int64_t in_channels, int64_t num_classes,
                     const CreateOptions& o) {
  const bool is_mobilenet = name == "mobilenetv2" || name == "mobilenet_v1";
  if (o.width_mult != 1.0 && !is_mobilenet &&
      std::find(model_names().begin(), model_names().end(), name) != model_names().end())
    fail("models::create: width_mult applies to mobilenetv2 and mobilenet_v1 only, got ",
         o.width_mult, " for '", name, "'");
  if (name == "lenet5") return std::make_shared<LeNet5>(in_channels, num_classes, o.input_size, o.gen);
  if (name == "resnet20") return std::make_shared<ResNetCifar>(20, in_channels, num_classes, o.gen);
  if (name == "resnet32") return std::make_shared<ResNetCifar>(32, in_channels, num_classes, o.gen);
  if (name == "resnet56") return std::make_shared<ResNetCifar>(56, in_channels, num_classes, o.gen);
  if (name == "resnet18") return resnet18(in_channels, num_classes, o.cifar, o.gen);
  if (name == "resnet34") return resnet34(in_channels, num_classes, o.cifar, o.gen);
  if (name == "resnet50") return resnet50(in_channels, num_classes, o.cifar, o.gen);
  if (name == "mobilenetv2") {
    MobileNetV2Options mo;
    mo.width_mult = o.width_mult;
    mo.dropout = o.dropout;
    mo.cifar = o.cifar;
    return std::make_shared<MobileNetV2>(in_channels, num_classes, mo, o.gen);
  }
  if (name == "mobilenet_v1")
    return std::make_shared<MobileNetV1>(in_channels, num_classes, o.width_mult, o.cifar, o.gen);
  std::string valid;
  for (const auto& n : model_names()) valid += (valid.empty() ? "" : ", ") + n;
  fail("models::create: unknown model '", name, "'; valid names are: ", valid);
}

}  // namespace finch::models
