// Differentiable step masks and means over the time axis with per-sample lengths (ops/steps.h),
// recorded by graph capture as the program ops mask_steps and mean_steps (lengths: input 1).
#include "autograd/capture.h"
#include "autograd/functional.h"
#include "autograd/steps.h"
#include "autograd/node.h"
#include "framework/grad_mode.h"
#include "ops/steps.h"

namespace finch {

using autograd::Grads;
using autograd::Needs;

Tensor mask_steps(const Tensor& x, const Tensor& lengths) {
  autograd::CaptureScope cap;
  const bool rec = autograd::should_record({x});
  NoGradGuard ng;
  Tensor y = ops::mask_steps(x, lengths);
  if (cap.active()) cap.record("mask_steps", {x, lengths}, {y});
  if (rec)
    autograd::record("mask_steps", {x}, {y}, [lengths](const Grads& g, const Needs&) {
      return Grads{ops::mask_steps(g[0], lengths)};
    });
  return y;
}

Tensor mean_steps(const Tensor& x, const Tensor& lengths) {
  autograd::CaptureScope cap;
  const bool rec = autograd::should_record({x});
  NoGradGuard ng;
  Tensor y = ops::mean_steps(x, lengths);
  if (cap.active()) cap.record("mean_steps", {x, lengths}, {y});
  if (rec)
    autograd::record("mean_steps", {x}, {y}, [lengths, T = x.size(2)](const Grads& g, const Needs&) {
      return Grads{ops::mean_steps_backward(g[0], lengths, T)};
    });
  return y;
}

}  // namespace finch
