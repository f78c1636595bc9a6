// Shared by the capture, pass and lowering tests: counting a graph's ops and comparing the
// tensors a program and a model produce.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "framework/tensor.h"
#include "runtime/graph.h"

namespace finch::test {

inline int count_op(const runtime::Graph& g, const std::string& op) {
  return int(std::count_if(g.nodes.begin(), g.nodes.end(), [&](const runtime::Node& n) { return n.op == op; }));
}

// Largest |a − b| over two tensors of one shape (compared as f32).
inline float max_abs_diff(const Tensor& a, const Tensor& b) {
  const auto x = a.to(DType::f32).contiguous().to_vector<float>(), y = b.to(DType::f32).contiguous().to_vector<float>();
  float m = x.size() == y.size() ? 0.0f : INFINITY;
  for (size_t i = 0; i < x.size() && i < y.size(); ++i) m = std::max(m, std::fabs(x[i] - y[i]));
  return m;
}

// How many f32 elements differ in their bits (a program must reproduce a simulation exactly).
inline int64_t differing(const Tensor& a, const Tensor& b) {
  const auto x = a.contiguous().to_vector<float>(), y = b.contiguous().to_vector<float>();
  int64_t n = x.size() == y.size() ? 0 : int64_t(std::max(x.size(), y.size()));
  for (size_t i = 0; i < x.size() && i < y.size(); ++i) n += std::memcmp(&x[i], &y[i], sizeof(float)) != 0;
  return n;
}

}  // namespace finch::test
