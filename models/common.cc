// make_divisible and the torchvision init recipes.
#include "models/common.h"

#include <algorithm>

#include "autograd/nn/nn.h"

namespace finch::models {

int64_t make_divisible(double v, int64_t divisor, int64_t min_value) {
  if (min_value <= 0) min_value = divisor;
  // int(v + divisor / 2) // divisor * divisor, as Python's floor division on positives.
  int64_t new_v = std::max(min_value, int64_t(v + double(divisor) / 2.0) / divisor * divisor);
  if (double(new_v) < 0.9 * v) new_v += divisor;
  return new_v;
}

void torchvision_init(nn::Module& model, LinearInit linear, Generator* gen) {
  for (auto& [name, m] : model.named_modules()) {
    if (auto* conv = dynamic_cast<nn::Conv2d*>(m)) {
      nn::init::kaiming_normal_(conv->weight, 0.0, "fan_out", "relu", gen);
      if (conv->bias.defined()) nn::init::zeros_(conv->bias);
    } else if (auto* bn = dynamic_cast<nn::BatchNorm*>(m)) {
      if (bn->weight.defined()) nn::init::ones_(bn->weight);
      if (bn->bias.defined()) nn::init::zeros_(bn->bias);
    } else if (auto* fc = dynamic_cast<nn::Linear*>(m)) {
      if (linear == LinearInit::normal_001) {
        nn::init::normal_(fc->weight, 0.0, 0.01, gen);
        if (fc->bias.defined()) nn::init::zeros_(fc->bias);
      }
    }
  }
}

}  // namespace finch::models
