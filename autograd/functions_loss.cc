// Differentiable losses (autograd/functional.h section "losses"): fused cross entropy,
// BCE with logits and MSE, each one node with its backward from ops/loss.h.
#include "autograd/functional.h"
#include "autograd/node.h"
#include "framework/grad_mode.h"
#include "ops/loss.h"

namespace finch {

using autograd::Grads;
using autograd::Needs;

Tensor cross_entropy(const Tensor& logits, const Tensor& target, Reduction reduction,
                     int64_t ignore_index, double label_smoothing) {
  const bool rec = autograd::should_record({logits});
  NoGradGuard ng;
  const ops::Reduction red = reduction;
  ops::CrossEntropyResult r =
      ops::cross_entropy(logits, target, red, ignore_index, label_smoothing);
  if (rec)
    autograd::record("cross_entropy", {logits}, {r.loss},
                     [x = logits.detach(), t = target.detach(), lse = r.lse, count = r.count, red,
                      ignore_index, label_smoothing](const Grads& g, const Needs&) {
                       return Grads{ops::cross_entropy_backward(g[0], x, t, lse, count, red,
                                                                ignore_index, label_smoothing)};
                     });
  return r.loss;
}

Tensor bce_with_logits(const Tensor& logits, const Tensor& target, Reduction reduction,
                       const Tensor& pos_weight) {
  const bool rec = autograd::should_record({logits, target, pos_weight});
  NoGradGuard ng;
  const ops::Reduction red = reduction;
  Tensor loss = ops::bce_with_logits(logits, target, pos_weight, red);
  if (rec)
    autograd::record(
        "bce_with_logits", {logits, target, pos_weight}, {loss},
        [x = logits.detach(), t = target.detach(),
         pw = pos_weight.defined() ? pos_weight.detach() : Tensor(), red](const Grads& g,
                                                                          const Needs& n) {
          ops::BceGrads d =
              ops::bce_with_logits_backward(g[0], x, t, pw, red, n[0], n[1], n[2] && pw.defined());
          return Grads{d.dx, d.dtarget, d.dpos_weight};
        });
  return loss;
}

Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction) {
  const bool rec = autograd::should_record({input, target});
  NoGradGuard ng;
  const ops::Reduction red = reduction;
  Tensor loss = ops::mse_loss(input, target, red);
  if (rec)
    autograd::record("mse_loss", {input, target}, {loss},
                     [x = input.detach(), t = target.detach(), red](const Grads& g,
                                                                    const Needs& n) {
                       // d(target) = -d(input): the same kernel with the roles swapped.
                       return Grads{n[0] ? ops::mse_loss_backward(g[0], x, t, red) : Tensor(),
                                    n[1] ? ops::mse_loss_backward(g[0], t, x, red) : Tensor()};
                     });
  return loss;
}

}  // namespace finch
