// Overflow-checked shape arithmetic: products of sizes, element counts and byte counts, and the
// output size of a convolution or pooling window. Every number here can come from a file or an
// option (a program's attribute, an IDX header, --batch), so an overflow is a user error with a
// sentence, never wrapped arithmetic that a kernel then indexes with.
#pragma once

#include <cstdint>
#include <vector>

namespace finch {

// a·b for non-negative a, b; fails with "<what>: a × b does not fit in 64 bits" on overflow.
int64_t checked_mul(int64_t a, int64_t b, const char* what);
// a + b for non-negative a, b, checked the same way.
int64_t checked_add(int64_t a, int64_t b, const char* what);
// Product of the sizes; fails on a negative size or an overflow, naming `what` and the shape.
int64_t checked_numel(const std::vector<int64_t>& shape, const char* what);

// Output length of a sliding window over `in` positions: ⌊(in + pad_lo + pad_hi − dil·(k−1) − 1) /
// stride⌋ + 1 (⌈…⌉ with ceil_mode, where the last window must start inside the input or its left
// padding, as PyTorch). Fails with a sentence when a parameter is out of range (in < 0, k < 1,
// stride < 1, dil < 1, pad < 0), the arithmetic would overflow, or the window does not fit (the
// result would be < 1). `what` names the op and axis: "conv2d (height)".
int64_t window_out_size(int64_t in, int64_t k, int64_t stride, int64_t pad_lo, int64_t pad_hi,
                        int64_t dil, bool ceil_mode, const char* what);

}  // namespace finch
