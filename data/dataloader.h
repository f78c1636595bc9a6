// DataLoader: batches (images F32 [B, C, H, W], labels I64 [B]; sequences padded to the batch's
// longest, see collate) from a Dataset, with seeded per-epoch shuffling, drop_last, and N worker
// threads filling a bounded prefetch queue.
//
// Determinism: the sample order of epoch e comes from a generator seeded by (seed, e), and
// sample i's augmentation generator is seeded by (seed, e, i) — so the batches are bit-identical
// whatever the worker count, and resuming at epoch e reproduces epoch e exactly.
//
// Threads: data loading is I/O and decoding, separate from the compute pool, so the workers are
// plain std::threads owned by the loader (the one place in finch that creates threads). They are
// started per epoch and joined when the epoch ends, when another epoch starts, or in the
// destructor (mid-epoch included). An exception thrown while a worker builds batch b is rethrown
// by next() when the consumer reaches batch b, and ends the epoch.
#pragma once

#include <condition_variable>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "data/dataset.h"

namespace finch::data {

struct DataLoaderOptions {
  int64_t batch_size = 64;
  bool shuffle = true;
  bool drop_last = false;  // drop the last batch when it is smaller than batch_size
  int num_workers = 0;     // 0: batches are built on the calling thread inside next()
  int prefetch_factor = 2; // batches built ahead per worker (the queue holds workers × this)
  uint64_t seed = 0;
  // Data-parallel sharding (framework/dist.h's dist::shard): this process takes positions
  // shard_rank, shard_rank + num_shards, … of each epoch's order (the same order on every rank,
  // from the same seed); every rank gets ⌊n / num_shards⌋ samples. 1: the whole dataset.
  int num_shards = 1;
  int shard_rank = 0;
};

struct Batch {
  // F32 [B, C, H, W] (a U8 sample is scaled by 1/255 like to_float); sequences F32 [B, C, T],
  // token ids I64 [B, T] (I64 samples stay I64).
  Tensor images;
  Tensor labels;  // I64 [B]
  // Variable-length sequences: I64 [B] valid steps of each sample (the rest of its last axis is
  // padding); undefined when every sample has the same length.
  Tensor lengths;
  Tensor targets;  // F32 [B, ...] regression targets; undefined for classification
};

// Stacks samples into a batch (what the DataLoader does with each batch's samples): I64 images
// (token ids) stay I64, every other dtype becomes F32 (U8 scaled by 1/255, like to_float), and
// all samples of a batch must end up with one dtype. Samples of rank 1 ([T] tokens) or 2 ([C, T] series)
// may differ in their last axis: they are padded at the end with zeros (padding id 0) to the
// longest, and `lengths` holds each one's T; when all have one shape, `lengths` stays undefined.
// Rank-3 images must all have one shape. Targets (all samples or none, one shape) are stacked
// into `targets`. `indices` (optional, one per sample) name the samples in error messages.
Batch collate(const std::vector<Sample>& samples, const int64_t* indices = nullptr);

class DataLoader {
 public:
  DataLoader(std::shared_ptr<const Dataset> dataset, DataLoaderOptions options);
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  int64_t num_batches() const;
  // Starts epoch `epoch` (stopping any epoch still running): the next next() returns its batch 0.
  void start_epoch(int64_t epoch);
  // The next batch of the current epoch; false when the epoch is over.
  bool next(Batch& out);
  // The dataset indices in the order epoch `epoch` visits them (all of them, before sharding and
  // drop_last: the same on every rank).
  std::vector<int64_t> epoch_order(int64_t epoch) const;
  // The seed of sample `index`'s augmentation generator in epoch `epoch`.
  uint64_t sample_seed(int64_t epoch, int64_t index) const;
  const DataLoaderOptions& options() const { return options_; }

 private:
  struct Result {
    Batch batch;
    std::exception_ptr error;
  };
  Batch make_batch(int64_t b) const;
  void worker_loop();
  void stop_workers();

  std::shared_ptr<const Dataset> dataset_;
  DataLoaderOptions options_;
  // The running epoch.
  int64_t epoch_ = -1;
  std::vector<int64_t> order_;
  int64_t next_consume_ = 0;  // the batch next() returns next
  // Shared with the workers, guarded by mu_.
  std::mutex mu_;
  std::condition_variable can_produce_, can_consume_;
  int64_t next_claim_ = 0;  // the next batch a worker may start
  bool stop_ = false;
  std::map<int64_t, Result> ready_;
  std::vector<std::thread> workers_;
};

}  // namespace finch::data
