// DataLoader throughput over Fashion-MNIST (to_float + pad-2 random crop + horizontal flip,
// batch 128), images/s by worker count. Skips when /usr/share/datasets/fashion-mnist is absent.
// torch side: bench/bench_data_torch.py.
#include <benchmark/benchmark.h>

#include <filesystem>

#include "data/dataloader.h"
#include "data/readers.h"
#include "data/transforms.h"

using namespace finch;
using namespace finch::data;

namespace {

std::shared_ptr<const Dataset> fashion_train() {
  static std::shared_ptr<const Dataset> ds = [] {
    std::shared_ptr<const Dataset> out;
    const std::string dir = "/usr/share/datasets/fashion-mnist";
    if (!std::filesystem::is_directory(dir)) return out;
    out = std::make_shared<TensorDataset>(
        load_mnist_like(dir, true), transforms::compose({transforms::to_float(), transforms::random_crop(28, 28, 2),
                                                         transforms::random_hflip()}));
    return out;
  }();
  return ds;
}

void BM_FashionMnistEpoch(benchmark::State& state) {
  auto ds = fashion_train();
  if (!ds) {
    state.SkipWithError("/usr/share/datasets/fashion-mnist is absent");
    return;
  }
  DataLoaderOptions o;
  o.batch_size = 128;
  o.num_workers = int(state.range(0));
  o.seed = 1;
  DataLoader dl(ds, o);
  int64_t epoch = 0, images = 0;
  for (auto _ : state) {
    dl.start_epoch(epoch++);
    for (Batch b; dl.next(b);) {
      images += b.labels.numel();
      benchmark::DoNotOptimize(b.images.data<float>());
    }
  }
  state.SetItemsProcessed(images);
}
BENCHMARK(BM_FashionMnistEpoch)->Arg(0)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
