// Embedding lookup (a gather of table rows) and its backward, a deterministic scatter-add.
//
// Shapes: indices I (any shape, i64 or i32), weight [V, E] (V = num_embeddings), output [I..., E].
#pragma once

#include <cstdint>

#include "framework/tensor.h"

namespace finch::ops {

// out[i..., :] = weight[indices[i...], :]. An index outside [0, V) is a finch::Error naming it.
Tensor embedding(const Tensor& indices, const Tensor& weight);

// dweight [V, E] = Σ over positions p with indices[p] == v of dy[p, :]; the row padding_idx
// (when 0 <= padding_idx < V; negative = none) gets no gradient. Positions are bucketed by row
// first (a counting sort), so every row is summed by one task in position order: no races and
// the same bits for any thread count.
Tensor embedding_backward(const Tensor& dy, const Tensor& indices, int64_t num_embeddings,
                          int64_t padding_idx = -1);

// Plain loops: a sequential scatter-add in position order.
Tensor embedding_backward_reference(const Tensor& dy, const Tensor& indices,
                                    int64_t num_embeddings, int64_t padding_idx = -1);

}  // namespace finch::ops
