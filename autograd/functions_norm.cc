// Differentiable batch norm, layer norm, embedding and dropout (autograd/functional.h section
// "normalization, tables, dropout"): each records one fused backward rule from ops/.
#include "autograd/capture.h"
#include "autograd/functional.h"
#include "autograd/node.h"
#include "framework/grad_mode.h"
#include "ops/dropout.h"
#include "ops/embedding.h"
#include "ops/norm.h"
#include "ops/op_attrs.h"

namespace finch {

using autograd::Grads;
using autograd::Needs;

Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                  const Tensor& weight, const Tensor& bias, bool training, double momentum,
                  double eps) {
  autograd::CaptureScope cap;
  // Running statistics are buffers: updated in place, never differentiated.
  const bool rec = autograd::should_record({x, weight, bias});
  NoGradGuard ng;
  ops::BatchNormResult r = ops::batch_norm(x, running_mean, running_var, weight, bias, training,
                                           momentum, eps);
  if (cap.active())
    cap.record("batch_norm", {x, weight, bias, running_mean, running_var}, {r.y},
               {{ops::attr::eps.name, eps}, {ops::attr::training.name, training}});
  if (rec)
    autograd::record(
        "batch_norm", {x, weight, bias}, {r.y},
        [x = x.detach(), w = weight.defined() ? weight.detach() : Tensor(),
         mean = r.save_mean, invstd = r.save_invstd, training](const Grads& g, const Needs& n) {
          ops::NormGrads d = ops::batch_norm_backward(
              g[0], x, w, mean, invstd, training, {n[0], n[1] && w.defined(), n[2]});
          return Grads{d.dx, d.dweight, d.dbias};
        });
  return r.y;
}

Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight,
                  const Tensor& bias, double eps) {
  autograd::CaptureScope cap;
  const bool rec = autograd::should_record({x, weight, bias});
  NoGradGuard ng;
  ops::LayerNormResult r = ops::layer_norm(x, normalized_shape, weight, bias, eps);
  // The runtime's layer_norm normalizes the last dim (runtime/ops.md); a wider normalized_shape
  // is left unrecorded, so capture refuses it with its sentence.
  if (cap.active() && normalized_shape.size() == 1) cap.record("layer_norm", {x, weight, bias}, {r.y}, {{"eps", eps}});
  if (rec)
    autograd::record(
        "layer_norm", {x, weight, bias}, {r.y},
        [x = x.detach(), w = weight.defined() ? weight.detach() : Tensor(), normalized_shape,
         mean = r.mean, rstd = r.rstd](const Grads& g, const Needs& n) {
          ops::NormGrads d = ops::layer_norm_backward(g[0], x, normalized_shape, w, mean, rstd,
                                                      {n[0], n[1] && w.defined(), n[2]});
          return Grads{d.dx, d.dweight, d.dbias};
        });
  return r.y;
}

Tensor embedding(const Tensor& indices, const Tensor& weight, int64_t padding_idx) {
  autograd::CaptureScope cap;
  const bool rec = autograd::should_record({weight});
  NoGradGuard ng;
  Tensor y = ops::embedding(indices, weight);
  if (cap.active()) cap.record("embedding", {indices, weight}, {y});
  if (rec)
    autograd::record("embedding", {weight}, {y},
                     [indices = indices.detach(), V = weight.size(0), padding_idx](
                         const Grads& g, const Needs&) {
                       return Grads{ops::embedding_backward(g[0], indices, V, padding_idx)};
                     });
  return y;
}

Tensor dropout(const Tensor& x, double p, bool training, Generator* gen) {
  if (!(p >= 0.0 && p <= 1.0)) fail("dropout: expected a probability p in [0, 1], got ", p);
  // Identity: no copy and no node; the gradient flows straight through to x's producer.
  if (!training || p == 0.0) return x;
  autograd::CaptureScope cap;
  if (cap.active()) fail("dropout: a model is captured for a program in eval mode; dropout is in training mode");
  const bool rec = autograd::should_record({x});
  NoGradGuard ng;
  ops::DropoutResult r = ops::dropout(x, p, gen ? *gen : default_generator());
  if (rec)
    autograd::record("dropout", {x}, {r.y}, [mask = r.mask, p](const Grads& g, const Needs&) {
      return Grads{ops::dropout_backward(g[0], mask, p)};
    });
  return r.y;
}

}  // namespace finch
