// The DataLoader: ordered batches from workers that claim batch indices from a shared counter.
#include "data/dataloader.h"

#include <algorithm>
#include <cstring>

#include "data/transforms.h"
#include "framework/dist.h"

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
  if (options_.num_shards < 1 || options_.shard_rank < 0 || options_.shard_rank >= options_.num_shards)
    fail("DataLoader: expected shard_rank in [0, num_shards) with num_shards >= 1, found shard ",
         options_.shard_rank, " of ", options_.num_shards);
  if (options_.num_shards > 1 && dataset_->size() < options_.num_shards)
    fail("DataLoader: ", dataset_->size(), " samples cannot be shared among ", options_.num_shards,
         " processes (each needs at least one)");
}

DataLoader::~DataLoader() { stop_workers(); }

int64_t DataLoader::num_batches() const {
  const int64_t n = dataset_->size() / options_.num_shards, bs = options_.batch_size;
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
  const int64_t B = end - begin;
  std::vector<Sample> samples(static_cast<size_t>(B));
  for (int64_t k = begin; k < end; ++k) {
    const int64_t index = order_[size_t(k)];
    Generator gen(sample_seed(epoch_, index));
    Sample s = dataset_->get(index, gen);
    if (!s.image.defined()) fail("DataLoader: sample ", index, " has an undefined image");
    samples[size_t(k - begin)] = std::move(s);
  }
  return collate(samples, &order_[size_t(begin)]);
}

Batch collate(const std::vector<Sample>& samples, const int64_t* indices) {
  if (samples.empty()) fail("collate: expected at least one sample, found none");
  auto name = [&](size_t i) { return indices ? indices[i] : int64_t(i); };
  const int64_t B = int64_t(samples.size());
  // Token ids stay I64 (an embedding reads them); every other dtype becomes F32 (U8 scaled).
  std::vector<Tensor> images(samples.size());
  for (size_t i = 0; i < samples.size(); ++i) {
    const Tensor& img = samples[i].image;
    if (!img.defined()) fail("collate: sample ", name(i), " has an undefined image");
    images[i] = img.dtype() == DType::i64 ? img.contiguous() : to_float(img);
  }
  const Tensor& first = images[0];
  const DType dt = first.dtype();
  // Sequences ([T] tokens or [C, T] series) may differ in T: pad at the end of the time axis.
  // Images ([C, H, W]) must match exactly, as before, so a missing resize still fails loudly.
  const bool sequence = first.dim() == 1 || first.dim() == 2;
  int64_t T = 0;
  bool ragged = false;
  for (size_t i = 0; i < samples.size(); ++i) {
    const Tensor& img = images[i];
    if (img.dtype() != dt)
      fail("DataLoader: sample ", name(i), " is ", dtype_name(img.dtype()), " but sample ", name(0),
           " in the same batch is ", dtype_name(dt));
    const bool same_but_time = sequence && img.dim() == first.dim() &&
                               std::equal(img.shape().begin(), img.shape().end() - 1, first.shape().begin());
    if (img.shape() != first.shape() && !same_but_time) {
      fail("DataLoader: sample ", name(i), " has ", sequence ? "shape " : "image shape ", shape_str(img.shape()),
           " but sample ", name(0), " in the same batch has ", shape_str(first.shape()),
           sequence ? "; sequences may differ only in their last (time) axis"
                    : "; add a resize or crop transform so every image has one size");
    }
    if (sequence && img.size(-1) < 1) fail("DataLoader: sample ", name(i), " is an empty sequence");
    if (img.shape() != first.shape()) ragged = true;
    if (sequence) T = std::max(T, img.size(-1));
  }
  Batch out;
  Shape shape = first.shape();
  if (ragged) shape.back() = T;
  shape.insert(shape.begin(), B);
  // Padding is zeros: 0.0 for series and the padding id 0 for tokens.
  out.images = ragged ? zeros(shape, dt) : empty(shape, dt);
  out.labels = empty({B}, DType::i64);
  const size_t esize = dtype_size(dt);
  const int64_t per_sample = shape_numel(shape) / B;
  auto* dst = static_cast<uint8_t*>(out.images.raw_data());
  for (int64_t i = 0; i < B; ++i) {
    const Tensor& img = images[size_t(i)];
    const auto* src = static_cast<const uint8_t*>(img.raw_data());
    if (!ragged) {
      std::memcpy(dst + size_t(i * per_sample) * esize, src, size_t(img.numel()) * esize);
    } else {
      // Row r of the sample (all axes but time) goes to row r of a T-long slot.
      const int64_t Ti = img.size(-1), rows = img.numel() / Ti;
      for (int64_t r = 0; r < rows; ++r)
        std::memcpy(dst + size_t(i * per_sample + r * T) * esize, src + size_t(r * Ti) * esize, size_t(Ti) * esize);
    }
    out.labels.data<int64_t>()[i] = samples[size_t(i)].label;
  }
  if (ragged) {
    out.lengths = empty({B}, DType::i64);
    for (int64_t i = 0; i < B; ++i) out.lengths.data<int64_t>()[i] = images[size_t(i)].size(-1);
  }
  // Targets: all samples or none, one shape, stacked to F32 [B, ...].
  const Tensor& t0 = samples[0].target;
  for (size_t i = 0; i < samples.size(); ++i) {
    const Tensor& t = samples[i].target;
    if (t.defined() != t0.defined())
      fail("DataLoader: sample ", name(i), t.defined() ? " has" : " has no", " regression target but sample ",
           name(0), " in the same batch", t0.defined() ? " has one" : " has none");
    if (t.defined() && t.shape() != t0.shape())
      fail("DataLoader: sample ", name(i), " has target shape ", shape_str(t.shape()), " but sample ", name(0),
           " has ", shape_str(t0.shape()));
  }
  if (t0.defined()) {
    Shape ts = t0.shape();
    ts.insert(ts.begin(), B);
    out.targets = empty(ts, DType::f32);
    for (int64_t i = 0; i < B; ++i) {
      const Tensor t = samples[size_t(i)].target.to(DType::f32).contiguous();
      std::memcpy(out.targets.data<float>() + i * t.numel(), t.data<float>(), size_t(t.numel()) * sizeof(float));
    }
  }
  return out;
}

void DataLoader::start_epoch(int64_t epoch) {
  stop_workers();
  epoch_ = epoch;
  order_ = epoch_order(epoch);
  if (options_.num_shards > 1) order_ = dist::shard(order_, options_.shard_rank, options_.num_shards);
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
