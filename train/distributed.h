// Data-parallel training (DDP): the same model on N processes, each on its shard of every epoch
// (data::DataLoaderOptions::num_shards), parameters broadcast from rank 0 at the start and
// gradients averaged across the processes after each backward, so every rank takes the same
// optimizer step and the weights stay identical. docs/distributed.md says how to launch it.
//
// Overlap: gradients are averaged in buckets of about `bucket_bytes` (parameters in reverse
// registration order, which is about the order backward finishes them). autograd's
// GradReadyScope tells the reducer when a parameter's gradient is final; the bucket is copied
// into a flat buffer and handed to a background thread that all-reduces it while backward goes
// on with the earlier layers. Buckets start strictly in index order on every rank, so the
// collectives match across ranks whatever the timing. finish() waits for the rest before the
// optimizer step. A parameter that got no gradient on this rank contributes zeros (and gets the
// average of the others) so every rank steps the same tensors.
//
// Exactness: N ranks × batch B average N per-rank mean gradients; with equal per-rank batches
// (sharding guarantees it) that is the mean over the N·B samples, which 1 process with batch N·B
// computes — equal up to float summation order. BatchNorm statistics stay per rank (over B
// samples, not N·B), so models with BN match a single process only approximately — unless
// enable_sync_batchnorm() is called (--sync-bn): then every BatchNorm normalizes over all ranks'
// batches and N × B equals 1 × N·B with BN too, running statistics included.
//
// Synchronized BN and the bucket thread: BN's collectives are issued by the training thread in
// forward and, in backward, while the reducer's thread may be all-reducing gradient buckets.
// MPI requires every rank to issue the collectives of one communicator in the same order, and
// the interleaving of two threads differs between ranks. So BN gets its own communicator, a
// duplicate of the reducer's (dist::Communicator::duplicate, MPI_Comm_dup): each communicator
// then has one ordered stream — buckets in bucket order on one, BN layers in graph order on the
// other — and collectives on different communicators never match each other. The alternative,
// funnelling BN's reductions through the bucket queue, would also be ordered, but would put
// BN's small, latency-critical reductions (backward cannot continue without them) behind
// whole gradient buckets queued before them; on separate communicators both progress at once.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "autograd/nn/module.h"
#include "data/dataset.h"
#include "framework/dist.h"

namespace finch::train {

// What a run's communication cost: summed over the steps since the last reset().
struct CommStats {
  int64_t steps = 0;
  int64_t bytes = 0;             // gradient bytes each rank all-reduced
  double reduce_seconds = 0;     // time inside the all-reduce calls (background thread)
  double wait_seconds = 0;       // time the training thread waited for them after backward
  double backward_seconds = 0;   // backward plus that wait (what a step's backward cost)
  // Synchronized BatchNorm (training thread, inside forward and backward): collectives, bytes
  // each rank all-reduced, and the time inside those calls (including waiting for other ranks).
  int64_t sync_bn_calls = 0;
  int64_t sync_bn_bytes = 0;
  double sync_bn_seconds = 0;
};

class DataParallel {
 public:
  // `bucket_bytes` ≥ 1: the target bucket size (a parameter larger than it is a bucket alone).
  DataParallel(dist::Communicator& comm, nn::Module& model, int64_t bucket_bytes);
  ~DataParallel();
  DataParallel(const DataParallel&) = delete;
  DataParallel& operator=(const DataParallel&) = delete;

  int rank() const { return comm_.rank(); }
  int size() const { return comm_.size(); }
  dist::Communicator& comm() { return comm_; }
  int64_t num_buckets() const { return int64_t(buckets_.size()); }
  int64_t gradient_bytes() const;

  // Every parameter and buffer (BN running statistics) becomes rank 0's.
  void broadcast_parameters();
  // backward(loss) with the reducer hooked in, then finish(): on return every parameter's .grad
  // holds the average over the ranks.
  void backward(const Tensor& loss);
  // Synchronized BatchNorm: every BatchNorm1d/2d of the model normalizes over the batches of
  // all ranks, through a duplicate communicator (above). Collective: every rank calls it, before
  // training. Returns the number of BatchNorm modules. With one rank it is plain BN (up to
  // rounding). The destructor turns them back into per-process BN (the model outlives this).
  int64_t enable_sync_batchnorm();
  bool sync_batchnorm() const { return bool(bn_comm_); }
  // Sums `values` over the ranks in place (epoch totals: loss, correct, images).
  void sum(std::vector<double>& values) { comm_.all_reduce_sum(values.data(), int64_t(values.size())); }

  const CommStats& stats() const { return stats_; }
  void reset_stats() { stats_ = {}; }

 private:
  struct Slot {
    Tensor param;
    size_t bucket = 0;
    int64_t offset = 0;  // in the bucket's buffer (floats)
  };
  struct Bucket {
    std::vector<size_t> slots;
    std::vector<float> buffer;
    int64_t pending = 0;  // parameters not ready yet in this step
  };
  void on_ready(const Tensor& leaf);
  void launch_ready_buckets();  // in index order, as far as they are complete
  void finish();
  void comm_loop();

  dist::Communicator& comm_;
  std::unique_ptr<dist::Communicator> bn_comm_;  // sync BN's communicator (counting its traffic)
  nn::Module& model_;
  std::vector<Slot> slots_;
  std::vector<Bucket> buckets_;
  std::unordered_map<const void*, size_t> slot_of_;  // parameter TensorImpl → slot
  std::vector<bool> filled_;  // per slot, this step
  size_t next_launch_ = 0;

  // Shared with the background thread (mu_).
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<size_t> queue_;
  size_t done_ = 0;  // buckets of this step reduced so far
  bool stop_ = false;
  bool reducing_ = false;  // the thread is inside an all-reduce
  std::exception_ptr error_;
  double reduce_seconds_ = 0;
  std::thread thread_;

  CommStats stats_;
};

// Checks that every rank was launched alike before training starts: `items` (name, value) —
// options, model, data — are gathered from all ranks and compared with rank 0's. A difference
// is a finch::Error sentence naming the first differing item and both values, on every rank.
void check_same_launch(dist::Communicator& comm, const std::vector<std::pair<std::string, std::string>>& items);

// Fingerprint items of a model (parameter and buffer names, shapes, dtypes: one hash and a
// count) and of a dataset (size, and a hash of three samples' pixels and labels).
std::vector<std::pair<std::string, std::string>> model_fingerprint(const nn::Module& model);
std::vector<std::pair<std::string, std::string>> dataset_fingerprint(const data::Dataset& data, const std::string& name);

}  // namespace finch::train
