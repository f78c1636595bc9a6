// Per-sample step masks and means over the time axis (steps.h). Memory-bound loops: one scalar
// implementation is both the kernel and its reference.
#include "ops/steps.h"

#include <cstring>
#include <vector>

#include "framework/error.h"

namespace finch::ops {

namespace {

std::vector<int64_t> lengths_of(const Tensor& lengths) {
  const Tensor l = lengths.contiguous();
  std::vector<int64_t> out(size_t(l.numel()));
  if (l.dtype() == DType::i64) {
    for (int64_t i = 0; i < l.numel(); ++i) out[size_t(i)] = l.data<int64_t>()[i];
  } else {
    for (int64_t i = 0; i < l.numel(); ++i) out[size_t(i)] = l.data<int32_t>()[i];
  }
  return out;
}

}  // namespace

void check_step_lengths(const Tensor& lengths, int64_t B, int64_t T, const char* where) {
  if (!lengths.defined() || (lengths.dtype() != DType::i64 && lengths.dtype() != DType::i32) || lengths.dim() != 1 ||
      lengths.size(0) != B)
    fail(where, ": expected lengths i64 [", B, "], found ",
         lengths.defined() ? std::string(dtype_name(lengths.dtype())) + " " + shape_str(lengths.shape()) : std::string("none"));
  for (int64_t l : lengths_of(lengths))
    if (l < 1 || l > T) fail(where, ": expected every length in [1, ", T, "] (the padded batch's steps), found ", l);
}

Tensor mask_steps(const Tensor& x, const Tensor& lengths, double fill) {
  if (x.dim() < 2) fail("mask_steps: expected x [B, ..., T], found shape ", shape_str(x.shape()));
  const int64_t B = x.size(0), T = x.size(-1);
  check_step_lengths(lengths, B, T, "mask_steps");
  const std::vector<int64_t> len = lengths_of(lengths);
  Tensor y = x.contiguous().clone();
  const int64_t rows = B > 0 ? y.numel() / (B * T) : 0;  // rows of T steps per sample
  const Tensor f = full({1}, fill, x.dtype());
  const size_t es = dtype_size(y.dtype());
  auto* base = static_cast<uint8_t*>(y.raw_data());
  const auto* fv = static_cast<const uint8_t*>(f.raw_data());
  for (int64_t b = 0; b < B; ++b)
    for (int64_t r = 0; r < rows; ++r) {
      uint8_t* row = base + size_t((b * rows + r) * T) * es;
      for (int64_t t = len[size_t(b)]; t < T; ++t) std::memcpy(row + size_t(t) * es, fv, es);
    }
  return y;
}

// f32 and f64 (gradchecks) alike: the sum runs in f64 in step order, rounded once to x's dtype.
Tensor mean_steps(const Tensor& x, const Tensor& lengths) {
  if (x.dim() != 3 || (x.dtype() != DType::f32 && x.dtype() != DType::f64))
    fail("mean_steps: expected x f32 [B, C, T], found ", dtype_name(x.dtype()), " ", shape_str(x.shape()));
  const int64_t B = x.size(0), C = x.size(1), T = x.size(2);
  if (lengths.defined()) check_step_lengths(lengths, B, T, "mean_steps");
  const std::vector<int64_t> len = lengths.defined() ? lengths_of(lengths) : std::vector<int64_t>(size_t(B), T);
  const Tensor xc = x.contiguous().to(DType::f64);
  Tensor y = empty({B, C}, DType::f64);
  const double* px = xc.data<double>();
  double* py = y.data<double>();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c) {
      const double* row = px + (b * C + c) * T;
      double s = 0.0;
      for (int64_t t = 0; t < len[size_t(b)]; ++t) s += row[t];
      py[b * C + c] = s / double(len[size_t(b)]);
    }
  return y.to(x.dtype());
}

Tensor mean_steps_backward(const Tensor& g, const Tensor& lengths, int64_t T) {
  if (g.dim() != 2 || (g.dtype() != DType::f32 && g.dtype() != DType::f64))
    fail("mean_steps backward: expected g f32 [B, C], found ", dtype_name(g.dtype()), " ", shape_str(g.shape()));
  const int64_t B = g.size(0), C = g.size(1);
  if (lengths.defined()) check_step_lengths(lengths, B, T, "mean_steps backward");
  const std::vector<int64_t> len = lengths.defined() ? lengths_of(lengths) : std::vector<int64_t>(size_t(B), T);
  const Tensor gc = g.contiguous().to(DType::f64);
  Tensor dx = zeros({B, C, T}, DType::f64);
  const double* pg = gc.data<double>();
  double* pd = dx.data<double>();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c) {
      const double v = pg[b * C + c] / double(len[size_t(b)]);
      for (int64_t t = 0; t < len[size_t(b)]; ++t) pd[(b * C + c) * T + t] = v;
    }
  return dx.to(g.dtype());
}

}  // namespace finch::ops
