// Course example 03 (docs/course/03-training-loop.md): LeNet-5 trained by a loop written out in
// full — data, batches, forward, loss, backward, optimizer step, evaluation — without train/.
//
// Data: by default 600 + 200 synthetic 28×28 images in Fashion-MNIST's own file format (IDX,
// gzip), written to a temporary folder and read back by the same reader the real data uses.
// `03_lenet_loop /usr/share/datasets/fashion-mnist` trains on the first 6000 real images instead.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <unistd.h>
#include <vector>

#include "autograd/engine.h"
#include "autograd/functional.h"
#include "autograd/nn/nn.h"
#include "autograd/optim/sgd.h"
#include "data/dataloader.h"
#include "data/idx.h"
#include "data/readers.h"
#include "framework/grad_mode.h"
#include "framework/parallel.h"
#include "framework/random.h"

using namespace finch;
namespace fs = std::filesystem;

namespace {
constexpr double kPi = 3.14159265358979323846;

// Class k is a bright bar at angle k·18° through a point near the centre, on a noisy background:
// ten classes a small CNN separates in a few epochs, with the shapes and dtype of the real files.
data::LabeledImages synthetic(int64_t n, Generator& gen) {
  Tensor images = zeros({n, 1, 28, 28}, DType::u8);
  Tensor labels = empty({n}, DType::i64);
  uint8_t* px = images.data<uint8_t>();
  int64_t* lab = labels.data<int64_t>();
  for (int64_t s = 0; s < n; ++s) {
    const int64_t k = s % 10;
    const double angle = double(k) * kPi / 10.0;
    const double cx = 13.5 + 6.0 * (gen.uniform() - 0.5), cy = 13.5 + 6.0 * (gen.uniform() - 0.5);
    const double nx = -std::sin(angle), ny = std::cos(angle);  // the bar's normal
    for (int64_t y = 0; y < 28; ++y)
      for (int64_t x = 0; x < 28; ++x) {
        const double dist = std::fabs((double(x) - cx) * nx + (double(y) - cy) * ny);
        const double v = (dist < 1.5 ? 200.0 : 0.0) + 50.0 * gen.uniform();
        px[(s * 28 + y) * 28 + x] = uint8_t(std::min(255.0, v));
      }
    lab[s] = k;
  }
  return {images, labels, {}};
}

// LeNet-5 (LeCun et al. 1998) with ReLU and max pooling, as torch users write it today:
// [N,1,28,28] → conv5 pad2 → [N,6,28,28] → pool → [N,6,14,14] → conv5 → [N,16,10,10] → pool →
// [N,16,5,5] → flatten 400 → 120 → 84 → 10 logits.
std::shared_ptr<nn::Sequential> lenet5(Generator& gen) {
  return std::make_shared<nn::Sequential>(std::initializer_list<nn::ModulePtr>{
      std::make_shared<nn::Conv2d>(1, 6, 5, 1, 2, 1, 1, true, &gen), std::make_shared<nn::ReLU>(),
      std::make_shared<nn::MaxPool2d>(2), std::make_shared<nn::Conv2d>(6, 16, 5, 1, 0, 1, 1, true, &gen),
      std::make_shared<nn::ReLU>(), std::make_shared<nn::MaxPool2d>(2), std::make_shared<nn::Flatten>(),
      std::make_shared<nn::Linear>(400, 120, true, &gen), std::make_shared<nn::ReLU>(),
      std::make_shared<nn::Linear>(120, 84, true, &gen), std::make_shared<nn::ReLU>(),
      std::make_shared<nn::Linear>(84, 10, true, &gen)});
}

// Accuracy and mean loss over a loader, in eval mode and without the tape.
std::pair<double, double> evaluate(nn::Module& model, data::DataLoader& loader) {
  NoGradGuard ng;
  model.eval();
  double loss = 0, correct = 0, seen = 0;
  data::Batch b;
  loader.start_epoch(0);
  while (loader.next(b)) {
    Tensor logits = model.forward(b.images);
    const double n = double(b.labels.size(0));
    loss += cross_entropy(logits, b.labels).item() * n;
    // eq compares the I64 argmax with the I64 labels; the bools count as 0/1 once they are floats.
    correct += double(sum(eq(argmax(logits, 1), b.labels).to(DType::f32)).item());
    seen += n;
  }
  model.train();
  return {loss / seen, correct / seen};
}

data::LabeledImages first(const data::LabeledImages& d, int64_t n) {
  n = std::min(n, d.size());
  return {d.images.narrow(0, 0, n), d.labels.narrow(0, 0, n), d.classes};
}
}  // namespace

int main(int argc, char** argv) {
  set_num_threads(1);
  Generator gen(7);
  std::string dir;
  fs::path tmp;
  if (argc > 1) {
    dir = argv[1];
  } else {
    // Write the synthetic set in the real format, then read it back like real data.
    tmp = fs::temp_directory_path() / ("finch_course_03_" + std::to_string(::getpid()));
    fs::create_directories(tmp);
    const data::LabeledImages tr = synthetic(600, gen), te = synthetic(200, gen);
    data::write_idx((tmp / "train-images-idx3-ubyte.gz").string(), tr.images.reshape({600, 28, 28}), true);
    data::write_idx((tmp / "train-labels-idx1-ubyte.gz").string(), tr.labels.to(DType::u8), true);
    data::write_idx((tmp / "t10k-images-idx3-ubyte.gz").string(), te.images.reshape({200, 28, 28}), true);
    data::write_idx((tmp / "t10k-labels-idx1-ubyte.gz").string(), te.labels.to(DType::u8), true);
    dir = tmp.string();
  }
  const data::LabeledImages train = first(data::load_mnist_like(dir, true), 6000);
  const data::LabeledImages test = first(data::load_mnist_like(dir, false), 2000);
  if (!tmp.empty()) fs::remove_all(tmp);
  std::printf("train %lld images, test %lld, image %s\n", static_cast<long long>(train.size()),
              static_cast<long long>(test.size()), shape_str(train.images.shape()).c_str());

  // Batches: the loader shuffles with its own seed and scales u8 pixels to [0, 1].
  data::DataLoaderOptions lo;
  lo.batch_size = 32;
  lo.seed = 1;
  data::DataLoader train_loader(std::make_shared<data::TensorDataset>(train), lo);
  lo.shuffle = false;
  lo.batch_size = 100;
  data::DataLoader test_loader(std::make_shared<data::TensorDataset>(test), lo);

  auto model = lenet5(gen);
  std::printf("LeNet-5: %lld parameters\n", static_cast<long long>(model->num_parameters()));
  optim::SGDOptions so;
  so.lr = 0.02;
  so.momentum = 0.9;
  optim::SGD opt(model->parameters(), so);

  auto [loss0, acc0] = evaluate(*model, test_loader);
  std::printf("epoch 0 test loss %.4f acc %.3f\n", loss0, acc0);
  for (int64_t epoch = 1; epoch <= 6; ++epoch) {
    double running = 0;
    int64_t batches = 0;
    data::Batch b;
    train_loader.start_epoch(epoch);
    while (train_loader.next(b)) {
      Tensor logits = model->forward(b.images);       // records the tape
      Tensor loss = cross_entropy(logits, b.labels);  // mean over the batch
      opt.zero_grad();                                // gradients accumulate otherwise
      backward(loss);                                 // dloss/dθ into every parameter's grad
      opt.step();                                     // θ ← θ − lr·(momentum-smoothed grad)
      running += loss.item();
      ++batches;
    }
    auto [tl, ta] = evaluate(*model, test_loader);
    std::printf("epoch %lld train loss %.4f test loss %.4f acc %.3f\n", static_cast<long long>(epoch),
                running / double(batches), tl, ta);
  }
  return 0;
}
