// Batch norm whose batch statistics span several processes (synchronized BatchNorm): the same
// contracts as ops::batch_norm in training mode, with a hook that sums per-channel figures across
// the processes at the two points where BN reduces over the batch.
//
// Shape vocabulary: x [N, C, *], S = product of the dims after C, M = N·S values per channel on
// this process, M_all = Σ M over the processes.
//
// Forward: each process computes its channel sums and sums of squared deviations from its own
// mean (two-pass, as ops::batch_norm), turns them into (Σx, Σx²) — Σx² as q + s·mean, which is
// exact in real arithmetic and accurate in double to ~1e-16·(1 + mean²/var) relative — and the
// hook sums [Σx (C), Σx² (C), M] over the processes: one collective. Then mean = Σx/M_all and
// var = Σx²/M_all − mean² (biased, normalizes; the unbiased one updates the running statistics,
// the same on every process).
//
// Backward: dweight = Σ dy·x̂ and dbias = Σ dy over this process's values (the data-parallel
// reducer averages them like any gradient); dx needs the batch's Σ dy and Σ dy·(x − mean), so the
// hook sums [Σdy (C), Σdy·(x − mean) (C)] over the processes: the second collective. With one
// process (the hook does nothing) both are ops::batch_norm's results up to float rounding.
#pragma once

#include <array>
#include <cstdint>
#include <functional>

#include "framework/tensor.h"
#include "ops/norm.h"

namespace finch::ops {

// Sums `values[0..n)` over the processes in place (identity in one process). Every process calls
// it the same number of times with the same n.
using SumAcrossProcesses = std::function<void(double* values, int64_t n)>;

struct SyncBatchNormResult {
  BatchNormResult bn;   // y, save_mean, save_invstd: the whole batch's statistics
  int64_t count = 0;    // M_all: values per channel over every process
};

// Training-mode batch norm with statistics over every process's batch. running_mean/var (when
// defined) are updated as ops::batch_norm does, with M_all. weight/bias optional.
SyncBatchNormResult sync_batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                                    const Tensor& weight, const Tensor& bias, double momentum, double eps,
                                    const SumAcrossProcesses& sum);

// needs = {dx, dweight, dbias}; `count` is the forward's M_all. The hook is called (once) only
// when dx is needed — the same on every process, whose graphs are the same.
NormGrads sync_batch_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& weight, const Tensor& save_mean,
                                   const Tensor& save_invstd, int64_t count, const SumAcrossProcesses& sum,
                                   std::array<bool, 3> needs = {true, true, true});

}  // namespace finch::ops
