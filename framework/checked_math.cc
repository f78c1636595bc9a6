// Overflow-checked shape arithmetic (checked_math.h).
#include "framework/checked_math.h"

#include <limits>

#include "framework/error.h"
#include "framework/tensor.h"

namespace finch {

int64_t checked_mul(int64_t a, int64_t b, const char* what) {
  int64_t r = 0;
  if (a < 0 || b < 0) fail(what, ": expected non-negative sizes, found ", a, " × ", b);
  if (__builtin_mul_overflow(a, b, &r)) fail(what, ": ", a, " × ", b, " does not fit in 64 bits");
  return r;
}

int64_t checked_add(int64_t a, int64_t b, const char* what) {
  int64_t r = 0;
  if (a < 0 || b < 0) fail(what, ": expected non-negative sizes, found ", a, " + ", b);
  if (__builtin_add_overflow(a, b, &r)) fail(what, ": ", a, " + ", b, " does not fit in 64 bits");
  return r;
}

int64_t checked_numel(const std::vector<int64_t>& shape, const char* what) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) fail(what, ": expected non-negative sizes, found shape ", shape_str(shape));
    if (__builtin_mul_overflow(n, d, &n))
      fail(what, ": shape ", shape_str(shape), " has more elements than fit in 64 bits");
  }
  return n;
}

int64_t window_out_size(int64_t in, int64_t k, int64_t stride, int64_t pad_lo, int64_t pad_hi,
                        int64_t dil, bool ceil_mode, const char* what) {
  if (in < 0) fail(what, ": expected a non-negative input size, found ", in);
  if (k < 1) fail(what, ": expected a kernel size of at least 1, found ", k);
  if (stride < 1) fail(what, ": expected a stride of at least 1, found ", stride);
  if (dil < 1) fail(what, ": expected a dilation of at least 1, found ", dil);
  if (pad_lo < 0 || pad_hi < 0) fail(what, ": expected non-negative padding, found ", pad_lo, " and ", pad_hi);
  const int64_t span = checked_add(checked_mul(dil, k - 1, what), 1, what);  // extent of one window
  const int64_t padded = checked_add(checked_add(in, pad_lo, what), pad_hi, what);
  if (padded < span)
    fail(what, ": the window (", span, " positions with dilation) is larger than the padded input (", padded, ")");
  int64_t out = (padded - span) / stride + 1;
  if (ceil_mode) {
    if ((padded - span) % stride != 0) ++out;
    // The last window must start inside the input or its left padding.
    if ((out - 1) * stride >= in + pad_lo) --out;
  }
  return out;
}

}  // namespace finch
