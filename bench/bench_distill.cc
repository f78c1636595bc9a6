// What distillation costs per training step: MobileNetV2 (CIFAR variant, 1 × 28 × 28, batch 32,
// one thread) forward + backward with cross-entropy, against the same plus the teacher's
// no-grad forward (a second MobileNetV2) and the distillation loss (train/distill.h), side by side.
//   build/bin/bench_distill --benchmark_min_time=2
#include <benchmark/benchmark.h>

#include "autograd/engine.h"
#include "autograd/functional.h"
#include "framework/grad_mode.h"
#include "framework/parallel.h"
#include "framework/random.h"
#include "models/factory.h"
#include "train/distill.h"

namespace finch {
namespace {

void step(benchmark::State& st, bool distill) {
  set_num_threads(1);
  Generator gen(1);
  models::CreateOptions co;
  co.cifar = true;
  co.gen = &gen;
  nn::ModulePtr student = models::create("mobilenetv2", 1, 10, co), teacher = models::create("mobilenetv2", 1, 10, co);
  teacher->eval();
  student->train();
  const Tensor x = randn({32, 1, 28, 28}, gen), y = randint(0, 10, {32}, gen, DType::i64);
  for (auto _ : st) {
    student->zero_grad();
    const Tensor out = student->forward(x);
    Tensor loss;
    if (distill) {
      Tensor t;
      {
        NoGradGuard ng;
        t = teacher->forward(x);
      }
      loss = train::distillation_loss(out, t, y, 4.0, 0.9);
    } else {
      loss = cross_entropy(out, y);
    }
    backward(loss);
    benchmark::DoNotOptimize(loss.item());
  }
}

void BM_MobileNetV2_Step_CrossEntropy(benchmark::State& st) { step(st, false); }
void BM_MobileNetV2_Step_Distill(benchmark::State& st) { step(st, true); }

BENCHMARK(BM_MobileNetV2_Step_CrossEntropy)->Unit(benchmark::kMillisecond)->MeasureProcessCPUTime();
BENCHMARK(BM_MobileNetV2_Step_Distill)->Unit(benchmark::kMillisecond)->MeasureProcessCPUTime();

}  // namespace
}  // namespace finch

BENCHMARK_MAIN();
