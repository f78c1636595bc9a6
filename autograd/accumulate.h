// Gradient summation used by the engine (kept apart so the engine needs no op library).
#pragma once

#include "framework/tensor.h"

namespace finch::autograd {

// acc += g elementwise, in place; shapes must match (the engine checks them first).
void add_into(Tensor& acc, const Tensor& g);
// A zero gradient for an output that received none.
Tensor zero_grad_like(const Shape& shape, DType dtype);

}  // namespace finch::autograd
