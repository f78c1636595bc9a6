// Inverted dropout: block-seeded Bernoulli masks and the masked scaling (see ops/dropout.h).
#include "ops/dropout.h"

#include <cmath>

#include "framework/parallel.h"

namespace finch::ops {

namespace {

constexpr int64_t kBlock = 8192;  // elements per mask block (one generator each)

// The generator of mask block `b`: distinct, well-mixed seeds from one draw of the caller's.
Generator block_generator(uint64_t seed, int64_t b) {
  return Generator(seed ^ (0x9E3779B97F4A7C15ull * uint64_t(b + 1)));
}

// Keeps an element when a 32-bit uniform draw is below (1-p)·2³²: exact for any p.
uint64_t keep_threshold(double p) {
  return uint64_t(std::ldexp(1.0 - p, 32));
}

void fill_block(bool* m, int64_t n, Generator& g, uint64_t thr) {
  int64_t i = 0;
  for (; i + 2 <= n; i += 2) {
    const uint64_t r = g.next_u64();
    m[i] = (r & 0xffffffffu) < thr;
    m[i + 1] = (r >> 32) < thr;
  }
  if (i < n) m[i] = (g.next_u64() & 0xffffffffu) < thr;
}

template <typename T>
void apply_mask(const T* x, const bool* m, T* y, int64_t n, T scale) {
  for (int64_t i = 0; i < n; ++i) y[i] = m[i] ? x[i] * scale : T(0);
}

void check_p(double p, const char* op) {
  if (!(p >= 0.0 && p <= 1.0)) fail(op, ": expected a probability p in [0, 1], got ", p);
}

}  // namespace

DropoutResult dropout(const Tensor& x_in, double p, Generator& gen) {
  check_p(p, "dropout");
  if (x_in.dtype() != DType::f32 && x_in.dtype() != DType::f64)
    fail("dropout: expected an F32 or F64 input, got ", dtype_name(x_in.dtype()));
  const Tensor x = x_in.contiguous();
  DropoutResult r{empty(x.shape(), x.dtype()), empty(x.shape(), DType::b8)};
  const uint64_t seed = gen.next_u64();
  const uint64_t thr = keep_threshold(p);
  const double scale = p < 1.0 ? 1.0 / (1.0 - p) : 0.0;
  const int64_t n = x.numel(), blocks = (n + kBlock - 1) / kBlock;
  bool* m = r.mask.data<bool>();
  parallel_for(0, blocks, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t i0 = b * kBlock, len = std::min(kBlock, n - i0);
      Generator g = block_generator(seed, b);
      fill_block(m + i0, len, g, thr);
      if (x.dtype() == DType::f32)
        apply_mask(x.data<float>() + i0, m + i0, r.y.data<float>() + i0, len, float(scale));
      else
        apply_mask(x.data<double>() + i0, m + i0, r.y.data<double>() + i0, len, scale);
    }
  });
  return r;
}

Tensor dropout_backward(const Tensor& dy_in, const Tensor& mask_in, double p) {
  check_p(p, "dropout_backward");
  if (dy_in.shape() != mask_in.shape() || mask_in.dtype() != DType::b8)
    fail("dropout_backward: expected a b8 mask of dy's shape ", shape_str(dy_in.shape()),
         ", got ", shape_str(mask_in.shape()), " ", dtype_name(mask_in.dtype()));
  if (dy_in.dtype() != DType::f32 && dy_in.dtype() != DType::f64)
    fail("dropout_backward: expected an F32 or F64 gradient, got ", dtype_name(dy_in.dtype()));
  const Tensor dy = dy_in.contiguous(), mask = mask_in.contiguous();
  Tensor dx = empty(dy.shape(), dy.dtype());
  const double scale = p < 1.0 ? 1.0 / (1.0 - p) : 0.0;
  const bool* m = mask.data<bool>();
  parallel_for(0, dy.numel(), 32768, [&](int64_t i0, int64_t i1) {
    if (dy.dtype() == DType::f32)
      apply_mask(dy.data<float>() + i0, m + i0, dx.data<float>() + i0, i1 - i0, float(scale));
    else
      apply_mask(dy.data<double>() + i0, m + i0, dx.data<double>() + i0, i1 - i0, scale);
  });
  return dx;
}

Tensor dropout_mask_reference(const Shape& shape, double p, Generator& gen) {
  check_p(p, "dropout_mask_reference");
  Tensor mask = empty(shape, DType::b8);
  const uint64_t seed = gen.next_u64();
  const uint64_t thr = keep_threshold(p);
  bool* m = mask.data<bool>();
  const int64_t n = mask.numel();
  for (int64_t b = 0; b * kBlock < n; ++b) {
    Generator g = block_generator(seed, b);
    for (int64_t i = b * kBlock; i < std::min(n, (b + 1) * kBlock); i += 2) {
      const uint64_t r = g.next_u64();
      m[i] = (r & 0xffffffffu) < thr;
      if (i + 1 < std::min(n, (b + 1) * kBlock)) m[i + 1] = (r >> 32) < thr;
    }
  }
  return mask;
}

}  // namespace finch::ops
