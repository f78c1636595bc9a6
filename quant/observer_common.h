// Private to quant/: input checks and the statistics pass shared by every observer, plus the
// helpers that read and write their state tensors.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "framework/tensor.h"
#include "kernels/qparams.h"

namespace finch::quant::detail {

// Checks x (defined, f32, non-empty, axis inside its dims) and returns the min and max of each
// channel (spec.axis >= 0) or of the whole tensor (one entry). Fails naming `who` on bad input
// or on a NaN/Inf value.
std::pair<std::vector<float>, std::vector<float>> observe_minmax(const std::string& who, const QSpec& spec,
                                                                  const Tensor& x);

// A [n] f32 tensor holding v.
Tensor vector_tensor(const std::vector<float>& v);
// The tensor called `name` in s, which must be 1-D f32; fails naming `who` otherwise.
std::vector<float> state_vector(const std::string& who, const std::vector<std::pair<std::string, Tensor>>& s,
                                const std::string& name);

}  // namespace finch::quant::detail
