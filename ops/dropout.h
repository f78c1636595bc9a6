// Inverted dropout: keep each element with probability 1-p and scale the kept ones by 1/(1-p),
// with the mask drawn from a finch::Generator.
#pragma once

#include "framework/random.h"
#include "framework/tensor.h"

namespace finch::ops {

struct DropoutResult {
  Tensor y;     // x's shape, contiguous
  Tensor mask;  // b8, x's shape: true = kept
};

// Training-mode dropout for p in [0, 1] (p = 1 drops everything). Draws ONE 64-bit seed from
// `gen`, then fills fixed blocks of the mask from per-block generators seeded from it, so the
// mask depends only on the generator's state (not on the thread count) and blocks fill in
// parallel.
DropoutResult dropout(const Tensor& x, double p, Generator& gen);

// dx = dy · mask / (1-p).
Tensor dropout_backward(const Tensor& dy, const Tensor& mask, double p);

// The mask the fast path draws, elementwise, in plain loops (for tests): same seed → same mask.
Tensor dropout_mask_reference(const Shape& shape, double p, Generator& gen);

}  // namespace finch::ops
