// Training-step throughput of the zoo's CIFAR models on Fashion-MNIST-shaped input (1×28×28,
// 10 classes): forward + cross_entropy + backward + SGD(momentum 0.9) step, reported as
// images/s (items_per_second). Threads: FINCH_BENCH_THREADS (default 2). The PyTorch side:
//   /usr/bin/python3 ../shared/tools/peer/torch_train_speed.py resnet20|mobilenetv2 64 2
// (same models, batch, optimizer and thread count); run both back to back and compare.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <string>

#include "autograd/engine.h"
#include "autograd/functional.h"
#include "autograd/optim/optim.h"
#include "framework/parallel.h"
#include "framework/random.h"
#include "models/models.h"

using namespace finch;

namespace {

void train_step(benchmark::State& state, const std::string& name, bool cifar) {
  const char* env = std::getenv("FINCH_BENCH_THREADS");
  set_num_threads(env ? std::atoi(env) : 2);
  const int64_t batch = state.range(0);
  Generator gen(0);
  models::CreateOptions o;
  o.cifar = cifar;
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
  for (int i = 0; i < 2; ++i) step();  // warm-up: allocations, OpenBLAS buffers
  for (auto _ : state) step();
  state.SetItemsProcessed(state.iterations() * batch);
}

void BM_TrainStep_ResNet20(benchmark::State& s) { train_step(s, "resnet20", false); }
void BM_TrainStep_MobileNetV2Cifar(benchmark::State& s) { train_step(s, "mobilenetv2", true); }

BENCHMARK(BM_TrainStep_ResNet20)->Arg(64)->Unit(benchmark::kMillisecond)->MinTime(5.0)->UseRealTime();
BENCHMARK(BM_TrainStep_MobileNetV2Cifar)->Arg(64)->Unit(benchmark::kMillisecond)->MinTime(5.0)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
