// Differentiable reductions and softmax: sum, mean, max, argmax, var, softmax, log_softmax.
#include "autograd/capture.h"
#include "autograd/functional.h"
#include "autograd/node.h"
#include "framework/grad_mode.h"
#include "ops/reduce.h"
#include "ops/softmax.h"
#include "ops/op_attrs.h"

namespace finch {

using autograd::Grads;
using autograd::Needs;

Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  const bool rec = autograd::should_record({x});
  NoGradGuard ng;
  Tensor y = ops::sum(x, dims, keepdim);
  if (rec)
    autograd::record("sum", {x}, {y}, [shape = x.shape(), dims, keepdim](const Grads& g, const Needs&) {
      return Grads{ops::reduce_backward(g[0], shape, dims, keepdim, 1.0)};
    });
  return y;
}

Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  autograd::CaptureScope cap;
  const bool rec = autograd::should_record({x});
  NoGradGuard ng;
  Tensor y = ops::mean(x, dims, keepdim);
  if (cap.active()) cap.record("mean", {x}, {y}, {{ops::attr::dims.name, dims}, {ops::attr::keepdim.name, keepdim}});
  if (rec) {
    const auto nd = ops::normalize_dims(dims, x.dim(), "mean");
    const double scale = 1.0 / double(ops::reduced_count(x.shape(), nd));
    autograd::record("mean", {x}, {y},
                     [shape = x.shape(), nd, keepdim, scale](const Grads& g, const Needs&) {
                       return Grads{ops::reduce_backward(g[0], shape, nd, keepdim, scale)};
                     });
  }
  return y;
}

std::pair<Tensor, Tensor> max(const Tensor& x, int64_t dim, bool keepdim) {
  const bool rec = autograd::should_record({x});
  NoGradGuard ng;
  auto [values, indices] = ops::max(x, dim, keepdim);
  if (rec)
    // Only the values output is differentiable; the indices output gets a zero gradient from
    // the engine and is ignored here.
    autograd::record("max", {x}, {values},
                     [shape = x.shape(), idx = indices, dim, keepdim](const Grads& g, const Needs&) {
                       return Grads{ops::max_backward(g[0], idx, shape, dim, keepdim)};
                     });
  return {values, indices};
}

Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) {
  NoGradGuard ng;  // integer output: not differentiable, nothing recorded
  return ops::argmax(x, dim, keepdim);
}

Tensor var(const Tensor& x, const std::vector<int64_t>& dims, int64_t correction, bool keepdim) {
  const bool rec = autograd::should_record({x});
  NoGradGuard ng;
  Tensor y = ops::var(x, dims, correction, keepdim);
  if (rec)
    autograd::record("var", {x}, {y},
                     [xd = x.detach(), dims, correction, keepdim](const Grads& g, const Needs&) {
                       return Grads{ops::var_backward(g[0], xd, dims, correction, keepdim)};
                     });
  return y;
}

Tensor softmax(const Tensor& x, int64_t dim) {
  autograd::CaptureScope cap;
  const bool rec = autograd::should_record({x});
  NoGradGuard ng;
  Tensor y = ops::softmax(x, dim);
  if (cap.active()) cap.record("softmax", {x}, {y}, {{ops::attr::dim.name, dim}});
  if (rec)
    autograd::record("softmax", {x}, {y}, [y = y.detach(), dim](const Grads& g, const Needs&) {
      return Grads{ops::softmax_backward(g[0], y, dim)};
    });
  return y;
}

Tensor log_softmax(const Tensor& x, int64_t dim) {
  const bool rec = autograd::should_record({x});
  NoGradGuard ng;
  Tensor y = ops::log_softmax(x, dim);
  if (rec)
    autograd::record("log_softmax", {x}, {y}, [y = y.detach(), dim](const Grads& g, const Needs&) {
      return Grads{ops::log_softmax_backward(g[0], y, dim)};
    });
  return y;
}

}  // namespace finch
