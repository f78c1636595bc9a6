// Helpers of the reference-kernel tests (tests/runtime/test_reference_*.cc): code tensors from
// plain vectors, seeded random codes, non-contiguous copies, rq tables from real multipliers.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

#include "framework/tensor.h"
#include "kernels/reference.h"
#include "kernels/requant.h"

namespace finch::test {

// An i8/u8 tensor holding `codes` (row-major).
inline Tensor codes(const std::vector<int32_t>& v, const Shape& shape, DType t = DType::i8) {
  return from_vector(v, shape).to(t);
}

inline std::vector<int32_t> values(const Tensor& t) { return t.to_vector<int32_t>(); }

// Seeded uniform codes in [lo, hi].
inline std::vector<int32_t> random_codes(std::mt19937& rng, int64_t n, int32_t lo, int32_t hi) {
  std::uniform_int_distribution<int32_t> d(lo, hi);
  std::vector<int32_t> v(static_cast<size_t>(n));
  for (auto& x : v) x = d(rng);
  return v;
}

inline int32_t code_lo(DType t) { return t == DType::u8 ? 0 : -128; }
inline int32_t code_hi(DType t) { return t == DType::u8 ? 255 : 127; }

// The same values as t in a view whose last dimension has stride 2 (every other element of a
// buffer twice as wide, the gaps filled with a code that would show if read).
inline Tensor strided_copy(const Tensor& t) {
  Shape wide = t.shape();
  wide.back() *= 2;
  Tensor buf = full(wide, 77, t.dtype());
  Tensor view = buf.slice(-1, 0, wide.back(), 2);
  view.copy_(t);
  EXPECT_FALSE(view.is_contiguous());
  return view;
}

// rq table of per-channel real multipliers (quantize_multiplier of each).
inline Tensor rq_of(const std::vector<double>& m) {
  return quant::reference::rq_tensor(quant::quantize_multipliers(m));
}

}  // namespace finch::test
