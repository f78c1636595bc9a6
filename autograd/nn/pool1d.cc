// 1-D pooling: the fixed windows on the 2-D kernels over an H = 1 view, the adaptive max composed.
#include "autograd/nn/pool1d.h"

#include <vector>

#include "autograd/functional.h"
#include "ops/pool.h"

namespace finch::nn {

namespace {

// [N, C, L] or [C, L]; returns the time axis's index.
int64_t check_input(const char* op, const Tensor& x) {
  if (x.dim() != 2 && x.dim() != 3)
    fail(op, ": expected a 2-D [C, L] or 3-D [N, C, L] input, got shape ", shape_str(x.shape()));
  if (x.shape().back() < 1) fail(op, ": expected a non-empty time axis, got shape ", shape_str(x.shape()));
  return x.dim() - 1;
}

void check_window(const char* op, int64_t k, int64_t s, int64_t p) {
  if (k < 1 || s < 0 || p < 0)
    fail(op, ": expected kernel_size >= 1, stride >= 0 (0 = kernel_size) and padding >= 0, got ", k, ", ", s,
         " and ", p);
  if (2 * p > k) fail(op, ": expected padding at most half of kernel_size ", k, ", got ", p);
}

Pool2dParams row_window(int64_t k, int64_t s, int64_t p, bool ceil_mode, bool count_include_pad) {
  Pool2dParams o;
  o.kh = 1, o.sh = 1, o.ph = 0;
  o.kw = k, o.sw = s == 0 ? k : s, o.pw = p;
  o.ceil_mode = ceil_mode;
  o.count_include_pad = count_include_pad;
  return o;
}

// Runs `pool2d` on x viewed as [N, C, 1, L] (or [C, 1, L]) and drops the H axis again. Reshapes
// rather than unsqueeze/squeeze: graph capture records reshape and the 2-D pools.
template <typename F>
Tensor on_rows(const Tensor& x, int64_t t_axis, F pool2d) {
  Shape rows = x.shape();
  rows.insert(rows.begin() + t_axis, 1);
  const Tensor y = pool2d(finch::reshape(x, rows));
  Shape out = y.shape();
  out.erase(out.begin() + t_axis);
  return finch::reshape(y, out);
}

}  // namespace

Tensor max_pool1d(const Tensor& x, int64_t k, int64_t s, int64_t p, bool ceil_mode) {
  const int64_t t = check_input("max_pool1d", x);
  check_window("max_pool1d", k, s, p);
  const Pool2dParams w = row_window(k, s, p, ceil_mode, true);
  return on_rows(x, t, [&](const Tensor& v) { return finch::max_pool2d(v, w); });
}

Tensor avg_pool1d(const Tensor& x, int64_t k, int64_t s, int64_t p, bool ceil_mode, bool count_include_pad) {
  const int64_t t = check_input("avg_pool1d", x);
  check_window("avg_pool1d", k, s, p);
  const Pool2dParams w = row_window(k, s, p, ceil_mode, count_include_pad);
  return on_rows(x, t, [&](const Tensor& v) { return finch::avg_pool2d(v, w); });
}

Tensor adaptive_avg_pool1d(const Tensor& x, int64_t output_size) {
  const int64_t t = check_input("adaptive_avg_pool1d", x);
  if (output_size < 1) fail("adaptive_avg_pool1d: expected output_size >= 1, got ", output_size);
  return on_rows(x, t, [&](const Tensor& v) { return finch::adaptive_avg_pool2d(v, {1, output_size}); });
}

Tensor adaptive_max_pool1d(const Tensor& x, int64_t output_size) {
  const int64_t t = check_input("adaptive_max_pool1d", x);
  if (output_size < 1) fail("adaptive_max_pool1d: expected output_size >= 1, got ", output_size);
  const int64_t L = x.shape()[size_t(t)];
  if (output_size == 1) return finch::max(x, t, /*keepdim=*/true).first;
  std::vector<Tensor> cells;
  for (const ops::PoolWindow& w : ops::adaptive_pool_windows(output_size, L))
    cells.push_back(finch::max(finch::slice(x, t, w.lo, w.hi), t, /*keepdim=*/true).first);
  return finch::cat(cells, t);
}

MaxPool1d::MaxPool1d(int64_t k, int64_t s, int64_t p, bool ceil_mode)
    : kernel_size(k), stride(s == 0 ? k : s), padding(p), ceil_mode(ceil_mode) {
  check_window("MaxPool1d", k, s, p);
}

AvgPool1d::AvgPool1d(int64_t k, int64_t s, int64_t p, bool ceil_mode, bool count_include_pad)
    : kernel_size(k), stride(s == 0 ? k : s), padding(p), ceil_mode(ceil_mode),
      count_include_pad(count_include_pad) {
  check_window("AvgPool1d", k, s, p);
}

AdaptiveAvgPool1d::AdaptiveAvgPool1d(int64_t output_size) : output_size(output_size) {
  if (output_size < 1) fail("AdaptiveAvgPool1d: expected output_size >= 1, got ", output_size);
}

AdaptiveMaxPool1d::AdaptiveMaxPool1d(int64_t output_size) : output_size(output_size) {
  if (output_size < 1) fail("AdaptiveMaxPool1d: expected output_size >= 1, got ", output_size);
}

}  // namespace finch::nn
