// Pooling modules.
#include "autograd/nn/pool.h"

namespace finch::nn {

// stride 0 is torch's stride=None: the kernel size.
static Pool2dParams square(int64_t k, int64_t s, int64_t p, bool ceil_mode, bool count_include_pad) {
  if (k <= 0) fail("pool2d: kernel_size must be positive, got ", k);
  Pool2dParams o;
  o.kh = o.kw = k;
  o.sh = o.sw = s == 0 ? k : s;
  o.ph = o.pw = p;
  o.ceil_mode = ceil_mode;
  o.count_include_pad = count_include_pad;
  return o;
}

MaxPool2d::MaxPool2d(int64_t k, int64_t s, int64_t p, bool ceil_mode)
    : options(square(k, s, p, ceil_mode, true)) {}
Tensor MaxPool2d::forward_impl(const Tensor& x) { return finch::max_pool2d(x, options); }

AvgPool2d::AvgPool2d(int64_t k, int64_t s, int64_t p, bool ceil_mode, bool count_include_pad)
    : options(square(k, s, p, ceil_mode, count_include_pad)) {}
Tensor AvgPool2d::forward_impl(const Tensor& x) { return finch::avg_pool2d(x, options); }

Tensor AdaptiveAvgPool2d::forward_impl(const Tensor& x) { return finch::adaptive_avg_pool2d(x, output_size); }

}  // namespace finch::nn
