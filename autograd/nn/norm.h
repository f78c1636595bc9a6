// BatchNorm1d/2d and LayerNorm with torch.nn's buffers, names and defaults.
#pragma once

#include <optional>

#include "autograd/nn/module.h"
#include "framework/dist.h"

namespace finch::nn {

// Buffers running_mean (0), running_var (1) and num_batches_tracked (an i64 scalar counted
// up by each training forward), parameters weight (1) and bias (0), as torch's _BatchNorm.
// momentum = nullopt uses the cumulative average 1/num_batches_tracked, as torch.
class BatchNorm : public Module {
 public:
  Tensor forward_impl(const Tensor& x) override;
  void reset_running_stats();
  void reset_parameters();

  int64_t num_features;
  double eps;
  std::optional<double> momentum;
  bool affine, track_running_stats;
  Tensor weight, bias;                                   // [C] or undefined (affine=false)
  Tensor running_mean, running_var, num_batches_tracked;  // undefined without tracking
  // Synchronized BN (set by convert_sync_batchnorm): in training mode the batch statistics span
  // every process of this communicator (autograd/sync_batch_norm.h); null = this process's batch.
  // Eval mode is unchanged. Not owned: it must outlive the module's training forwards.
  dist::Communicator* sync_comm = nullptr;

 protected:
  BatchNorm(int64_t num_features, double eps, std::optional<double> momentum, bool affine,
            bool track_running_stats);
  virtual void check_input(const Tensor& x) const = 0;
};

// x [N, C] or [N, C, L].
class BatchNorm1d : public BatchNorm {
 public:
  explicit BatchNorm1d(int64_t num_features, double eps = 1e-5,
                       std::optional<double> momentum = 0.1, bool affine = true,
                       bool track_running_stats = true)
      : BatchNorm(num_features, eps, momentum, affine, track_running_stats) {}
  std::string type_name() const override { return "BatchNorm1d"; }

 private:
  void check_input(const Tensor& x) const override;
};

// x [N, C, H, W].
class BatchNorm2d : public BatchNorm {
 public:
  explicit BatchNorm2d(int64_t num_features, double eps = 1e-5,
                       std::optional<double> momentum = 0.1, bool affine = true,
                       bool track_running_stats = true)
      : BatchNorm(num_features, eps, momentum, affine, track_running_stats) {}
  std::string type_name() const override { return "BatchNorm2d"; }

 private:
  void check_input(const Tensor& x) const override;
};

// Makes every BatchNorm1d/2d in `model` (its descendants included) synchronized over `comm`
// (null: back to per-process statistics), as torch.nn.SyncBatchNorm.convert_sync_batchnorm;
// returns how many it set. Names, buffers and state_dict stay the same.
int64_t convert_sync_batchnorm(Module& model, dist::Communicator* comm);

// Normalizes over the trailing dims `normalized_shape`; weight 1, bias 0.
class LayerNorm : public Module {
 public:
  explicit LayerNorm(Shape normalized_shape, double eps = 1e-5, bool elementwise_affine = true);
  std::string type_name() const override { return "LayerNorm"; }
  Tensor forward_impl(const Tensor& x) override;

  Shape normalized_shape;
  double eps;
  Tensor weight, bias;  // normalized_shape, or undefined without elementwise_affine
};

}  // namespace finch::nn
