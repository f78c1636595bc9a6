// Internal helpers of the reference kernels (reference.cc, reference_pool.cc): argument checks
// that end in one finch::Error sentence, codes in and out of plain int32 vectors.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "framework/tensor.h"
#include "ops/pool.h"

namespace finch::quant::reference::detail {

// The code range of an 8-bit dtype: i8 [-128, 127], u8 [0, 255].
int32_t code_min(DType t);
int32_t code_max(DType t);

// Checks that x is a defined i8/u8 tensor (`what` names it in the sentence: "input x").
void check_codes(const char* op, const char* what, const Tensor& x);
// Checks that z lies inside the code range of dtype t (a zero point is always a code).
void check_zero_point(const char* op, const char* what, int32_t z, DType t);
// Checks out_dtype (i8/u8), qmin <= qmax inside its range, and z_out inside its range.
void check_output(const char* op, int32_t z_out, int32_t qmin, int32_t qmax, DType out_dtype);
// The arguments of an add of two quantized tensors (qadd and its optimized kernels): codes of one
// shape, zero points inside their ranges, positive finite scales, a valid output.
void check_add_args(const char* op, const Tensor& a, float sa, int32_t za, const Tensor& b, float sb, int32_t zb,
                    float s_out, int32_t z_out, int32_t qmin, int32_t qmax, DType out_dtype);
// The pool parameters torch accepts (kernel, stride >= 1, padding >= 0 and at most half the
// kernel) for an H×W plane, and the output size OH×OW, which must not be empty.
void check_pool(const char* op, const ops::Pool2dParams& p, int64_t H, int64_t W, int64_t& OH, int64_t& OW);
// Checks a scale: positive and finite.
void check_scale(const char* op, const char* what, float s);

// "I8 [2, 3]" or "an undefined tensor": what a sentence says was found.
std::string describe(const Tensor& t);

// The codes of x (i8/u8, any strides) in row-major order.
std::vector<int32_t> codes_of(const Tensor& x);
// A new contiguous tensor of dtype t (i8/u8) holding `codes` (each already inside t's range).
Tensor codes_tensor(const std::vector<int32_t>& codes, const Shape& shape, DType t);

}  // namespace finch::quant::reference::detail
