// Differentiable matmul and linear: forward through ops/matmul, backward rules beside them.
#include "autograd/capture.h"
#include "autograd/functional.h"
#include "autograd/node.h"
#include "framework/grad_mode.h"
#include "ops/matmul.h"
#include "ops/op_attrs.h"

namespace finch {

using autograd::Grads;
using autograd::Needs;

Tensor matmul(const Tensor& a, const Tensor& b) {
  const bool rec = autograd::should_record({a, b});
  NoGradGuard ng;
  Tensor y = ops::matmul(a, b);
  if (rec)
    autograd::record("matmul", {a, b}, {y},
                     [a = a.detach(), b = b.detach()](const Grads& g, const Needs& needs) {
                       ops::MatmulGrads r = ops::matmul_backward(g[0], a, b, needs[0], needs[1]);
                       return Grads{r.da, r.db};
                     });
  return y;
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  autograd::CaptureScope cap;
  const bool rec = autograd::should_record({x, weight, bias});
  NoGradGuard ng;
  Tensor y = ops::linear(x, weight, bias);
  if (cap.active()) cap.record("linear", {x, weight, bias}, {y}, {{ops::attr::act.name, "none"}});
  if (rec)
    autograd::record("linear", {x, weight, bias}, {y},
                     [x = x.detach(), w = weight.detach(), has_bias = bias.defined()](
                         const Grads& g, const Needs& needs) {
                       ops::LinearGrads r = ops::linear_backward(
                           g[0], x, w, needs[0], needs[1], has_bias && needs.size() > 2 && needs[2]);
                       return Grads{r.dx, r.dweight, r.dbias};
                     });
  return y;
}

}  // namespace finch
