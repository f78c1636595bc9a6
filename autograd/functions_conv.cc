// Differentiable conv2d, conv1d (conv2d kernels on an H = 1 view) and 2-D pooling.
#include "autograd/capture.h"
#include "autograd/functional.h"
#include "autograd/node.h"
#include "framework/grad_mode.h"
#include "ops/conv.h"
#include "ops/op_attrs.h"
#include "ops/pool.h"

namespace finch {

using autograd::Grads;
using autograd::Needs;

namespace {

bool wants(const Needs& needs, size_t i) { return i < needs.size() && needs[i]; }

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dParams& p) {
  autograd::CaptureScope cap;
  const bool rec = autograd::should_record({x, weight, bias});
  NoGradGuard ng;
  Tensor y = ops::conv2d(x, weight, bias, p);
  if (cap.active()) {
    nlohmann::json a = ops::to_json(p);
    a[ops::attr::act.name] = "none";
    cap.record("conv2d", {x, weight, bias}, {y}, a);
  }
  if (rec)
    autograd::record("conv2d", {x, weight, bias}, {y},
                     [x = x.detach(), w = weight.detach(), p, has_bias = bias.defined()](
                         const Grads& g, const Needs& needs) {
                       ops::Conv2dGrads r = ops::conv2d_backward(
                           g[0], x, w, p, wants(needs, 0), wants(needs, 1), has_bias && wants(needs, 2));
                       return Grads{r.dx, r.dweight, r.dbias};
                     });
  return y;
}

// conv1d runs the conv2d kernels on x [N, C, 1, L] and weight [OC, C/groups, 1, K].
Tensor conv1d(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t stride,
              int64_t padding, int64_t dilation, int64_t groups) {
  if (x.dim() != 3) fail("conv1d: expected a 3-D input [N, C, L], got shape ", shape_str(x.shape()));
  if (weight.dim() != 3)
    fail("conv1d: expected a 3-D weight [OC, C/groups, K], got shape ", shape_str(weight.shape()));
  autograd::CaptureScope cap;
  const bool rec = autograd::should_record({x, weight, bias});
  NoGradGuard ng;
  ops::Conv2dParams p;
  p.sw = stride, p.pw = padding, p.dw = dilation, p.groups = groups;
  Tensor y = ops::conv2d(x.unsqueeze(2), weight.unsqueeze(2), bias, p).squeeze(2);
  // Capture expands conv1d to conv2d on the [N, C, 1, L] view (compile/capture.cc).
  if (cap.active())
    cap.record("conv1d", {x, weight, bias}, {y},
               {{"stride", stride}, {"padding", padding}, {"dilation", dilation}, {"groups", groups}});
  if (rec)
    autograd::record("conv1d", {x, weight, bias}, {y},
                     [x = x.detach(), w = weight.detach(), p, has_bias = bias.defined()](
                         const Grads& g, const Needs& needs) {
                       ops::Conv2dGrads r = ops::conv2d_backward(
                           g[0].unsqueeze(2), x.unsqueeze(2), w.unsqueeze(2), p, wants(needs, 0),
                           wants(needs, 1), has_bias && wants(needs, 2));
                       return Grads{r.dx.defined() ? r.dx.squeeze(2) : Tensor(),
                                    r.dweight.defined() ? r.dweight.squeeze(2) : Tensor(), r.dbias};
                     });
  return y;
}

Tensor max_pool2d(const Tensor& x, const Pool2dParams& p) {
  autograd::CaptureScope cap;
  const bool rec = autograd::should_record({x});
  NoGradGuard ng;
  ops::MaxPoolResult r = ops::max_pool2d(x, p);
  if (cap.active()) cap.record("max_pool2d", {x}, {r.y}, ops::to_json(p, ops::PoolKind::max));
  if (rec)
    autograd::record("max_pool2d", {x}, {r.y},
                     [idx = r.indices, shape = x.shape()](const Grads& g, const Needs&) {
                       return Grads{ops::max_pool2d_backward(g[0], idx, shape)};
                     });
  return r.y;
}

Tensor avg_pool2d(const Tensor& x, const Pool2dParams& p) {
  autograd::CaptureScope cap;
  const bool rec = autograd::should_record({x});
  NoGradGuard ng;
  Tensor y = ops::avg_pool2d(x, p);
  if (cap.active()) cap.record("avg_pool2d", {x}, {y}, ops::to_json(p, ops::PoolKind::avg));
  if (rec)
    autograd::record("avg_pool2d", {x}, {y}, [p, shape = x.shape()](const Grads& g, const Needs&) {
      return Grads{ops::avg_pool2d_backward(g[0], shape, p)};
    });
  return y;
}

Tensor adaptive_avg_pool2d(const Tensor& x, std::pair<int64_t, int64_t> output_size) {
  autograd::CaptureScope cap;
  const bool rec = autograd::should_record({x});
  NoGradGuard ng;
  Tensor y = ops::adaptive_avg_pool2d(x, output_size.first, output_size.second);
  if (cap.active())
    cap.record("adaptive_avg_pool2d", {x}, {y},
               ops::to_json(ops::AdaptivePool2dAttrs{output_size.first, output_size.second}));
  if (rec)
    autograd::record("adaptive_avg_pool2d", {x}, {y}, [shape = x.shape()](const Grads& g, const Needs&) {
      return Grads{ops::adaptive_avg_pool2d_backward(g[0], shape)};
    });
  return y;
}

}  // namespace finch
