// acc += g for the engine's gradient buffers and the leaves' .grad.
#include "autograd/accumulate.h"

#include "framework/parallel.h"

namespace finch::autograd {

namespace {
template <typename T>
void add_contiguous(T* acc, const T* g, int64_t n) {
  parallel_for(0, n, 1 << 15, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) acc[i] += g[i];
  });
}
}  // namespace

void add_into(Tensor& acc, const Tensor& g) {
  FINCH_CHECK(acc.shape() == g.shape(), "gradient of shape ", shape_str(g.shape()),
              " cannot be added to one of shape ", shape_str(acc.shape()));
  if (!acc.is_contiguous()) acc = acc.contiguous();
  const Tensor gc = g.to(acc.dtype()).contiguous();
  if (acc.dtype() == DType::f32) {
    add_contiguous(acc.data<float>(), gc.data<float>(), acc.numel());
  } else if (acc.dtype() == DType::f64) {
    add_contiguous(acc.data<double>(), gc.data<double>(), acc.numel());
  } else {
    fail("gradient accumulation supports F32 and F64, got ", dtype_name(acc.dtype()));
  }
}

Tensor zero_grad_like(const Shape& shape, DType dtype) { return zeros(shape, dtype); }

}  // namespace finch::autograd
