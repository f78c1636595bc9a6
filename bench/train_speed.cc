// Training images/s of a zoo model on Fashion-MNIST-shaped input (1×28×28, 10 classes), the
// finch twin of shared/tools/peer/torch_train_speed.py: same model, batch, optimizer
// (SGD lr 0.05 momentum 0.9), 3 warm-up steps, then as many steps as fit in 10 s. Prints one
// number. bench/train_speed_vs_torch.py runs both back to back and reports the ratio.
//   usage: train_speed MODEL BATCH THREADS   (MODEL: resnet20 | mobilenetv2 | any zoo name)
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "autograd/engine.h"
#include "autograd/functional.h"
#include "autograd/optim/optim.h"
#include "framework/error.h"
#include "framework/parallel.h"
#include "framework/random.h"
#include "models/models.h"

using namespace finch;

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s MODEL BATCH THREADS\n", argv[0]);
    return 2;
  }
  try {
    const std::string name = argv[1];
    const int64_t batch = std::atoll(argv[2]);
    set_num_threads(std::atoi(argv[3]));
    Generator gen(0);
    models::CreateOptions o;
    o.cifar = true;  // the CIFAR variants, as the peer's models.py builds them
    o.gen = &gen;
    auto model = models::create(name, 1, 10, o);
    model->train();
    optim::SGDOptions so;
    so.lr = 0.05;
    so.momentum = 0.9;
    optim::SGD opt(model->parameters(), so);
    const Tensor x = randn({batch, 1, 28, 28}, gen), y = randint(0, 10, {batch}, gen);
    auto step = [&] {
      opt.zero_grad();
      backward(cross_entropy(model->forward(x), y));
      opt.step();
    };
    for (int i = 0; i < 3; ++i) step();
    using clock = std::chrono::steady_clock;
    const auto t0 = clock::now();
    int64_t n = 0;
    double s = 0;
    while (s < 10.0) {
      step();
      ++n;
      s = std::chrono::duration<double>(clock::now() - t0).count();
    }
    std::printf("%.2f\n", double(batch * n) / s);
  } catch (const Error& e) {
    std::fprintf(stderr, "train_speed: %s\n", e.what());
    return 1;
  }
}
