// Gradient clipping, as torch.nn.utils.clip_grad_norm_ / clip_grad_value_.
#pragma once

#include <vector>

#include "framework/tensor.h"

namespace finch::optim {

// Scales all gradients by min(1, max_norm / (total_norm + 1e-6)) in place, where total_norm is
// the norm_type-norm of all gradients taken together (norm_type = INFINITY: the max |g|).
// Parameters without a gradient are skipped. Returns total_norm (before clipping).
// error_if_nonfinite: throw instead of scaling when total_norm is nan or inf.
double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm, double norm_type = 2.0,
                       bool error_if_nonfinite = false);

// Clamps every gradient element to [-clip_value, clip_value] in place.
void clip_grad_value_(const std::vector<Tensor>& params, double clip_value);

}  // namespace finch::optim
