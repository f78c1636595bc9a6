// The backward engine: runs the recorded graph in reverse topological order, summing the
// gradients that reach each node, and leaves them in the leaves' .grad.
#pragma once

#include <vector>

#include "framework/tensor.h"

namespace finch {

// Backpropagates from `root` (a scalar, unless `grad` gives the gradient of each element).
// Without retain_graph the saved tensors are freed, and a second backward through the same
// graph is an error.
void backward(const Tensor& root, const Tensor& grad = Tensor(), bool retain_graph = false);
// Several roots at once (e.g. the h and c outputs of an LSTM cell); grads[i] may be undefined
// only for a scalar root.
void backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads,
              bool retain_graph = false);

}  // namespace finch
