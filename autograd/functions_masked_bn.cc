// masked_batch_norm (masked_batch_norm.h): batch statistics over the mask's valid steps, written
// as a composition of the differentiable primitives (sum, mul, rsqrt, ...).
#include "autograd/masked_batch_norm.h"

#include <cmath>

#include "autograd/functional.h"
#include "framework/error.h"
#include "framework/grad_mode.h"

namespace finch {

Tensor masked_batch_norm(const Tensor& x, const Tensor& mask, const Tensor& running_mean, const Tensor& running_var,
                         const Tensor& weight, const Tensor& bias, double momentum, double eps) {
  if (x.dim() != 3) fail("masked_batch_norm: expected x [N, C, T], got shape ", shape_str(x.shape()));
  const int64_t N = x.size(0), C = x.size(1), T = x.size(2);
  if (mask.dim() != 3 || mask.size(0) != N || mask.size(1) != 1 || mask.size(2) != T)
    fail("masked_batch_norm: expected a step mask [", N, ", 1, ", T, "] for x ", shape_str(x.shape()), ", got ",
         shape_str(mask.shape()));
  const Tensor m = mask.detach().to(x.dtype()).contiguous();
  double n = 0;
  for (double v : m.to(DType::f64).contiguous().to_vector<double>()) {
    if (v != 0.0 && v != 1.0) fail("masked_batch_norm: expected a step mask of 0s and 1s, found ", v);
    n += v;
  }
  if (n < 2)
    fail("masked_batch_norm: expected more than 1 valid step per channel in training mode, got ", n,
         " (mask ", shape_str(mask.shape()), ")");
  const Tensor mean = finch::mul(finch::sum(finch::mul(x, m), {0, 2}, true), 1.0 / n);  // [1, C, 1]
  const Tensor xc = finch::sub(x, mean);
  const Tensor var = finch::mul(finch::sum(finch::mul(finch::mul(xc, xc), m), {0, 2}, true), 1.0 / n);
  Tensor y = finch::mul(xc, finch::rsqrt(finch::add(var, eps)));
  if (weight.defined()) y = finch::mul(y, finch::reshape(weight, {1, C, 1}));
  if (bias.defined()) y = finch::add(y, finch::reshape(bias, {1, C, 1}));
  if (running_mean.defined() && running_var.defined()) {
    NoGradGuard ng;
    const Tensor bm = finch::reshape(mean.detach(), {C}).to(running_mean.dtype());
    const Tensor bv = finch::reshape(finch::mul(var.detach(), n / (n - 1)), {C}).to(running_var.dtype());
    Tensor rm = running_mean, rv = running_var;  // handles on the caller's storage, updated in place
    rm.copy_(finch::add(finch::mul(rm, 1.0 - momentum), finch::mul(bm, momentum)));
    rv.copy_(finch::add(finch::mul(rv, 1.0 - momentum), finch::mul(bv, momentum)));
  }
  return y;
}

}  // namespace finch
