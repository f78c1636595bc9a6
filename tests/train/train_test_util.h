// Shared fixtures of the train/ tests: a tiny separable image task and a small MLP with dropout.
#pragma once
#include <memory>

#include "autograd/nn/nn.h"
#include "data/dataset.h"
#include "framework/random.h"

namespace finch::train::fixtures {

// `n` U8 images [1, 4, 4] of 3 classes: class k lights up rows k (and a bit of noise elsewhere),
// so a linear model separates them.
inline std::shared_ptr<const data::Dataset> separable_images(int64_t n, uint64_t seed) {
  Generator g(seed);
  data::LabeledImages d;
  d.labels = randint(0, 3, {n}, g, DType::i64);
  Tensor noise = randint(0, 60, {n, 1, 4, 4}, g, DType::u8);
  auto px = noise.to_vector<uint8_t>();
  const auto y = d.labels.to_vector<int64_t>();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < 4; ++c) px[size_t(i * 16 + y[size_t(i)] * 4 + c)] = 200;
  d.images = from_vector<uint8_t>(px, {n, 1, 4, 4});
  d.classes = {"top", "second", "third"};
  return std::make_shared<data::TensorDataset>(d);
}

// Flatten → Linear(16, 12) → ReLU → Dropout (draws from the default generator, so exact resume
// needs its state) → Linear(12, 3).
inline nn::ModulePtr small_mlp(uint64_t seed) {
  Generator g(seed);
  return std::make_shared<nn::Sequential>(std::initializer_list<nn::ModulePtr>{
      std::make_shared<nn::Flatten>(), std::make_shared<nn::Linear>(16, 12, true, &g), std::make_shared<nn::ReLU>(),
      std::make_shared<nn::Dropout>(0.2), std::make_shared<nn::Linear>(12, 3, true, &g)});
}

}  // namespace finch::train::fixtures
