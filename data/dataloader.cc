// The DataLoader: ordered batches from workers that claim batch indices from a shared counter.
#include "data/dataloader.h"

#include <cstring>

#include "data/transforms.h"

namespace finch::data {

namespace {

// splitmix64's finalizer: a bijective mix, so distinct (seed, epoch, index) give unrelated seeds.
uint64_t mix(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

DataLoader::DataLoader(std::shared_ptr<const Dataset> dataset, DataLoaderOptions options)
    : dataset_(std::move(dataset)), options_(options) {
  if (!dataset_) fail("DataLoader: expected a dataset, found null");
  if (options_.batch_size <= 0) fail("DataLoader: expected batch_size > 0, found ", options_.batch_size);
  if (options_.num_workers < 0) fail("DataLoader: expected num_workers >= 0, found ", options_.num_workers);
  if (options_.prefetch_factor < 1)
    fail("DataLoader: expected prefetch_factor >= 1, found ", options_.prefetch_factor);
}

DataLoader::~DataLoader() { stop_workers(); }

int64_t DataLoader::num_batches() const {
  const int64_t n = dataset_->size(), bs = options_.batch_size;
  return options_.drop_last ? n / bs : (n + bs - 1) / bs;
}

std::vector<int64_t> DataLoader::epoch_order(int64_t epoch) const {
  const int64_t n = dataset_->size();
  std::vector<int64_t> order(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) order[size_t(i)] = i;
  if (options_.shuffle) {
    Generator gen(mix(options_.seed ^ mix(uint64_t(epoch))));
    for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[gen.below(i)]);
  }
  return order;
}

uint64_t DataLoader::sample_seed(int64_t epoch, int64_t index) const {
  return mix(mix(options_.seed ^ mix(uint64_t(epoch))) ^ uint64_t(index));
}

Batch DataLoader::make_batch(int64_t b) const {
  const int64_t bs = options_.batch_size;
  const int64_t begin = b * bs, end = std::min<int64_t>(begin + bs, int64_t(order_.size()));
  Batch out;
  out.labels = empty({end - begin}, DType::i64);
  int64_t* labels = out.labels.data<int64_t>();
  Shape first;
  for (int64_t k = begin; k < end; ++k) {
    const int64_t index = order_[size_t(k)];
    Generator gen(sample_seed(epoch_, index));
    Sample s = dataset_->get(index, gen);
    if (!s.image.defined()) fail("DataLoader: sample ", index, " has an undefined image");
    Tensor img = to_float(s.image);
    if (k == begin) {
      first = img.shape();
      Shape shape = first;
      shape.insert(shape.begin(), end - begin);
      out.images = empty(shape, DType::f32);
    } else if (img.shape() != first) {
      fail("DataLoader: sample ", index, " has image shape ", shape_str(img.shape()), " but sample ",
           order_[size_t(begin)], " in the same batch has ", shape_str(first),
           "; add a resize or crop transform so every image has one size");
    }
    std::memcpy(out.images.data<float>() + (k - begin) * img.numel(), img.data<float>(),
                size_t(img.numel()) * sizeof(float));
    labels[k - begin] = s.label;
  }
  return out;
}

void DataLoader::start_epoch(int64_t epoch) {
  stop_workers();
  epoch_ = epoch;
  order_ = epoch_order(epoch);
  next_consume_ = 0;
  next_claim_ = 0;
  for (int w = 0; w < options_.num_workers; ++w) workers_.emplace_back([this] { worker_loop(); });
}

void DataLoader::worker_loop() {
  const int64_t nb = num_batches();
  const int64_t capacity = int64_t(options_.num_workers) * options_.prefetch_factor;
  for (;;) {
    int64_t b;
    {
      std::unique_lock<std::mutex> lock(mu_);
      // Bounded queue: a batch may start only while it is within `capacity` of the consumer.
      can_produce_.wait(lock, [&] { return stop_ || next_claim_ >= nb || next_claim_ < next_consume_ + capacity; });
      if (stop_ || next_claim_ >= nb) return;
      b = next_claim_++;
    }
    Result r;
    try {
      r.batch = make_batch(b);
    } catch (...) {
      r.error = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      ready_[b] = std::move(r);
    }
    can_consume_.notify_all();
  }
}

bool DataLoader::next(Batch& out) {
  if (epoch_ < 0) fail("DataLoader::next: call start_epoch(epoch) before asking for batches");
  if (next_consume_ >= num_batches()) {
    stop_workers();
    return false;
  }
  if (options_.num_workers == 0) {
    const int64_t b = next_consume_++;
    try {
      out = make_batch(b);
    } catch (...) {
      next_consume_ = num_batches();  // the epoch ends with the error, as with workers
      throw;
    }
    return true;
  }
  Result r;
  {
    std::unique_lock<std::mutex> lock(mu_);
    can_consume_.wait(lock, [&] { return ready_.count(next_consume_) != 0; });
    auto it = ready_.find(next_consume_);
    r = std::move(it->second);
    ready_.erase(it);
    ++next_consume_;
  }
  can_produce_.notify_all();
  if (r.error) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      next_consume_ = num_batches();
    }
    stop_workers();
    std::rethrow_exception(r.error);
  }
  out = std::move(r.batch);
  return true;
}

void DataLoader::stop_workers() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  can_produce_.notify_all();
  for (auto& t : workers_) t.join();
  workers_.clear();
  std::lock_guard<std::mutex> lock(mu_);
  stop_ = false;
  ready_.clear();
}

}  // namespace finch::data
