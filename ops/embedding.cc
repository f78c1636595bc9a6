// Embedding gather and the bucketed scatter-add backward (see ops/embedding.h).
#include "ops/embedding.h"

#include <cstring>
#include <vector>

#include "framework/parallel.h"

namespace finch::ops {

namespace {

// The indices as a flat i64 vector, each checked against the table size.
std::vector<int64_t> checked_indices(const Tensor& indices, int64_t V, const char* op) {
  if (indices.dtype() != DType::i64 && indices.dtype() != DType::i32)
    fail(op, ": expected indices of dtype I64 or I32, got ", dtype_name(indices.dtype()));
  std::vector<int64_t> idx = indices.to_vector<int64_t>();
  for (size_t p = 0; p < idx.size(); ++p)
    if (idx[p] < 0 || idx[p] >= V)
      fail(op, ": index ", idx[p], " (at flat position ", p,
           ") is out of range for a table of ", V, " embeddings [0, ", V, ")");
  return idx;
}

}  // namespace

Tensor embedding(const Tensor& indices, const Tensor& weight_in) {
  if (weight_in.dim() != 2)
    fail("embedding: expected weight [num_embeddings, E], got shape ",
         shape_str(weight_in.shape()));
  const int64_t V = weight_in.size(0), E = weight_in.size(1);
  const std::vector<int64_t> idx = checked_indices(indices, V, "embedding");
  const Tensor w = weight_in.contiguous();
  Shape out_shape = indices.shape();
  out_shape.push_back(E);
  Tensor out = empty(out_shape, w.dtype());
  const size_t row_bytes = size_t(E) * dtype_size(w.dtype());
  const char* src = static_cast<const char*>(w.raw_data());
  char* dst = static_cast<char*>(out.raw_data());
  const int64_t P = int64_t(idx.size());
  const int64_t grain = std::max<int64_t>(1, 65536 / std::max<size_t>(row_bytes, 1));
  parallel_for(0, P, grain, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p)
      std::memcpy(dst + size_t(p) * row_bytes, src + size_t(idx[size_t(p)]) * row_bytes,
                  row_bytes);
  });
  return out;
}

namespace {

template <typename T>
void scatter_rows(const T* g, T* dw, const std::vector<int64_t>& start,
                  const std::vector<int64_t>& order, int64_t V, int64_t E, int64_t padding_idx) {
  parallel_for(0, V, std::max<int64_t>(1, 4096 / std::max<int64_t>(E, 1)),
               [&](int64_t v0, int64_t v1) {
                 for (int64_t v = v0; v < v1; ++v) {
                   T* row = dw + v * E;
                   std::fill(row, row + E, T(0));
                   if (v == padding_idx) continue;
                   for (int64_t k = start[size_t(v)]; k < start[size_t(v) + 1]; ++k) {
                     const T* src = g + order[size_t(k)] * E;
                     for (int64_t e = 0; e < E; ++e) row[e] += src[e];
                   }
                 }
               });
}

void check_backward_args(const Tensor& dy, const Tensor& indices, int64_t V, int64_t padding_idx,
                         const char* op) {
  if (dy.dtype() != DType::f32 && dy.dtype() != DType::f64)
    fail(op, ": expected an F32 or F64 gradient, got ", dtype_name(dy.dtype()));
  if (dy.dim() != indices.dim() + 1 ||
      !std::equal(indices.shape().begin(), indices.shape().end(), dy.shape().begin()))
    fail(op, ": expected dy of shape [", shape_str(indices.shape()), "..., E], got ",
         shape_str(dy.shape()));
  if (padding_idx >= V)
    fail(op, ": padding_idx ", padding_idx, " is out of range for a table of ", V, " embeddings");
}

}  // namespace

Tensor embedding_backward(const Tensor& dy_in, const Tensor& indices, int64_t num_embeddings,
                          int64_t padding_idx) {
  const int64_t V = num_embeddings;
  check_backward_args(dy_in, indices, V, padding_idx, "embedding_backward");
  const std::vector<int64_t> idx = checked_indices(indices, V, "embedding_backward");
  const Tensor dy = dy_in.contiguous();
  const int64_t E = dy.size(-1);
  // Counting sort of positions by row: start[v]..start[v+1] lists v's positions in order.
  std::vector<int64_t> start(size_t(V) + 1, 0), order(idx.size());
  for (int64_t i : idx) ++start[size_t(i) + 1];
  for (int64_t v = 0; v < V; ++v) start[size_t(v) + 1] += start[size_t(v)];
  {
    std::vector<int64_t> fill(start.begin(), start.end() - 1);
    for (size_t p = 0; p < idx.size(); ++p) order[size_t(fill[size_t(idx[p])]++)] = int64_t(p);
  }
  Tensor dw = empty({V, E}, dy.dtype());
  if (dy.dtype() == DType::f32)
    scatter_rows(dy.data<float>(), dw.data<float>(), start, order, V, E, padding_idx);
  else
    scatter_rows(dy.data<double>(), dw.data<double>(), start, order, V, E, padding_idx);
  return dw;
}

Tensor embedding_backward_reference(const Tensor& dy, const Tensor& indices,
                                    int64_t num_embeddings, int64_t padding_idx) {
  const int64_t V = num_embeddings;
  check_backward_args(dy, indices, V, padding_idx, "embedding_backward_reference");
  const std::vector<int64_t> idx = checked_indices(indices, V, "embedding_backward_reference");
  const auto g = dy.to_vector<double>();
  const int64_t E = dy.size(-1);
  std::vector<double> dw(size_t(V * E), 0.0);
  for (size_t p = 0; p < idx.size(); ++p) {
    if (idx[p] == padding_idx) continue;
    for (int64_t e = 0; e < E; ++e) dw[size_t(idx[p] * E + e)] += g[p * size_t(E) + size_t(e)];
  }
  return from_vector(dw, {V, E}).to(dy.dtype());
}

}  // namespace finch::ops
