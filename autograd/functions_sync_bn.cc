// The autograd rule of synchronized batch norm (autograd/sync_batch_norm.h): the forward and
// backward of ops/sync_batch_norm.h, each summing its per-channel figures over `comm`.
#include "autograd/capture.h"
#include "autograd/node.h"
#include "autograd/sync_batch_norm.h"
#include "framework/grad_mode.h"
#include "ops/op_attrs.h"
#include "ops/sync_batch_norm.h"

namespace finch {

using autograd::Grads;
using autograd::Needs;

Tensor sync_batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                       const Tensor& weight, const Tensor& bias, double momentum, double eps,
                       dist::Communicator& comm) {
  autograd::CaptureScope cap;
  const bool rec = autograd::should_record({x, weight, bias});
  NoGradGuard ng;
  dist::Communicator* c = &comm;
  const ops::SumAcrossProcesses sum = [c](double* v, int64_t n) { c->all_reduce_sum(v, n); };
  ops::SyncBatchNormResult r = ops::sync_batch_norm(x, running_mean, running_var, weight, bias, momentum, eps, sum);
  // A captured graph is one process's: in it this is training-mode batch norm.
  if (cap.active())
    cap.record("batch_norm", {x, weight, bias, running_mean, running_var}, {r.bn.y},
               {{ops::attr::eps.name, eps}, {ops::attr::training.name, true}});
  if (rec)
    autograd::record(
        "sync_batch_norm", {x, weight, bias}, {r.bn.y},
        [x = x.detach(), w = weight.defined() ? weight.detach() : Tensor(), mean = r.bn.save_mean,
         invstd = r.bn.save_invstd, count = r.count, sum](const Grads& g, const Needs& n) {
          ops::NormGrads d = ops::sync_batch_norm_backward(g[0], x, w, mean, invstd, count, sum,
                                                           {n[0], n[1] && w.defined(), n[2]});
          return Grads{d.dx, d.dweight, d.dbias};
        });
  return r.bn.y;
}

}  // namespace finch
