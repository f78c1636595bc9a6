// Differentiable synchronized batch norm: training-mode batch norm whose batch statistics (and
// the two batch reductions of its backward) span every process of a communicator, so N processes
// × batch B normalize like 1 process × batch N·B (torch.nn.SyncBatchNorm). The kernels and the
// numerics are in ops/sync_batch_norm.h; nn::BatchNorm calls this when given a communicator
// (nn::convert_sync_batchnorm).
#pragma once

#include "framework/dist.h"
#include "framework/tensor.h"

namespace finch {

// x [N, C, *]; running_mean/var updated in place (the same values on every process); weight/bias
// optional. Forward all-reduces [Σx, Σx², count] per channel on `comm`, backward (when x needs a
// gradient) [Σdy, Σdy·(x − mean)]. `comm` must outlive the recorded graph, and every process must
// run the same sequence of these calls (the same model in training mode: they are collectives).
// With a one-process communicator it is batch_norm(…, training=true) up to float rounding.
Tensor sync_batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                       const Tensor& weight, const Tensor& bias, double momentum, double eps,
                       dist::Communicator& comm);

}  // namespace finch
